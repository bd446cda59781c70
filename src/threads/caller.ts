// Who called a constructor dsm replaced. Node's own code and the TypeScript
// loader dsm brings (tsx, and esbuild, whose synchronous API runs in a worker
// thread waiting on a SharedArrayBuffer) are the runtime, not the program:
// they get Node's own SharedArrayBuffer and Worker, local to this thread's node.

import { createRequire } from 'node:module';
import { dirname, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

let loaderDirectories: string[] | null = null;

/** The folders of tsx and esbuild as dsm resolves them (real paths, as stack frames name files). */
function loaderDirectoriesOf(): string[] {
  if (loaderDirectories !== null) return loaderDirectories;
  const directories: string[] = [];
  try {
    const tsx = dirname(createRequire(import.meta.url).resolve('tsx/package.json'));
    directories.push(`${tsx}${sep}`);
    directories.push(`${dirname(createRequire(`${tsx}${sep}`).resolve('esbuild/package.json'))}${sep}`);
  } catch {
    // Without tsx there is no TypeScript loader to recognise.
  }
  loaderDirectories = directories;
  return directories;
}

/**
 * Whether the function `depth` frames above the caller of this function is
 * the runtime's (Node's or the TypeScript loader's). Depth 1: whoever called
 * the function that asks.
 */
export function calledByRuntime(depth: number): boolean {
  const { prepareStackTrace, stackTraceLimit } = Error;
  const holder: { stack?: NodeJS.CallSite[] } = {};
  let file: string | null | undefined;
  try {
    Error.prepareStackTrace = (_error, frames) => frames;
    Error.stackTraceLimit = depth + 1;
    Error.captureStackTrace(holder, calledByRuntime);
    file = holder.stack?.[depth]?.getFileName();
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
  if (typeof file !== 'string') return false;
  let runtime = runtimeFiles.get(file);
  if (runtime === undefined) {
    const path = file.startsWith('file:') ? fileURLToPath(file) : file;
    runtime = file.startsWith('node:') || loaderDirectoriesOf().some((directory) => path.startsWith(directory));
    // A program has few files: past the bound the answers are found again (session 40: a URL parse per
    // allocation was a fifth of a small SharedArrayBuffer's cost).
    if (runtimeFiles.size >= runtimeFileCountMax) runtimeFiles.clear();
    runtimeFiles.set(file, runtime);
  }
  return runtime;
}

/** Whether a file (as stack frames name it) is the runtime's, as found. */
const runtimeFiles = new Map<string, boolean>();
const runtimeFileCountMax = 1024;
