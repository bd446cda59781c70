#!/usr/bin/env node
// Runs the cluster integration tests N times with the machine oversubscribed
// by CPU-bound processes of our own, and counts what failed: above all false
// node deaths (a healthy node declared dead, "stopped answering") and join
// timeouts. Not part of CI: run it by hand, e.g.
//
//   node scripts/stress-cluster.mjs --runs 20 --burners 4
//
// Options: --runs N (default 20), --burners N (default 4), --files a,b
// (default the cluster tests), --run-timeout-s S (default 900, per run),
// --log-dir DIR (each run's test output saved there).
// Prints one line per run and a JSON summary as the last line.

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const known = new Set(['--runs', '--burners', '--files', '--run-timeout-s', '--log-dir']);
const unknown = args.filter((arg, index) => arg.startsWith('-') && !known.has(arg) && !(index > 0 && known.has(args[index - 1])));
if (args.includes('--help') || args.includes('-h') || unknown.length > 0) {
  // The header comment is the usage: a mistyped option must not start 20 runs beside 4 burners.
  const usage = readFileSync(fileURLToPath(import.meta.url), 'utf8').split('\n').filter((line) => line.startsWith('//')).map((line) => line.slice(3)).join('\n');
  if (unknown.length > 0 && !args.includes('--help') && !args.includes('-h')) console.error(`stress-cluster: unknown option ${unknown.join(', ')}\n`);
  console.error(usage);
  process.exit(args.includes('--help') || args.includes('-h') ? 0 : 2);
}
function option(name, fallback) {
  const index = args.indexOf(`--${name}`);
  return index === -1 ? fallback : args[index + 1];
}
const runCount = Number(option('runs', '20'));
const burnerCount = Number(option('burners', '4'));
const runTimeoutMs = Number(option('run-timeout-s', '900')) * 1000;
const files = option('files', [
  'test/integration/cluster.test.ts',
  'test/integration/cluster-join.test.ts',
  'test/integration/cluster-programs.test.ts',
  'test/integration/cluster-helpers.test.ts',
].join(',')).split(',');
if (!(runCount >= 1 && runCount <= 1000 && burnerCount >= 0 && burnerCount <= 64)) {
  console.error('stress-cluster: --runs 1..1000, --burners 0..64');
  process.exit(2);
}

// CPU-bound processes: a busy loop each, ended (by pid) when we end.
const burners = [];
for (let index = 0; index < burnerCount; index += 1) {
  burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
}
const stopBurners = () => { for (const burner of burners) burner.kill('SIGKILL'); };
process.on('exit', stopBurners);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => { stopBurners(); process.exit(130); });

function runOnce() {
  return new Promise((resolve) => {
    const startMs = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => { output += chunk; });
    child.stderr.on('data', (chunk) => { output += chunk; });
    const timer = setTimeout(() => child.kill('SIGKILL'), runTimeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      const count = (pattern) => (output.match(pattern) ?? []).length;
      resolve({
        code, signal, seconds: Math.round((Date.now() - startMs) / 1000),
        pass: Number(/# pass (\d+)/.exec(output)?.[1] ?? 0),
        fail: Number(/# fail (\d+)/.exec(output)?.[1] ?? 0),
        falseDeaths: count(/DSM_ERR_NODE_DIED[^\n]*stopped answering/g),
        joinTimeouts: count(/DSM_ERR_JOIN_TIMEOUT/g),
        stalls: count(/DSM_ERR_STALLED/g),
        // A test's own bound ran out (spawnSync timeout): slowness, not a wrong result.
        testTimeouts: count(/spawnSync \S+ ETIMEDOUT|test timed out/g) / 2,
        failedTests: [...output.matchAll(/^not ok \d+ - (.*)$/gm)].map((match) => match[1]),
        output,
      });
    });
  });
}

const logDirectory = option('log-dir', null);
if (logDirectory !== null) mkdirSync(logDirectory, { recursive: true });
const runs = [];
for (let run = 1; run <= runCount; run += 1) {
  const result = await runOnce();
  if (logDirectory !== null) writeFileSync(join(logDirectory, `run-${run}.log`), result.output);
  delete result.output;
  runs.push(result);
  console.log(`run ${run}/${runCount}: ${result.fail === 0 && result.code === 0 ? 'ok' : 'FAILED'} in ${result.seconds} s; pass ${result.pass}, fail ${result.fail}, false deaths ${result.falseDeaths}, join timeouts ${result.joinTimeouts}, stalls ${result.stalls}, test timeouts ${result.testTimeouts}${result.failedTests.length > 0 ? `; failed: ${result.failedTests.join(' | ')}` : ''}`);
}
stopBurners();
const summary = {
  runs: runCount, burners: burnerCount, files,
  failedRuns: runs.filter((result) => result.fail > 0 || result.code !== 0).length,
  falseDeaths: runs.reduce((sum, result) => sum + result.falseDeaths, 0),
  joinTimeouts: runs.reduce((sum, result) => sum + result.joinTimeouts, 0),
  stalls: runs.reduce((sum, result) => sum + result.stalls, 0),
  testTimeouts: runs.reduce((sum, result) => sum + result.testTimeouts, 0),
  loadAverageAtEnd: readFileSync('/proc/loadavg', 'utf8').split(' ')[0],
  secondsPerRun: runs.map((result) => result.seconds),
};
console.log(JSON.stringify(summary));
