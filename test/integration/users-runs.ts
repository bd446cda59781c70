// Programs written as a user writes them (test/fixtures/users: plain worker_threads, SharedArrayBuffer, Atomics,
// MessagePorts, process.exit, thrown errors; no dsm API) print the same under `dsm run` as under plain node, and
// end with the same exit code. users.test.ts runs them on 3 nodes under hlrc, users-sc.test.ts on 2 under sc.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const fixtures = 'test/fixtures/users';

export interface UserProgram {
  file: string;
  /** The program's arguments (process.argv[2..]), the same under node and dsm. */
  args?: readonly string[];
  what: string;
  /** The exit code under node (and so under dsm). */
  status: number;
  /** A line of stderr both print (the text of an uncaught worker error; its stack may differ). */
  stderrLine?: string;
  /** What dsm must print, where Node's own order is not promised (it is what node prints in practice). */
  expected?: string;
  /** A line both print to stderr (what a thrown value that is no Error shows; the lines around it may differ). */
  stderrHas?: string;
  /** The program's stdin (piped), the same under node and dsm. */
  input?: string;
  /**
   * Lines of several threads, whose order between threads Node does not promise: stdout and stderr are compared
   * with their lines grouped by their first word (the writer), each writer's lines in their order.
   */
  byWriter?: boolean;
}

/** `text`'s lines grouped by their first word, stably: each writer's lines in the order it wrote them. */
function groupedByWriter(text: string): string {
  const lines = text.split('\n');
  const last = lines.pop();
  const writer = (line: string): string => line.split(' ', 1)[0]!;
  return [...lines.map((line, index) => ({ line, index })).sort((a, b) => (writer(a.line) < writer(b.line) ? -1 : writer(a.line) > writer(b.line) ? 1 : a.index - b.index)).map(({ line }) => line), last].join('\n');
}

export const userPrograms: readonly UserProgram[] = [
  { file: 'stencil.mjs', what: 'a 2-D stencil whose workers meet at a barrier made of Atomics', status: 0 },
  { file: 'mergesort-tree.mjs', what: 'a merge sort by a tree of workers (workers spawning workers)', status: 0 },
  { file: 'quicksort-steal.mjs', what: 'a quicksort whose workers steal ranges from a queue guarded by an Atomics lock', status: 0 },
  { file: 'ring.mjs', what: 'a ring pipeline of workers passing items through MessagePorts handed between them', status: 0 },
  { file: 'alloc-drop.mjs', what: 'a loop that allocates a SharedArrayBuffer, has a worker fill it and drops it', status: 0 },
  { file: 'ticks.mjs', what: 'a burst of messages to a worker: microtasks and ticks between messages, port messages before exit', status: 0 },
  { file: 'exit-queued.mjs', what: 'a worker calling process.exit(7) with messages queued; then the main thread exits 3', status: 3 },
  { file: 'port-then-exit.mjs', what: 'workers that post on a port and end (dry, process.exit(5)): their messages arrive, before \'exit\'', status: 0, expected: 'dry: exit 0 after a,b\nexit: exit 5 after a,b\n' },
  { file: 'sync-receive.mjs', what: 'a worker reading its parentPort with receiveMessageOnPort, then by listening; a worker terminated once online', status: 0 },
  { file: 'wait-async.mjs', what: 'Atomics.waitAsync woken by its own thread just before its loop runs dry, and by a worker', status: 0 },
  { file: 'notify-count.mjs', what: 'waiters and notifiers on one word: the notifies\' counts sum to the waits woken', status: 0 },
  { file: 'worker-throws.mjs', what: 'a worker that throws (error event, exit 1), then one nobody listens to (the program dies, exit 1)', status: 1, stderrLine: 'nobody listens' },
];

function run(command: string[], input?: string) {
  // A bound for hangs, not a time budget.
  const result = spawnSync(process.execPath, command, { encoding: 'utf8', timeout: 60_000, ...(input === undefined ? {} : { input }) });
  assert.equal(result.error, undefined, `${command.join(' ')}: ${String(result.error)} ${result.stderr}`);
  return result;
}

/** Runs `program` under plain node and under `dsm run` with dsmArgs, and compares what they print and their exit codes. */
export function checkUserProgram(dsmArgs: readonly string[], program: UserProgram, directory = fixtures): void {
  const file = `${directory}/${program.file}`;
  const args = program.args ?? [];
  const onDsm = run(['bin/dsm.js', 'run', ...dsmArgs, file, ...args], program.input);
  if (program.expected !== undefined) {
    assert.equal(onDsm.stdout, program.expected, onDsm.stderr);
    assert.equal(onDsm.status, program.status, onDsm.stderr);
    return;
  }
  const plain = run([file, ...args], program.input);
  assert.equal(plain.status, program.status, plain.stderr);
  if (program.byWriter === true) {
    for (const result of [plain, onDsm]) {
      result.stdout = groupedByWriter(result.stdout);
      result.stderr = groupedByWriter(result.stderr);
    }
  }
  assert.equal(onDsm.stdout, plain.stdout, onDsm.stderr);
  assert.equal(onDsm.status, plain.status, onDsm.stderr);
  if (program.stderrHas !== undefined) {
    assert.ok(plain.stderr.split('\n').includes(program.stderrHas), plain.stderr);
    assert.ok(onDsm.stderr.split('\n').includes(program.stderrHas), onDsm.stderr);
  } else if (program.stderrLine === undefined) {
    assert.equal(unsettledAwaitShown(onDsm.stderr), unsettledAwaitShown(plain.stderr));
  } else {
    assert.match(plain.stderr, new RegExp(`Error.*: ${program.stderrLine}\\n`));
    assert.match(onDsm.stderr, new RegExp(`Error.*: ${program.stderrLine}\\n`));
  }
}

/**
 * One test per program: plain node, then `dsm run` with dsmArgs (default region size), compared. By default the
 * programs above, in test/fixtures/users; users3.test.ts passes its own, in test/fixtures/users3.
 */
export function userProgramTests(dsmArgs: readonly string[], programs: readonly UserProgram[] = userPrograms, directory = fixtures): void {
  const name = dsmArgs.join(' ');
  for (const program of programs) {
    test(`${name}: ${program.file}, ${program.what}, prints and exits as under node`, () => {
      checkUserProgram(dsmArgs, program, directory);
    });
  }
}

/**
 * Node 22 and later show where an ES module's top-level await stalled (the location, its source line and a caret,
 * after "Warning: Detected unsettled top-level await at"). The program's main module runs inside dsm's app-thread
 * entry, which imports it, so Node shows the await in dsm's entry that waits for it (docs/LIMITS.md "Known edges");
 * the warning, its exit code 13 and everything else are compared, the location's three lines are not.
 */
function unsettledAwaitShown(stderr: string): string {
  return stderr.replace(/^(Warning: Detected unsettled top-level await at) .*\n.*\n *\^\n/gm, '$1 (where)\n');
}
