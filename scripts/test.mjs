// Runs every test file under test/ with node's test runner, TypeScript loaded by tsx.
// `npm test -- unit` restricts to paths containing "unit".
//
// Each file runs in a node --test process of its own, and the longest files
// start first, so that the lanes end together instead of one long file running
// alone at the end. (node 20's runner sorts the files it is given by name, so
// the order is kept here, not handed to it.)
//
// Lanes are CPU-aware. Two lanes take files in that order whatever they cost,
// as before; up to two more lanes take only light files: files whose processes
// used little CPU for their wall time (they mostly wait: heartbeat timeouts,
// kills, handshakes), and only while the estimated load of the running files
// (CPU seconds per wall second, summed) leaves room for them under a budget of
// the machine's cores. So about two CPU-heavy files run at a time, as on two
// cores before, and waiting files fill the idle CPU beside them.
//
// Each file's wall time and CPU time (user+sys of the file's process tree,
// read as the growth of this process's reaped-children times when the file's
// process is reaped) come from the last run on this machine
// (node_modules/.cache/dsm/test-durations.json, written after every run), else
// from the times checked in (scripts/test-durations.json; refresh it with
// `node scripts/test.mjs --write-durations` after a full run on a quiet
// machine). Whether a file is light is judged from the checked-in times first
// (quiet), the last run's second. An entry is { "ms": wall, "cpuMs": cpu }; a bare number is a wall
// time of unknown CPU (counted heavy). A file in neither list starts first (it
// may be long) and counts heavy.
//
// Options: --lanes N (heavy lanes, default 2), --light-lanes N (default 2;
// 0 runs the old way), --budget X (cores of estimated load, default the
// number of cores, at least 2, plus half a core: the loads are averages, and a
// heavy file waits part of its time too).
//
// A file's output is printed when it ends, whole, with its wall and CPU time;
// a summary of all files comes last. node 20's --test-timeout bounds each file
// as a whole as well as each test: the bound is for hangs (each test bounds its
// own processes), so it is 15 min, which costs nothing when files end in time
// (at 300 s the longest files failed on a busy machine with all their tests
// passing).
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';

const fileTimeoutMs = 900_000;
// A file is light when its processes used at most this much CPU per wall second.
const lightLoad = 0.45;
const args = process.argv.slice(2);
const filters = [];
const options = { lanes: 2, lightLanes: 2, budget: Math.max(2, availableParallelism()) + 0.5, writeCheckedIn: false };
for (let i = 0; i < args.length; i += 1) {
  const arg = args[i];
  if (arg === '--write-durations') options.writeCheckedIn = true;
  else if (arg === '--lanes' || arg === '--light-lanes' || arg === '--budget') {
    const value = Number(args[i + 1]);
    if (!Number.isFinite(value) || value < 0 || (arg === '--lanes' && value < 1)) {
      console.error(`${arg} needs a number${arg === '--lanes' ? ' >= 1' : ' >= 0'}, not ${args[i + 1]}`);
      process.exit(2);
    }
    options[arg === '--lanes' ? 'lanes' : arg === '--light-lanes' ? 'lightLanes' : 'budget'] = value;
    i += 1;
  } else filters.push(arg);
}
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

// { file: { ms, cpuMs } }; a bare number (the old format) is a wall time.
function readDurations(path) {
  if (!existsSync(path)) return {};
  let parsed;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return {};
  }
  if (parsed === null || typeof parsed !== 'object') return {};
  const entries = {};
  for (const [file, value] of Object.entries(parsed)) {
    if (typeof value === 'number') entries[file] = { ms: value };
    else if (value !== null && typeof value === 'object' && typeof value.ms === 'number') {
      entries[file] = typeof value.cpuMs === 'number' ? { ms: value.ms, cpuMs: value.cpuMs } : { ms: value.ms };
    }
  }
  return entries;
}

const files = walk('test').map((f) => relative('.', f)).filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)));
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}
const checkedIn = readDurations(checkedInPath);
const known = { ...checkedIn, ...readDurations(cachePath) };
const durationOf = (file) => known[file]?.ms ?? Infinity;
// Estimated CPU seconds per wall second; unknown counts as one busy core. The
// checked-in times come first here: they are from a quiet machine, and a run on a
// busy one stretches wall times but not CPU times, so its files all look light.
const loadOf = (file) => {
  for (const entry of [checkedIn[file], known[file]]) {
    if (entry !== undefined && entry.cpuMs !== undefined && entry.ms > 0) return entry.cpuMs / entry.ms;
  }
  return 1;
};
const queue = [...files].sort((a, b) => durationOf(b) - durationOf(a) || a.localeCompare(b));

// User+sys time of this process's reaped children, in ms (Linux: /proc/self/stat
// fields cutime and cstime, in clock ticks of 10 ms). Null where unreadable.
function childrenCpuMs() {
  try {
    const stat = readFileSync('/proc/self/stat', 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[13]) + Number(fields[14])) * 10;
  } catch {
    return null;
  }
}

