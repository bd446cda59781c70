// Where the modules dsm starts by URL are (a child node's script and runtime,
// an app thread's first module), in each of dsm's three layouts: the bundle
// (dist/bundle/, scripts/bundle.mjs: every entry and chunk in one folder),
// tsc's output (dist/src/) and the sources run under tsx (src/).

import module from 'node:module';

declare global {
  interface ImportMeta {
    /** `true` in dist/bundle/ (esbuild's define), absent elsewhere. */
    dsmBundle?: boolean;
  }
}

/** Whether this code runs from dsm's bundle. */
export const bundled: boolean = import.meta.dsmBundle === true;

/** The entries started by URL: their source (under src/, no extension) and their bundle name (scripts/bundle.mjs). */
export const entryPoints = {
  nodeMain: { source: 'cluster/node-main', bundle: 'node-main' },
  clusterNode: { source: 'runtime/cluster-node', bundle: 'cluster-node' },
  nodePrepare: { source: 'runtime/node-prepare', bundle: 'node-prepare' },
  // On a Node with a module compile cache, thread-main.js (scripts/bundle.mjs) turns it on and imports thread-entry.js;
  // on Node 20 that would only be a module more to load, so the thread starts at thread-entry.js.
  threadEntry: { source: 'threads/entry', bundle: typeof (module as { enableCompileCache?: unknown }).enableCompileCache === 'function' ? 'thread-main' : 'thread-entry' },
} as const;

export function entryUrl(entry: keyof typeof entryPoints): URL {
  const self = import.meta.url;
  const { source, bundle } = entryPoints[entry];
  if (bundled) return new URL(`./${bundle}.js`, self);
  return new URL(`../${source}.${self.endsWith('.ts') ? 'ts' : 'js'}`, self);
}
