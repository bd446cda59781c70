// Runs a program on this node: the manager (this thread) starts the program's
// main thread as an app thread and relays its stdio and exit code.

import { spawnSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { MessageChannel, SHARE_ENV, Worker } from 'node:worker_threads';
import type { AppThreadConfig } from '../channel/wire.js';
import { DsmError } from '../errors.js';
import { packageRoot } from '../package-info.js';
import { isTypeScript } from '../threads/module-kind.js';
import { appEntryUrl } from '../threads/worker.js';
import type { NodeManager } from './manager.js';

export interface ProgramSpec {
  /** Path of the program's main module, as the user typed it. */
  file: string;
  args: string[];
}

export function resolveProgram(file: string): string {
  const path = resolve(file);
  if (!existsSync(path) || !statSync(path).isFile()) {
    throw new DsmError('DSM_ERR_PROGRAM_NOT_FOUND', `program file '${file}' does not exist (looked at ${path})`);
  }
  return path;
}

/** Syntax-checks a JavaScript entry the way `node --check` does; returns the first error line. */
export function syntaxErrorOf(path: string): string | null {
  if (isTypeScript(path)) return null;
  const result = spawnSync(process.execPath, ['--check', path], { encoding: 'utf8' });
  if (result.status === 0) return null;
  const lines = (result.stderr ?? '').split('\n').map((line) => line.trim()).filter(Boolean);
  const location = lines[0] ?? path;
  const message = lines.find((line) => line.startsWith('SyntaxError')) ?? 'SyntaxError';
  return `${location}: ${message}`;
}

/** Starts the program's main thread; resolves with the program's exit code. */
export async function runMainThread(manager: NodeManager, program: ProgramSpec): Promise<number> {
  const entry = resolveProgram(program.file);
  const { port1, port2 } = new MessageChannel();
  manager.channel.attach(port1);
  const config: AppThreadConfig = {
    role: 'main',
    nodeId: manager.nodeId,
    nodeCount: manager.nodeCount,
    regionBytes: manager.regionBytes,
    entry,
    evalCode: false,
    argv: program.args,
    parallelism: manager.parallelism,
    userWorkerData: null,
    threadIdSeen: 0,
  };
  const worker = new Worker(appEntryUrl(), {
    env: SHARE_ENV,
    stdin: true,
    execArgv: process.execArgv,
    workerData: { __dsm: config, __dsmPort: port2 },
    transferList: [port2],
  });
  // The program's stdin is its main thread's.
  if (!process.stdin.isTTY) process.stdin.pipe(worker.stdin!);
  else worker.stdin!.end();

  return new Promise((resolvePromise, rejectPromise) => {
    let failure: unknown = null;
    worker.on('error', (error) => {
      failure = error;
    });
    worker.on('exit', (code) => {
      process.stdin.unpipe(worker.stdin!);
      process.stdin.pause();
      if (failure !== null) {
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

/** Prints an uncaught exception of the program as node would, and gives the exit code. */
function reportUncaught(error: unknown, entry: string): number {
  if (error instanceof SyntaxError || (error as { name?: string } | null)?.name === 'SyntaxError') {
    const syntax = syntaxErrorOf(entry);
    if (syntax !== null) throw new DsmError('DSM_ERR_PROGRAM_SYNTAX', syntax);
  }
  const text = error instanceof Error ? withoutDsmFrames(error.stack ?? String(error)) : `Uncaught ${inspectThrown(error)}`;
  process.stderr.write(`${text}\n\nNode.js ${process.version}\n`);
  return 1;
}

/** Drops the stack frames of dsm's own app-thread entry: the program's frames are what matter. */
function withoutDsmFrames(stack: string): string {
  const dsmCode = join(packageRoot, 'dist', 'src');
  return stack.split('\n').filter((line) => !(line.trimStart().startsWith('at ') && line.includes(dsmCode))).join('\n');
}

function inspectThrown(value: unknown): string {
  try {
    return typeof value === 'string' ? `'${value}'` : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
