// 'beforeExit' on the program's main thread (a Node worker under dsm) as on a
// real main thread.
//
// A worker's process.stdout and process.stderr post each write to the parent
// thread and keep the worker's loop alive until the parent acknowledges it
// (Node's WritableWorkerStdio refs the stdio port); a main thread's writes are
// synchronous. So a 'beforeExit' listener that logs ran again after each line
// under dsm, for ever (users18, beforeexit-log.mjs; plain node: once). From a
// 'beforeExit' until the loop next does other work, the stdio port does not
// keep the loop alive: the writes are posted already (nothing is lost; Node
// delivers a worker's stdio before its 'exit'), and the loop ends as a main
// thread's would, unless a listener gave it other work.

/** The stdio port of this worker thread's process.stdout (Node's internal kPort), or null if Node keeps it elsewhere. */
function stdioPort(): { ref(): void } | null {
  const stdout = process.stdout as unknown as Record<symbol, unknown>;
  const key = Object.getOwnPropertySymbols(stdout).find((symbol) => symbol.description === 'kPort');
  const port = key === undefined ? undefined : stdout[key];
  return typeof port === 'object' && port !== null && typeof (port as { ref?: unknown }).ref === 'function' ? port as { ref(): void } : null;
}

export function quietStdioAtBeforeExit(): void {
  const port = stdioPort();
  if (port === null) return;
  let quiet = false;
  const ref = port.ref;
  port.ref = function (this: unknown): void {
    if (!quiet) ref.call(this);
  };
  process.on('beforeExit', () => {
    quiet = true;
    // Runs only if the loop runs again for something else (an unref'd immediate keeps nothing alive).
    setImmediate(() => { quiet = false; }).unref();
  });
}
