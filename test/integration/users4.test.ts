// Round 3 of user-written programs (test/fixtures/users4: module shapes — CommonJS, workers in subfolders by URL,
// eval and data: URL workers, dynamic import() —, Node's and MDN's examples as users copy them, I/O from threads,
// and the errors users make), no dsm API: under dsm they print what plain node prints and exit with its code. Most
// run on 3 or 2 nodes under hlrc; a few on 2 under sc and on 1.
import { userProgramTests, type UserProgram } from './users-runs.js';

const directory = 'test/fixtures/users4';
const stdinText = Array.from({ length: 60 }, (_, i) => `line ${i} has some words in it ${i * i}`).join('\n') + '\n';

const programs: Record<string, UserProgram> = {
  cjsSelf: { file: 'cjs-self.cjs', what: 'a CommonJS program starting itself (__filename) as its workers, a .cjs worker in a subfolder requiring a helper', status: 0 },
  mixedMain: { file: 'mixed-main.mjs', what: 'workers by new URL(\'./workers/…\', import.meta.url) importing helpers by relative path and import(), .cjs workers from .mjs and the reverse', status: 0 },
  cjsMain: { file: 'cjs-main.cjs', what: 'a CommonJS main: an .mjs worker, eval workers using require and import(), a data: URL worker, their argv', status: 0 },
  nodeDocs: { file: 'node-docs.cjs', what: 'Node\'s worker_threads doc examples: parseJSAsync, a port in a message, receiveMessageOnPort, markAsUntransferable, BroadcastChannel, environment data, SHARE_ENV', status: 0 },
  mdnAtomics: { file: 'mdn-atomics.mjs', what: 'MDN\'s Atomics examples: the operations, wait/notify, a Mutex class, waitAsync, Atomics.wait in the main thread; a last waitAsync alone (exit 13)', status: 13 },
  workerPool: { file: 'worker-pool.mjs', what: 'Node\'s AsyncResource WorkerPool sized by availableParallelism() and a blog\'s promise pool, a task that crashes its worker', status: 0 },
  workerMistakes: { file: 'worker-mistakes.mjs', what: 'missing worker files, a path without its extension, throws of non-Errors, process.exit(3), syntax errors in .mjs and .cjs workers, terminate after a timeout', status: 0 },
  exitHandlers: { file: 'exit-handlers.mjs', what: 'process \'exit\' handlers in workers (ending, process.exit(6), exitCode 8, throwing, terminated) and in main, beforeExit, exitCode 5 in main', status: 5 },
  fileSum: { file: 'file-sum.mjs', what: 'workers reading the files named in their workerData (readFileSync, promises, a stream, readSync into shared memory) and summing into a SharedArrayBuffer', status: 0 },
  stdinLines: { file: 'stdin-lines.mjs', input: stdinText, what: 'the main thread reading its piped stdin with readline and farming the lines to a pool of workers', status: 0 },
  outputLines: { file: 'output-lines.mjs', args: ['400'], byWriter: true, what: 'four workers and the main thread writing many lines to stdout and stderr: whole lines, each writer\'s in order', status: 0 },
  rejections: { file: 'rejections.mjs', what: 'unhandled rejections in workers (Errors, a string, an object, after an await), a worker\'s own handler, then one in the main thread (exit 1)', status: 1, stderrLine: 'the main thread rejects' },
  workerOptions: { file: 'worker-options.mjs', what: 'stdout/stderr/stdin: true, a worker\'s own stdin, argv, execArgv and name, a worker URL with a query', status: 0 },
  cjsPackage: { file: 'cjs-package/main.js', what: 'a "type": "commonjs" package of .js files: require without node:, a helper in lib/, a worker catching its uncaughtException, createRequire in an .mjs worker', status: 0 },
  mainThrows: { file: 'main-ends.mjs', args: ['throw'], what: 'the main thread throwing while its workers spin, wait in Atomics.wait and on a timer; its exit handler', status: 1, stderrLine: 'the main thread gives up' },
};
const all = Object.values(programs);

userProgramTests(['--nodes', '3', '--protocol', 'hlrc'], all, directory);
userProgramTests(['--nodes', '2', '--protocol', 'sc'], [programs.mdnAtomics!, programs.outputLines!], directory);
userProgramTests(['--nodes', '1'], [programs.cjsMain!, programs.workerMistakes!], directory);
userProgramTests(['--nodes', '2', '--protocol', 'hlrc'], [programs.exitHandlers!], directory);
