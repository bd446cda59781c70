// users19 (a helper's fidelity round): programs of kinds no earlier round had, run against plain node on 1, 2
// and 3 nodes and under sc. The ones here match node and cover what no earlier test does: environment data down
// a tree of workers, workers of every module kind (.cjs by URL, path and relative path, top-level await, data:
// URL), unusual worker endings, Atomics' argument errors on dsm memory, AsyncLocalStorage and diagnostics_channel
// across waitAsync, asynchronous I/O into shared views, preload flags in execArgv, and shared views wrapped by
// Buffer, subclasses and Proxies. The programs that differ from node are listed in the round's report (and cut
// down in test/fixtures/users19/min).
import { test } from 'node:test';
import { checkUserProgram, type UserProgram } from './users-runs.js';

interface Run extends UserProgram {
  dsm: readonly string[];
}

const runs: readonly Run[] = [
  { file: 'env-data-tree.mjs', dsm: ['--nodes', '3'], status: 0, what: 'setEnvironmentData handed down three levels of workers (a Map, a Date, a shared buffer; later changes unseen)' },
  { file: 'module-kinds.mjs', dsm: ['--nodes', '2'], status: 0, what: 'a .cjs worker by URL, path and relative path, an ES module worker with top-level await, a data: URL worker' },
  { file: 'exit-paths.mjs', dsm: ['--nodes', '2'], status: 0, what: 'process.exit in a worker\'s exit listener, swallowed exceptions, stack overflows, exitCode set while exiting' },
  { file: 'atomics-misuse.mjs', dsm: ['--nodes', '3'], status: 0, what: 'Atomics called wrongly on shared views in workers: the same errors and results as node' },
  { file: 'request-context.mjs', dsm: ['--nodes', '2', '--protocol', 'sc'], status: 0, what: 'AsyncLocalStorage, diagnostics_channel, warnings and performance marks around Atomics.waitAsync' },
  { file: 'async-io-views.mjs', dsm: ['--nodes', '3'], status: 0, what: 'fs.read, fs.readv, FileHandle.read/write, crypto.randomFill and zlib.deflate on shared views' },
  { file: 'preload-workers.mjs', dsm: ['--nodes', '2'], status: 0, what: 'workers started with --require and --import preloads and --no-deprecation in execArgv' },
  { file: 'view-wrappers.mjs', dsm: ['--nodes', '3'], status: 0, what: 'shared views wrapped in a Buffer, an Int32Array subclass and a Proxy; frozen, sealed, redefined' },
  // The round's finding 2 (fixed in session 46): a worker on another node than its parent had a parentPort with no
  // EventTarget side (onmessage never called, addEventListener a TypeError).
  { file: 'min/parentport-onmessage.mjs', args: ['onmessage'], dsm: ['--nodes', '2'], status: 0, what: 'parentPort.onmessage in a worker on another node than its parent' },
  { file: 'min/parentport-onmessage.mjs', args: ['listener'], dsm: ['--nodes', '2'], status: 0, what: 'parentPort.addEventListener in a worker on another node than its parent' },
  { file: 'error-shapes.mjs', dsm: ['--nodes', '2'], status: 0, what: 'workers throwing AggregateError, cause chains, subclasses, DOMException, a Symbol, a BigInt, arrays' },
  { file: 'min/throw-symbol.mjs', dsm: ['--nodes', '2'], status: 0, what: 'a worker on another node throws a Symbol: the parent\'s error listener gets a symbol (finding 3: a string before)' },
  { file: 'port-eventtarget.mjs', args: ['late'], dsm: ['--nodes', '3'], status: 0, what: 'ports used through their EventTarget side: once, removeEventListener, MessageEvent fields, onmessage' },
];

for (const run of runs) {
  test(`${run.dsm.join(' ')}: ${run.file} ${run.args?.join(' ') ?? ''}, ${run.what}, prints and exits as under node`, () => {
    checkUserProgram(run.dsm, run, 'test/fixtures/users19');
  });
}
