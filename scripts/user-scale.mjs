#!/usr/bin/env node
// The user programs (test/fixtures/users … users6, the argv of their tests, small) on many nodes: each runs once under
// plain `node`, then under `node bin/dsm.js run --nodes N --protocol P` for each configuration asked (default hlrc on
// 4, 6 and 8 nodes and sc on 4), each run bounded by --timeout. A run matches when it prints what node prints (stdout,
// stderr, exit code; compared as test/integration/users-runs.ts compares them); otherwise it differs, hangs (killed
// at the timeout) or fails to start. Prints one line per run as it ends and a table at the end; wall times are one
// run each, informative only (say `uptime` with them: the machine's load moves every figure).
//
// Usage: node scripts/user-scale.mjs [--configs 4,6,8,sc4] [--timeout 60] [--only a,b] [--json file] [--keep dir]
//   --configs  node counts, hlrc unless prefixed `sc` (e.g. 4,6,8,sc4,sc8)
//   --only     substrings of `directory/file` to run (default: all)
//   --keep     write each differing run's stdout/stderr (and node's) to this directory

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const options = { configs: ['4', '6', '8', 'sc4'], timeout: 60, only: [], json: undefined, keep: undefined };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 1) {
  const name = argv[i];
  const value = argv[++i];
  if (name === '--configs') options.configs = value.split(',');
  else if (name === '--timeout') options.timeout = Number(value);
  else if (name === '--only') options.only = value.split(',');
  else if (name === '--json') options.json = value;
  else if (name === '--keep') options.keep = value;
  else {
    console.error(`unknown option ${name}`);
    process.exit(2);
  }
}
const configs = options.configs.map((text) => {
  const sc = text.startsWith('sc');
  return { label: text, nodes: Number(sc ? text.slice(2) : text), protocol: sc ? 'sc' : 'hlrc' };
});

const stdinText = Array.from({ length: 60 }, (_, i) => `line ${i} has some words in it ${i * i}`).join('\n') + '\n';

