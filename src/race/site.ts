// App side of race mode: where in the program a synchronization or an
// allocation was called (file:line:column of the first frame outside dsm).
// Imports nothing of the manager side.

import { fileURLToPath } from 'node:url';
import { join, relative, sep } from 'node:path';
import { raceModeEnabled } from '../env.js';
import { packageRoot } from '../package-info.js';

/** Race mode is on for every thread of a `dsm run --race` (the environment is inherited). */
export const raceSitesEnabled = raceModeEnabled();

/**
 * dsm's own code: src/ (run from source, or named by a source map) and dist/ (the bundle,
 * dist/bundle/, and tsc's output, dist/src/ and dist/bench/).
 */
const ownRoots = [join(packageRoot, 'src') + sep, join(packageRoot, 'dist') + sep];

const framePattern = /(?:\(|at )((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/;

/** The program's file:line:column of the current call, or null. */
export function captureSite(): string | null {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 40;
  const stack = new Error().stack ?? '';
  Error.stackTraceLimit = limit;
  const lines = stack.split('\n');
  for (let k = 1; k < lines.length; k++) {
    const match = framePattern.exec(lines[k]!.trim());
    if (match === null) continue;
    const file = match[1]!.startsWith('file://') ? fileURLToPath(match[1]!) : match[1]!;
    if (ownRoots.some((root) => file.startsWith(root))) continue;
    if (file.includes(`${sep}node_modules${sep}`)) continue;
    const shown = relative(process.cwd(), file);
    return `${shown.startsWith('..') ? file : shown}:${match[2]}:${match[3]}`;
  }
  return null;
}
