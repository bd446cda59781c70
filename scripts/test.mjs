// Runs every test file under test/ with node's test runner, TypeScript loaded by tsx.
// `npm test -- unit` restricts to paths containing "unit".
//
// Two files run at a time. The longest files start first, so that the two lanes
// end together instead of one long file running alone at the end: the order
// comes from each file's duration in the last run on this machine
// (node_modules/.cache/dsm/test-durations.json, written by
// scripts/test-durations-reporter.mjs after every run), else from the durations
// checked in (scripts/test-durations.json; refresh it with
// `node scripts/test.mjs --write-durations` after a full run on a quiet machine).
// A file in neither list starts first (it may be long).
//
// Node 20's --test-timeout bounds each file as a whole as well as each test: at
// 300 s the longest files failed on a busy machine (load 15-49) with every test
// in them passing. The bound is for hangs (each test bounds its own processes),
// so it is 15 min; it costs nothing when files end in time.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

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

const files = walk('test').filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const known = { ...readDurations(checkedInPath), ...readDurations(cachePath) };
const durationOf = (file) => (typeof known[file] === 'number' ? known[file] : Infinity);
const ordered = files.map((f) => relative('.', f)).sort((a, b) => durationOf(b) - durationOf(a) || a.localeCompare(b));

mkdirSync(dirname(cachePath), { recursive: true });
const measuredPath = `${cachePath}.${process.pid}.tmp`;
const reporter = process.stdout.isTTY ? 'spec' : 'tap';
const result = spawnSync(process.execPath, [
  '--import', 'tsx', '--test', '--test-concurrency=2', '--test-timeout=900000',
  `--test-reporter=${reporter}`, '--test-reporter-destination=stdout',
  '--test-reporter=./scripts/test-durations-reporter.mjs', `--test-reporter-destination=${measuredPath}`,
  ...ordered,
], { stdio: 'inherit' });

// Keeps what this run measured (by path relative to the repository) for the next run's order.
const measured = {};
for (const [file, ms] of Object.entries(readDurations(measuredPath))) measured[relative('.', resolve(file))] = ms;
rmSync(measuredPath, { force: true });
if (Object.keys(measured).length > 0) {
  writeFileSync(cachePath, `${JSON.stringify({ ...readDurations(cachePath), ...measured }, null, 1)}\n`);
  if (writeCheckedIn) {
    const merged = { ...readDurations(checkedInPath), ...measured };
    const sorted = Object.fromEntries(Object.keys(merged).sort().map((file) => [file, merged[file]]));
    writeFileSync(checkedInPath, `${JSON.stringify(sorted, null, 1)}\n`);
  }
}
process.exit(result.status ?? 1);
