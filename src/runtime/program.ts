// Runs a program on this node: the manager (this thread) starts the program's
// main thread as an app thread and relays its stdio and exit code.

import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isatty } from 'node:tty';
import { availableParallelism } from 'node:os';
import { inspect } from 'node:util';
import { dirname, join, resolve, sep } from 'node:path';
import { MessageChannel, SHARE_ENV, Worker } from 'node:worker_threads';
import { appEntryUrl, appThreadConfig, appThreadWorkerData, handWarmStart, prestartWarmThread, trackBoot, type PrestartedWarmThread } from '../channel/thread-config.js';
import { entryScanBytesMax, mainThreadPrewarmCountMax } from '../constants.js';
import { DsmError } from '../errors.js';
import { packageRoot } from '../package-info.js';
import { isTypeScript } from '../util/module-kind.js';
import type { NodeManager } from './manager.js';
import { hop, hopsOn } from '../util/hops.js';
import { framesFromArrow } from '../util/stack-frames.js';

export interface ProgramSpec {
  /** Path of the program's main module, as the user typed it. */
  file: string;
  args: string[];
}

/** The file node runs for an absolute program path (see resolveProgram); throws when there is none. */
function programFile(path: string): string {
  return createRequire(join(process.cwd(), 'dsm-entry.cjs')).resolve(path);
}

/**
 * The program's entry file, found as node finds its main module: the path itself, then with `.js`, `.json` or
 * `.node` added, then a directory's package.json "main" or its index.js (`node dir` runs dir/index.js). Returns the
 * path as typed, made absolute: it is the program's process.argv[1], as under node; the main thread finds the file
 * from it again (src/threads/entry.ts).
 */
export function resolveProgram(file: string): string {
  const path = resolve(file);
  try {
    programFile(path);
    return path;
  } catch {
    const directory = existsSync(path) && statSync(path).isDirectory();
    if (directory) {
      throw new DsmError('DSM_ERR_PROGRAM_NOT_FOUND', `program '${file}' is a directory with no index.js and no package.json "main" (looked at ${path}); name the program's file`);
    }
    throw new DsmError('DSM_ERR_PROGRAM_NOT_FOUND', `program file '${file}' does not exist (looked at ${path}); give the program's path from the current directory, or an absolute path`);
  }
}

/**
 * The program's main thread, started before its node is (src/cli/main.ts): it boots (Node's
 * worker realm, dsm's modules, ~100 ms) while the other node processes start and join, and
 * waits at its start gate until runMainThread hands it the program. Until then it does not
 * keep the process alive; a failed start (an error, an exit) makes runMainThread start one anew.
 */
export type PrestartedThread = PrestartedWarmThread;

/**
 * Whether the program's entry file names worker_threads (its import or require): on one node, the main thread
 * then makes its first local warm thread before it waits, as on a cluster. A program that makes no worker pays
 * nothing for one (a thread booting beside its start took ~30 ms from a one-line program's wall time on 2 cores);
 * a program whose workers come from a library its entry does not name starts its first worker cold, as before.
 */
export function entryNamesWorkers(entry: string): boolean {
  try {
    const file = programFile(entry);
    if (statSync(file).size > entryScanBytesMax) return false;
    return /worker_threads/.test(readFileSync(file, 'latin1'));
  } catch {
    return false;
  }
}

/**
 * Starts the program's main thread early, as a warm thread (see PrestartedThread). On a cluster of two or more
 * nodes, or when the program's entry names worker_threads (`entryNamesWorkers`), it makes its first local warm
 * thread before it waits (src/threads/worker.ts `prewarmLocalThread`).
 */
export function prestartMainThread(nodeCount: number, entryMakesWorkers = false): PrestartedThread {
  return prestartWarmThread((entry, options) => new Worker(entry, options), { env: SHARE_ENV, stdin: true }, mainThreadPrewarmCount(nodeCount, entryMakesWorkers));
}

/**
 * The local warm threads the program's main thread makes before its gate: one on a cluster (its workers spread over
 * the nodes, each of which has its own); on one node, none for a program whose entry names no worker_threads, else
 * one a CPU up to mainThreadPrewarmCountMax (a program's workers usually come as a burst, one a CPU).
 */
