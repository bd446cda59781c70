// Bundles dsm's start graphs (npm run build, after tsc): every process and
// thread dsm starts loads a handful of files from dist/bundle/ instead of the
// ~110 modules tsc writes to dist/src/ (module loading was most of a node's
// start-up CPU, paid by every node process and every app thread).
//
// One build, code splitting on: each entry point below is one file, and the
// modules they share go to chunks every entry imports, so a process or thread
// that loads several entries (an app thread: thread-entry.js, and index.js
// when the program imports 'dsm') holds ONE copy of each module (one
// DsmError class, one app-thread state). The public API (package.json
// "exports") is index.js here, for the same reason. dist/src/ stays: the
// declarations, the benchmarks (dist/bench/) and a few tests use it.
//
// Kept out of the bundle: node_modules packages (resolved from dist/bundle/
// as from dist/src/) and the native addons (loaded with createRequire from
// build/Release/). The code learns it runs from here through
// import.meta.dsmBundle (src/util/entry-url.ts), so entry points that are
// started by URL (child nodes, app threads) are found beside it.
// Source maps (dist/bundle/*.js.map) point at src/.

import { copyFileSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bundle');

/** Output name (dist/bundle/<name>.js) of each entry point; src/util/entry-url.ts names them too. */
export const bundleEntries = {
  // The `dsm` command (bin/dsm.js), and the other nodes of a local run, which it starts before it loads the CLI.
  cli: 'src/cli/main.ts',
  'early-nodes': 'src/cluster/early-nodes.ts',
  // A local child node's process (src/cluster/launch.ts starts node-main.js, written below) and its runtime (DSM_NODE_RUNTIME).
  'node-process': 'src/cluster/node-main.ts',
  'cluster-node': 'src/runtime/cluster-node.ts',
  'node-prepare': 'src/runtime/node-prepare.ts',
  // The first module of every app thread (src/channel/thread-config.ts appEntryUrl).
  'thread-entry': 'src/threads/entry.ts',
  // The public API: import { Barrier } from 'dsm'.
  index: 'src/index.ts',
};

/**
 * Node 22.1+ keeps the code it compiles for a module in a cache on disk (module.enableCompileCache, in
 * os.tmpdir()/node-compile-cache unless NODE_COMPILE_CACHE names another directory; NODE_DISABLE_COMPILE_CACHE=1
 * turns it off) when asked, per process and per thread. Every process and thread dsm starts loads the same
 * ~1.5 MB of bundle, so each asks first (measured on Node 24, an empty program on 2 nodes: ~10% less CPU).
 * Node 20 has no such cache: the line does nothing there.
 */
const compileCacheLine = "import module from 'node:module'; module.enableCompileCache?.();";

/**
 * esbuild turns a top-level `class X { ... X ... }` that names itself inside its body into
 * `var X = class _X { ... _X ... }` (esbuild issue 3516), so X.name would be '_X'. The inner name
 * goes back to X (the same binding: the class itself), padded with a space so that columns, and
 * so the source map, stay as they were.
 */
function keepClassNames(text) {
  let result = text;
  for (const [, name] of text.matchAll(/\bvar ([A-Za-z$][\w$]*) = class _\1\b/g)) {
    result = result.replace(new RegExp(`(?<![\\w$.])_${name.replace(/\$/g, '\\$')}(?![\\w$])`, 'g'), `${name} `);
  }
  return result;
}

export async function bundle() {
  rmSync(outdir, { recursive: true, force: true });
  const started = performance.now();
  const result = await build({
    absWorkingDir: root,
    entryPoints: Object.fromEntries(Object.entries(bundleEntries).map(([name, path]) => [name, join(root, path)])),
    outdir,
    entryNames: '[name]',
    // Flat: every chunk sits beside the entries, so a URL relative to any of them finds the others.
    chunkNames: 'chunk-[hash]',
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20.10',
    packages: 'external',
    // No keepNames: it wraps every closure in a call that sets its name, about 0.5 us per closure
    // made, hot paths included. Class names are kept below instead.
    sourcemap: 'linked',
    sourcesContent: false,
    define: { 'import.meta.dsmBundle': 'true' },
    logLevel: 'warning',
    metafile: true,
    // A file of its own, the last module an app thread evaluates before thread-entry.js (src/threads/boot-mark.ts).
    external: ['./boot-mark.js'],
  });
  copyFileSync(join(root, 'dist', 'src', 'threads', 'boot-mark.js'), join(outdir, 'boot-mark.js'));
  const outputs = Object.keys(result.metafile.outputs).filter((path) => path.endsWith('.js'));
  const problems = [];
  for (const output of outputs) {
    const path = join(root, output);
    const text = readFileSync(path, 'utf8');
    const kept = keepClassNames(text);
    if (kept !== text) writeFileSync(path, kept);
    // A class esbuild renamed to avoid a clash in the bundle's scope (X2) would show that name.
    for (const match of kept.matchAll(/\bclass ([A-Za-z_$][\w$]*?)(\d+)\b/g)) {
      problems.push(`${output}: class ${match[1]} became ${match[1]}${match[2]} (rename one of the clashing declarations in src/)`);
    }
  }
  // A local child node's process. Node's source maps stay off (parsing the maps of every module it
  // loads cost each node process ~17 ms of CPU at start): the stack traces dsm prints name its own
  // frames in src/ through these maps when they are printed (src/util/source-frames.ts).
  // Both (and bin/dsm.js) first turn on Node's module compile cache where Node has one (22.1+; see compileCacheLine).
  const writeStarter = (name, what, entry) => writeFileSync(join(outdir, name), [`// ${what}`, compileCacheLine, `await import('./${entry}');`, ''].join('\n'));
  writeStarter('node-main.js', "A local child node's process (src/cluster/launch.ts): src/cluster/node-main.ts.", 'node-process.js');
  // The first module of every app thread on a Node with a compile cache (src/util/entry-url.ts): src/threads/entry.ts.
  writeStarter('thread-main.js', 'The first module of every app thread (src/channel/thread-config.ts): src/threads/entry.ts.', 'thread-entry.js');
  // The public API's classes are named as written (inspect output, error messages, user code that reads .name).
  const api = await import(`${pathToFileURL(join(outdir, 'index.js')).href}?check=${Date.now()}`);
  for (const [name, value] of Object.entries(api)) {
    if (typeof value === 'function' && /^[A-Z]/.test(name) && value.name !== name) problems.push(`index.js: ${name}.name is '${value.name}'`);
  }
  if (problems.length > 0) throw new Error(`class names do not survive the bundle:\n${problems.join('\n')}`);
  return { files: outputs.length, ms: performance.now() - started };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    await bundle();
  } catch (error) {
    console.error(`dsm: bundling dist/bundle/ failed: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
