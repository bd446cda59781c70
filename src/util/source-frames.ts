// dsm's own stack frames named in src/ when dsm prints a stack trace, without
// node's source maps. With them on (process.setSourceMapsEnabled), node reads
// and parses the map of every module as it loads it: about 17 ms of CPU in
// every dsm process (the launcher, each child node), for the few stack traces
// printed when something fails. So dsm starts with them off, and maps the
// frames of a stack it is about to print here, reading the maps then (the
// bundle's, beside it: scripts/bundle.mjs writes dist/bundle/*.js.map).
// Frames of the program and of node are left as they are.
// `NODE_OPTIONS=--enable-source-maps` still maps every frame as node does.

import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { dirname, isAbsolute, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundled } from './entry-url.js';

/**
 * The folder whose modules are dsm's own: dist/bundle/ in the bundle, dist/
 * for tsc's output (its maps are beside it too), src/ under tsx (no map: frames
 * are already in src/).
 */
const ownFolder = bundled ? dirname(fileURLToPath(import.meta.url)) : resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

const maps = new Map<string, SourceMap | null>();

function mapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    try {
      map = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')) as ConstructorParameters<typeof SourceMap>[0]);
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  return map;
}

/** A frame's location: a path or file URL of a .js module, a line and a column (1-based). */
const frameLocation = /(file:\/\/\/?[^\s()]+?\.js|\/[^\s():]+?\.js):(\d+):(\d+)/g;

/**
 * `stack` with each frame in a module under `folder` (default: dsm's own) that
 * has a source map named by its source file, line and column.
 */
export function mappedStack(stack: string, folder: string = ownFolder): string {
  const prefix = folder.endsWith(sep) ? folder : folder + sep;
  return stack.replace(frameLocation, (whole: string, location: string, line: string, column: string) => {
    let file: string;
    try {
      file = location.startsWith('file:') ? fileURLToPath(location) : location;
    } catch {
      return whole;
    }
    if (!file.startsWith(prefix)) return whole;
    const map = mapOf(file);
    if (map === null) return whole;
    const entry = map.findEntry(Number(line) - 1, Number(column) - 1) as Partial<{ originalSource: string; originalLine: number; originalColumn: number }>;
    if (typeof entry.originalSource !== 'string' || typeof entry.originalLine !== 'number' || typeof entry.originalColumn !== 'number') return whole;
    const source = entry.originalSource.startsWith('file:') ? fileURLToPath(entry.originalSource)
      : isAbsolute(entry.originalSource) ? entry.originalSource : resolve(dirname(file), entry.originalSource);
    return `${source}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  });
}

/** The stack of `error` with dsm's frames mapped (mappedStack), or String(error) if it has none. */
export function mappedStackOf(error: unknown): string {
  const stack = (error as Error | null | undefined)?.stack;
  return typeof stack === 'string' ? mappedStack(stack) : String(error);
}