const reporter = process.stdout.isTTY ? 'spec' : 'tap';
const counts = { tests: 0, pass: 0, fail: 0, skipped: 0, cancelled: 0, todo: 0 };
const measured = {};
const failedFiles = [];
const children = new Set();
const startedAt = Date.now();
const startCpuMs = childrenCpuMs();
let lastCpuMs = startCpuMs;
let runningLoad = 0;
let heavyRunning = 0;
let lightRunning = 0;
let maxRunning = 0;
let allDone;
const done = new Promise((resolve) => { allDone = resolve; });

function runFile(file, onEnd) {
  const fileStartedAt = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-timeout=${fileTimeoutMs}`, `--test-reporter=${reporter}`, file], {
    stdio: ['ignore', 'pipe', 'pipe'], env: process.env,
  });
  children.add(child);
  let output = '';
  let cpuMs;
  child.stdout.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
  child.stderr.setEncoding('utf8').on('data', (chunk) => { output += chunk; });
  // 'exit' comes right after the child is reaped: what the children's times grew
  // by since the last reaping is this file's process tree (two children reaped
  // in the same instant share it; the estimate is only for the order).
  child.on('exit', () => {
    const now = childrenCpuMs();
    if (now !== null && lastCpuMs !== null) cpuMs = now - lastCpuMs;
    lastCpuMs = now;
  });
  child.on('close', (code, signal) => {
    children.delete(child);
    const ms = Date.now() - fileStartedAt;
    measured[file] = cpuMs === undefined ? { ms } : { ms, cpuMs };
    for (const [, name, value] of output.matchAll(/^(?:# |ℹ )(tests|pass|fail|skipped|cancelled|todo) (\d+)$/gm)) counts[name] += Number(value);
    const ok = code === 0;
    if (!ok) failedFiles.push(file);
    const cpu = cpuMs === undefined ? '' : `, CPU ${(cpuMs / 1000).toFixed(1)} s`;
    process.stdout.write(`# file ${file}: ${ok ? 'passed' : `FAILED (${signal ?? `exit ${code}`})`} in ${(ms / 1000).toFixed(1)} s${cpu}\n${output}`);
    onEnd();
  });
}

// Starts what fits: heavy lanes take the longest file left; light lanes take
// the longest light file left while the estimated load leaves room for it.
function schedule() {
  while (queue.length > 0 && heavyRunning < options.lanes) {
    start(queue.shift(), 'heavy');
  }
  while (lightRunning < options.lightLanes) {
    const index = queue.findIndex((file) => loadOf(file) <= lightLoad && runningLoad + loadOf(file) <= options.budget);
    if (index < 0) break;
    start(queue.splice(index, 1)[0], 'light');
  }
  if (queue.length === 0 && children.size === 0) allDone();
}

function start(file, kind) {
  const load = loadOf(file);
  runningLoad += load;
  if (kind === 'heavy') heavyRunning += 1;
  else lightRunning += 1;
  maxRunning = Math.max(maxRunning, heavyRunning + lightRunning);
  runFile(file, () => {
    runningLoad -= load;
    if (kind === 'heavy') heavyRunning -= 1;
    else lightRunning -= 1;
    schedule();
  });
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) child.kill(signal);
    process.exit(130);
  });
}

schedule();
await done;

const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
const endCpuMs = childrenCpuMs();
const cpuSeconds = endCpuMs !== null && startCpuMs !== null ? `, CPU ${((endCpuMs - startCpuMs) / 1000).toFixed(1)} s` : '';
process.stdout.write(`# suite: ${files.length} files in ${seconds} s${cpuSeconds} (${options.lanes} lanes + ${options.lightLanes} light, `
  + `budget ${options.budget}, at most ${maxRunning} at a time); tests ${counts.tests}, pass ${counts.pass}, `
  + `fail ${counts.fail}, skipped ${counts.skipped}, cancelled ${counts.cancelled}, todo ${counts.todo}\n`);
if (failedFiles.length > 0) process.stdout.write(`# failed files: ${failedFiles.join(' ')}\n`);

// Keeps what this run measured for the next run's order.
// One file a line: { "file": { "ms": wall, "cpuMs": cpu }, ... }.
const sortedJson = (entries) => `{\n${Object.keys(entries).sort()
  .map((file) => ` ${JSON.stringify(file)}: ${JSON.stringify(entries[file]).replace(/[{,:]/g, '$& ').replace(/}$/, ' }')}`).join(',\n')}\n}\n`;
mkdirSync(dirname(cachePath), { recursive: true });
writeFileSync(cachePath, sortedJson({ ...readDurations(cachePath), ...measured }));
if (options.writeCheckedIn) writeFileSync(checkedInPath, sortedJson({ ...readDurations(checkedInPath), ...measured }));
process.exit(failedFiles.length === 0 ? 0 : 1);