export function mainThreadPrewarmCount(nodeCount: number, entryMakesWorkers: boolean, cpus = availableParallelism()): number {
  if (nodeCount > 1) return 1;
  return entryMakesWorkers ? Math.max(1, Math.min(mainThreadPrewarmCountMax, cpus)) : 0;
}

/** Starts the program's main thread (or takes the prestarted one); resolves with the program's exit code. */
export async function runMainThread(manager: NodeManager, program: ProgramSpec, prestarted: PrestartedThread | null = null): Promise<number> {
  const entry = resolveProgram(program.file);
  const { port1, port2 } = new MessageChannel();
  manager.channel.attach(port1);
  const config = appThreadConfig(manager, { role: 'main', entry, evalCode: false, argv: program.args, threadIdSeen: 0 });
  let worker: Worker;
  if (prestarted !== null && !prestarted.ended) {
    prestarted.untrack();
    worker = prestarted.worker;
    handWarmStart(prestarted, { config, port: port2 });
    prestarted.gate.open(true);
    if (hopsOn) hop('m:main thread taken');
    worker.ref();
  } else {
    prestarted?.discard();
    const workerData = appThreadWorkerData(config, port2);
    worker = new Worker(appEntryUrl(), { env: SHARE_ENV, stdin: true, workerData, transferList: [port2] });
    trackBoot(worker, workerData);
  }
  // The program's stdin is its main thread's, piped from the process's once the program reads it (the thread
  // posts 'stdin-wanted' at its stdin's first read, src/threads/setup.ts): a worker with data waiting unread in its
  // stdin never ends (node's own workers do the same), and a program that reads fd 0 itself must find it unread.
  let piped = false;
  if (isatty(0)) worker.stdin!.end();
  else {
    manager.onStdinWanted = () => {
      if (piped) return;
      piped = true;
      process.stdin.pipe(worker.stdin!);
    };
  }

  return new Promise((resolvePromise, rejectPromise) => {
    // Whether it threw, apart from what: a program's `throw null` arrives as null (it printed nothing).
    let failed = false;
    let failure: unknown = null;
    worker.on('error', (error) => {
      failed = true;
      failure = error;
    });
    worker.on('exit', (code) => {
      manager.onStdinWanted = null;
      if (piped) {
        process.stdin.unpipe(worker.stdin!);
        process.stdin.pause();
      }
      if (failed) {
        try {
          resolvePromise(reportUncaught(failure, entry));
        } catch (error) {
          rejectPromise(error);
        }
        return;
      }
      resolvePromise(code);
    });
  });
}

/**
 * Prints an uncaught exception of the program as node would: the source line
 * and a caret under the place it was thrown, then the error as util.inspect
 * shows it (with its own properties, such as a DsmError's `code`).
 */
function reportUncaught(error: unknown, entry: string): number {
  if (error instanceof SyntaxError || (error as { name?: string } | null)?.name === 'SyntaxError') {
    // The worker's copy of a SyntaxError lost where it is: ask node, which prints it as it would.
    const syntax = syntaxReportOf(entry);
    if (syntax !== null) {
      process.stderr.write(syntax);
      return 1;
    }
  }
  let text: string;
  if (typeof error === 'object' && error !== null && typeof (error as Error).stack === 'string') {
    const stack = withoutDsmFrames((error as Error).stack!);
    text = `${arrowOf(stack)}${errorText(error as Error & { code?: unknown }, stack)}`;
  } else if (error === null || (typeof error !== 'object' && typeof error !== 'function')) {
    // A thrown primitive: node prints its string (a symbol's as nothing, a bigint without its n) and says where
    // to look, where an object is inspected.
    text = `${typeof error === 'symbol' ? '' : String(error)}\n(Use \`node --trace-uncaught ...\` to show where the exception was thrown)`;
  } else {
    text = inspect(error);
  }
  process.stderr.write(`${text}\n\nNode.js ${process.version}\n`);
  return 1;
}

/**
 * An error as node prints it: its stack (an error of dsm's shows its code in its name,
 * as node's own `TypeError [ERR_…]:` do), then its own properties.
 */
