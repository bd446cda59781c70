// A reader that goes away early (`dsm run app.js | head`) closes the pipe the
// program's output goes to. Node's console ignores the EPIPE that follows and
// the program runs on to its own exit code. dsm's processes write the
// program's output for it (a node's manager, the launcher relaying its
// nodes), and an EPIPE there was an uncaught error that ended the run with
// DSM_ERR_MANAGER_FAILED and exit code 70. Once the reader is gone, what is
// written to the stream is dropped, as console drops it: later writes succeed
// at once, and a stream that was piped into it (a thread's output) is read on
// and its data dropped, so that nothing waits for a reader that will not come.

import type { Readable } from 'node:stream';

/** Makes an EPIPE on this process's stdout or stderr drop later writes instead of failing the process. */
export function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    let closed = false;
    // Streams piped into this one (a thread's output): a pipe ends at the error, before the listeners below run.
    const sources = new Set<Readable>();
    stream.on('pipe', (source: Readable) => {
      sources.add(source);
      source.once('close', () => sources.delete(source));
      if (closed) source.resume();
    });
    const close = (): void => {
      if (closed) return;
      closed = true;
      stream.write = ((...args: unknown[]): boolean => {
        const callback = args.find((arg) => typeof arg === 'function') as ((error?: Error | null) => void) | undefined;
        if (callback !== undefined) process.nextTick(callback, null);
        return true;
      }) as typeof stream.write;
      for (const source of sources) source.resume();
    };
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
      close();
    });
  }
}
