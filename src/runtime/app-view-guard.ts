// Debug mode DSM_DEBUG_APP_VIEW=1 (dsm's tests set it): the manager must
// never read or write dsm memory through the app view. A fault there would
// park the one thread that serves faults (the native handler ends the process
// with DSM_ERR_INTERNAL when that happens); a system call given such memory
// fails with EFAULT instead of faulting, or reads stale bytes. This mode makes
// every write to stdout/stderr and every fs write on the manager thread check
// its buffer and throw when it is dsm memory, so such a path fails loudly in a
// test instead of surfacing as an EFAULT or a hang in a user's run.

import fs from 'node:fs';
import { DsmError } from '../errors.js';
import type { NativeMmu } from '../memory/native.js';

type Writable = (...args: unknown[]) => unknown;

function dsmRangeOf(native: NativeMmu, value: unknown): { offset: number; byteLength: number } | null {
  if (!ArrayBuffer.isView(value)) return null;
  const buffer = value.buffer;
  if (!(buffer instanceof SharedArrayBuffer)) return null;
  return native.rangeOf(buffer);
}

function guard(native: NativeMmu, what: string, original: Writable, bufferIndex: number): Writable {
  return function guarded(this: unknown, ...args: unknown[]): unknown {
    const range = dsmRangeOf(native, args[bufferIndex]);
    if (range !== null) {
      throw new DsmError('DSM_ERR_INTERNAL', `the manager passed dsm memory through the app view to ${what} (offset ${range.offset}, ${range.byteLength} bytes); copy it on the app thread first (DSM_DEBUG_APP_VIEW check)`);
    }
    return original.apply(this, args);
  };
}

let installed = false;

export function guardAppView(native: NativeMmu): void {
  if (installed) return;
  installed = true;
  for (const stream of [process.stdout, process.stderr]) {
    const name = stream === process.stdout ? 'process.stdout.write' : 'process.stderr.write';
    stream.write = guard(native, name, stream.write.bind(stream) as Writable, 0) as typeof stream.write;
  }
  const files = fs as unknown as Record<string, Writable>;
  for (const name of ['writeSync', 'write', 'writeFileSync', 'appendFileSync']) {
    // The data is the second argument of each (fd or path first).
    files[name] = guard(native, `fs.${name}`, files[name]!.bind(fs), 1);
  }
}