function errorText(error: Error & { code?: unknown }, stack: string): string {
  let text = stack;
  // dsm's own codes only (a DsmError's, a region-full RangeError's): node shows another error's code among its
  // properties, not in its name (an ENOENT from readFileSync, an Error given a code by the program: dsm printed
  // `Error [ENOENT]: ENOENT: ...`).
  if (typeof error.code === 'string' && error.code.startsWith('DSM_ERR_') && typeof error.name === 'string' && text.startsWith(`${error.name}: `)) {
    text = `${error.name} [${error.code}]${text.slice(error.name.length)}`;
  }
  const own = Object.entries(error).filter(([key]) => key !== 'name' && key !== 'message' && key !== 'stack');
  if (own.length === 0) return text;
  return `${text} {\n${own.map(([key, value]) => `  ${key}: ${inspect(value)}`).join(',\n')}\n}`;
}

/**
 * `node --check`'s own report of the syntax error (source line, caret,
 * message), in the entry or in a module it imports by a relative specifier
 * (the worker's copy of the error no longer says which file), or null.
 */
function syntaxReportOf(entry: string): string | null {
  const queue = [entry];
  const seen = new Set(queue);
  while (queue.length > 0 && seen.size <= syntaxCheckFileCountMax) {
    const path = queue.shift()!;
    if (isTypeScript(path)) continue;
    const result = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8' });
    if (result.status !== 0 && /SyntaxError/.test(result.stderr ?? '')) return result.stderr;
    for (const next of relativeImportsOf(path)) {
      if (!seen.has(next)) { seen.add(next); queue.push(next); }
    }
  }
  return null;
}

/** Files a syntax error is looked for in, at most (each costs a `node --check`). */
const syntaxCheckFileCountMax = 32;

/** Local files a module names in import/export ... from, import() or require() with a relative specifier. */
function relativeImportsOf(path: string): string[] {
  let source: string;
  try {
    source = readFileSync(path, 'utf8');
  } catch {
    return [];
  }
  const found: string[] = [];
  const pattern = /(?:\bfrom\s*|\bimport\s*\(?\s*|\brequire\s*\(\s*)(['"])(\.{1,2}\/[^'"\n]+)\1/g;
  for (const match of source.matchAll(pattern)) {
    const target = resolve(dirname(path), match[2]!);
    if (existsSync(target) && statSync(target).isFile()) found.push(target);
  }
  return found;
}

/**
 * Node's "arrow": the location, source line and a caret at the top frame of
 * the stack, when that frame is in a file of the program ('' otherwise, or
 * when the stack already starts with one).
 */
export function arrowOf(stack: string): string {
  const lines = stack.split('\n');
  if (/:\d+$/.test(lines[0] ?? '') && lines[2]?.trim() === '^') return '';
  const frame = framesFromArrow(stack)[0];
  const match = frame === undefined ? null : /^\s*at (?:.*?\()?((?:file:\/\/|\/)[^()]*?):(\d+):(\d+)\)?$/.exec(frame);
  if (match === null) return '';
  const [, location, lineText, columnText] = match;
  try {
    const path = location!.startsWith('file:') ? fileURLToPath(location!) : location!;
    const source = readFileSync(path, 'utf8').split(/\r?\n/)[Number(lineText) - 1];
    if (source === undefined) return '';
    const column = Number(columnText) - 1;
    const indent = source.slice(0, column).replace(/[^\t]/g, ' ');
    return `${location}:${lineText}\n${source}\n${indent}^\n\n`;
  } catch {
    return '';
  }
}

/** Drops the stack frames of dsm's own app-thread entry: the program's frames are what matter. */
function withoutDsmFrames(stack: string): string {
  // dsm's code: the bundle and tsc's output (dist/bundle/, dist/src/), or its sources (src/, run under tsx).
  const dsmCode = [join(packageRoot, 'dist') + sep, join(packageRoot, 'src') + sep];
  return stack.split('\n').filter((line) => !(line.trimStart().startsWith('at ') && dsmCode.some((code) => line.includes(code)))).join('\n');
}