// The programs and their argv as their tests run them (status: node's exit code; expected: dsm's stdout where node's
// order is not promised; stderrLine: the one stderr line compared; stderrHas: a line dsm's stderr must hold;
// byWriter: lines compared grouped by writer).
const programs = [
  ['users', 'stencil.mjs'],
  ['users', 'mergesort-tree.mjs'],
  ['users', 'quicksort-steal.mjs'],
  ['users', 'ring.mjs'],
  ['users', 'alloc-drop.mjs'],
  ['users', 'ticks.mjs'],
  ['users', 'exit-queued.mjs'],
  ['users', 'port-then-exit.mjs', [], { expected: 'dry: exit 0 after a,b\nexit: exit 5 after a,b\n' }],
  ['users', 'sync-receive.mjs'],
  ['users', 'wait-async.mjs'],
  ['users', 'notify-count.mjs'],
  ['users', 'worker-throws.mjs', [], { stderrLine: 'nobody listens' }],
  ['users2', 'heat-sense.mjs', ['4', '40', '10']],
  ['users2', 'redblack-sor.mjs', ['3', '40', '6']],
  ['users2', 'wave-flags.mjs', ['4', '2000', '40']],
  ['users2', 'main-band.mjs', ['2', '40', '10']],
  ['users2', 'radix-lsd.mjs', ['3', '20000']],
  ['users2', 'oddeven-blocks.mjs', ['4', '20000']],
  ['users2', 'samplesort-ports.mjs', ['8', '20000']],
  ['users2', 'prefix-sum.mjs', ['3', '50000']],
  ['users2', 'matmul-counter.mjs', ['3', '60']],
  ['users2', 'task-pool.mjs', ['3', '30', '2000']],
  ['users2', 'bitonic.mjs', ['4', '12']],
  ['users2', 'halo-ports.mjs', ['4', '40', '10']],
  ['users2', 'interleaved-bytes.mjs', ['4', '20000', '6']],
  ['users2', 'alloc-pingpong.mjs', ['3', '60', '65536']],
  ['users2', 'result-records.mjs', ['3', '30000']],
  ['users2', 'ring-buffer.mjs', ['2', '2', '60', '4']],
  ['users2', 'fail-in-barrier.mjs', ['4', '40', '3']],
  ['users2', 'table-workerdata.mjs', ['3', '20000', '30000']],
  ['users2', 'env-workers.mjs', ['4']],
  ['users2', 'spawn-tree-lock.mjs', ['4', '1', '50']],
  ['users2', 'big-alloc-loop.mjs', ['4', '6', '8']],
  ['users3', 'futex-mutex.mjs', ['200', '50']],
  ['users3', 'rwlock-semaphore.mjs'],
  ['users3', 'spsc-mpmc.mjs', ['200', '50']],
  ['users3', 'wait-timeouts.mjs'],
  ['users3', 'typed-kinds.mjs'],
  ['users3', 'terminate-blocked.mjs'],
  ['users3', 'worker-events.mjs'],
  ['users3', 'buffers-nested.mjs'],
  ['users3', 'orphans.mjs'],
  ['users3', 'post-errors.mjs'],
  ['users3', 'wait-addresses.mjs'],
  ['users3', 'worker-handles.mjs'],
  ['users3', 'shared-node-apis.mjs'],
  ['users3', 'sync-rpc.mjs'],
  ['users3', 'growable-io.mjs'],
  ['users4', 'cjs-self.cjs'],
  ['users4', 'mixed-main.mjs'],
  ['users4', 'cjs-main.cjs'],
  ['users4', 'node-docs.cjs'],
  ['users4', 'mdn-atomics.mjs'],
  ['users4', 'worker-pool.mjs'],
  ['users4', 'worker-mistakes.mjs'],
  ['users4', 'exit-handlers.mjs'],
  ['users4', 'file-sum.mjs'],
  ['users4', 'stdin-lines.mjs', [], { input: stdinText }],
  ['users4', 'output-lines.mjs', ['400'], { byWriter: true }],
  ['users4', 'rejections.mjs', [], { stderrLine: 'the main thread rejects' }],
  ['users4', 'worker-options.mjs'],
  ['users4', 'cjs-package/main.js'],
  ['users4', 'main-ends.mjs', ['throw'], { stderrLine: 'the main thread gives up' }],
  ['users5', 'sync-eval.mjs'],
  ['users5', 'pool-destroy.mjs'],
  // users6: programs written for many nodes (see test/integration/users6.test.ts).
  ['users6', 'reduce-tree.mjs', ['8', '4000']],
  ['users6', 'all-to-all.mjs', ['8', '32', '3']],
  ['users6', 'phased-stencil.mjs', ['7', '32', '30']],
  ['users6', 'steal-deque.mjs', ['8', '8', '10']],
  ['users6', 'remote-spawns.mjs', ['4', '3']],
  ['users6', 'alloc-spread.mjs', ['8', '6']],
  ['users6', 'dom-exception.mjs', ['abort', '3']],
  ['users6', 'dom-exception.mjs', ['rejection', '2']],
  ['users6', 'throw-values.mjs', ['null', '2'], { stderrHas: 'null' }],
  ['users6', 'throw-values.mjs', ['object', '2'], { stderrHas: "{ code: 42, why: 'a plain object' }" }],
]
  .map(([directory, file, args = [], extra = {}]) => ({ path: `test/fixtures/${directory}/${file}`, args, ...extra }))
  .filter((program) => existsSync(program.path))
  .filter((program) => options.only.length === 0 || options.only.some((part) => program.path.includes(part)));

/** `text`'s lines grouped by their first word, stably (as users-runs.ts groups them). */
function groupedByWriter(text) {
  const lines = text.split('\n');
  const last = lines.pop();
  const writer = (line) => line.split(' ', 1)[0];
  const sorted = lines
    .map((line, index) => ({ line, index }))
    .sort((a, b) => (writer(a.line) < writer(b.line) ? -1 : writer(a.line) > writer(b.line) ? 1 : a.index - b.index))
    .map(({ line }) => line);
  return [...sorted, last].join('\n');
}

function run(command, input) {
  const start = process.hrtime.bigint();
  const result = spawnSync(process.execPath, command, {
    encoding: 'utf8',
    timeout: options.timeout * 1000,
    killSignal: 'SIGKILL',
    maxBuffer: 1 << 26,
    ...(input === undefined ? {} : { input }),
  });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return { seconds, stdout: result.stdout ?? '', stderr: result.stderr ?? '', status: result.status, signal: result.signal, error: result.error };
}

