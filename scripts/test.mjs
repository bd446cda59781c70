// Runs every test file under test/ with node's test runner, TypeScript loaded by tsx.
// `npm test -- unit` restricts to paths containing "unit".
//
// Two files run at a time, each in a node --test process of its own, and the
// longest files start first, so that the two lanes end together instead of one
// long file running alone at the end. (node 20's runner sorts the files it is
// given by name, so the order is kept here, not handed to it.) Each file's
// duration comes from the last run on this machine
// (node_modules/.cache/dsm/test-durations.json, written after every run), else
// from the durations checked in (scripts/test-durations.json; refresh it with
// `node scripts/test.mjs --write-durations` after a full run on a quiet
// machine). A file in neither list starts first (it may be long).
//
// A file's output is printed when it ends, whole, with its duration; a summary
// of all files comes last. node 20's --test-timeout bounds each file as a whole
// as well as each test: the bound is for hangs (each test bounds its own
// processes), so it is 15 min, which costs nothing when files end in time (at
// 300 s the longest files failed on a busy machine with all their tests passing).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

const laneCount = 2;
const fileTimeoutMs = 900_000;
const args = process.argv.slice(2);
const writeCheckedIn = args.includes('--write-durations');
const filters = args.filter((arg) => arg !== '--write-durations');
const checkedInPath = 'scripts/test-durations.json';
const cachePath = 'node_modules/.cache/dsm/test-durations.json';

function walk(dir) {
  const files = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) files.push(...walk(path));
    else if (/\.test\.(ts|mjs|js)$/.test(name)) files.push(path);
  }
  return files;
}

function readDurations(path) {
  if (!existsSync(path)) return {};
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8'));
    return parsed !== null && typeof parsed === 'object' ? parsed : {};
  } catch {
    return {};
  }
}

const files = walk('test').map((f) => relative('.', f)).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const known = { ...readDurations(checkedInPath), ...readDurations(cachePath) };
const durationOf = (file) => (typeof known[file] === 'number' ? known[file] : Infinity);
const queue = [...files].sort((a, b) => durationOf(b) - durationOf(a) || a.localeCompare(b));

const reporter = process.stdout.isTTY ? 'spec' : 'tap';
const counts = { tests: 0, pass: 0, fail: 0, skipped: 0, cancelled: 0, todo: 0 };
const measured = {};
const failedFiles = [];
const children = new Set();
const startedAt = Date.now();

function runFile(file) {
  return new Promise((resolve) => {
    const fileStartedAt = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-timeout=${fileTimeoutMs}`, `--test-reporter=${reporter}`, file], {
      stdio: ['ignore', 'pipe', 'pipe'], env: process.env,
    });
    children.add(child);
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
    child.on('close', (code, signal) => {
      children.delete(child);
      const ms = Date.now() - fileStartedAt;
      measured[file] = ms;
      for (const [, name, value] of output.matchAll(/^(?:# |ℹ )(tests|pass|fail|skipped|cancelled|todo) (\d+)$/gm)) counts[name] += Number(value);
      const ok = code === 0;
      if (!ok) failedFiles.push(file);
      process.stdout.write(`# file ${file}: ${ok ? 'passed' : `FAILED (${signal ?? `exit ${code}`})`} in ${(ms / 1000).toFixed(1)} s\n${output}`);
      resolve();
    });
  });
}

async function lane() {
  for (let file = queue.shift(); file !== undefined; file = queue.shift()) await runFile(file);
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
    process.exit(130);
  });
}

await Promise.all(Array.from({ length: Math.min(laneCount, files.length) }, lane));

const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
process.stdout.write(`# suite: ${files.length} files in ${seconds} s (${laneCount} at a time); tests ${counts.tests}, pass ${counts.pass}, `
  + `fail ${counts.fail}, skipped ${counts.skipped}, cancelled ${counts.cancelled}, todo ${counts.todo}\n`);
if (failedFiles.length > 0) process.stdout.write(`# failed files: ${failedFiles.join(' ')}\n`);

// Keeps what this run measured for the next run's order.
mkdirSync(dirname(cachePath), { recursive: true });
writeFileSync(cachePath, `${JSON.stringify({ ...readDurations(cachePath), ...measured }, null, 1)}\n`);
if (writeCheckedIn) {
  const merged = { ...readDurations(checkedInPath), ...measured };
  const sorted = Object.fromEntries(Object.keys(merged).sort().map((file) => [file, merged[file]]));
  writeFileSync(checkedInPath, `${JSON.stringify(sorted, null, 1)}\n`);
}
process.exit(failedFiles.length === 0 ? 0 : 1);