const stderrMatches = (text, line) => new RegExp(`Error.*: ${line}\\n`).test(text);

/** 'match', 'differs: …', 'hang' or 'error: …' for a dsm run against node's. */
function verdict(program, plain, onDsm) {
  if (onDsm.error?.code === 'ETIMEDOUT' || onDsm.signal === 'SIGKILL') return 'hang';
  if (onDsm.error !== undefined) return `error: ${onDsm.error.message}`;
  const out = (result) => (program.byWriter ? groupedByWriter(result.stdout) : result.stdout);
  const err = (result) => (program.byWriter ? groupedByWriter(result.stderr) : result.stderr);
  const wrong = [];
  if (program.expected !== undefined ? onDsm.stdout !== program.expected : out(onDsm) !== out(plain)) wrong.push('stdout');
  if (onDsm.status !== plain.status) wrong.push(`exit ${onDsm.status} (node ${plain.status})`);
  const stderrSame = program.stderrHas !== undefined
    ? onDsm.stderr.split('\n').includes(program.stderrHas)
    : program.stderrLine !== undefined ? stderrMatches(onDsm.stderr, program.stderrLine) : err(onDsm) === err(plain);
  if (!stderrSame) wrong.push('stderr');
  return wrong.length === 0 ? 'match' : `differs: ${wrong.join(', ')}`;
}

if (options.keep !== undefined) mkdirSync(options.keep, { recursive: true });
const rows = [];
for (const program of programs) {
  const plain = run([program.path, ...program.args], program.input);
  const row = { program: `${program.path.replace('test/fixtures/', '')}${program.args.length > 0 ? ` ${program.args.join(' ')}` : ''}`, plain: plain.seconds, runs: {} };
  if (plain.error !== undefined || plain.signal !== null) row.plainVerdict = `node: ${plain.signal ?? plain.error.message}`;
  for (const config of configs) {
    const onDsm = run(['bin/dsm.js', 'run', '--nodes', String(config.nodes), '--protocol', config.protocol, program.path, ...program.args], program.input);
    const result = verdict(program, plain, onDsm);
    row.runs[config.label] = { verdict: result, seconds: onDsm.seconds };
    console.log(`${row.program} [${config.label}]: ${result} ${onDsm.seconds.toFixed(1)} s (node ${plain.seconds.toFixed(1)} s)`);
    if (result !== 'match' && options.keep !== undefined) {
      const base = join(options.keep, `${program.path.replaceAll('/', '_')}.${config.label}`);
      writeFileSync(`${base}.dsm.out`, onDsm.stdout);
      writeFileSync(`${base}.dsm.err`, `${onDsm.stderr}\n[exit ${onDsm.status} signal ${onDsm.signal}]\n`);
      writeFileSync(`${base}.node.out`, plain.stdout);
      writeFileSync(`${base}.node.err`, `${plain.stderr}\n[exit ${plain.status}]\n`);
    }
  }
  rows.push(row);
}

const cell = (entry) => (entry.verdict === 'match' ? `${entry.seconds.toFixed(1)}` : `**${entry.verdict}** ${entry.seconds.toFixed(1)}`);
const header = ['program', 'node s', ...configs.map((config) => `${config.protocol} ${config.nodes}n s`)];
console.log(`\n| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${[row.program, row.plain.toFixed(1), ...configs.map((config) => cell(row.runs[config.label]))].join(' | ')} |`);
const all = rows.flatMap((row) => Object.values(row.runs));
const count = (test) => all.filter((entry) => test(entry.verdict)).length;
console.log(`\n${rows.length} programs, ${all.length} runs: ${count((v) => v === 'match')} match, ${count((v) => v.startsWith('differs'))} differ, ${count((v) => v === 'hang')} hang, ${count((v) => v.startsWith('error'))} errors`);
if (options.json !== undefined) writeFileSync(options.json, JSON.stringify(rows, null, 2));
process.exitCode = all.every((entry) => entry.verdict === 'match') ? 0 : 1;
