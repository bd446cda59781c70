// Runs every test file under test/ with node's test runner, TypeScript loaded by tsx.
// `npm test -- unit` restricts to paths containing "unit".
//
// Each file runs in a node process of its own (the file itself, not a `node
// --test` parent that starts it in a child: that parent costs ~0.2 s of CPU a
// file), except light unit and simulation files: those run batched, several in
// one process (scripts/test-batch.mjs imports them in turn), since a process's
// start with tsx costs ~0.5 s of CPU, as much as such a file's tests. A batch is
// files under test/unit/ and test/sim/ whose checked-in CPU time is at most
// 5.5 s and that declare no hook at their top level, nor do the modules of
// test/ they import (a top-level after() or before() belongs to the process's
// root test, which a batch shares), up to about 8 s of CPU a batch. When a batch fails, each of its files runs again
// alone, so that the failing files are named (a file that passes alone is
// reported with its batch). `--no-batch` runs every file alone.
//
// The longest files (and batches) start first, so that the lanes end together instead of one long file running
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
// a summary of all files comes last. Each process is killed (and its file
// fails) after 15 min: the bound is for hangs (each test bounds its own
// processes), which costs nothing when files end in time (at 300 s the longest
// files failed on a busy machine with all their tests passing). It was node
// 20's --test-timeout, which bounds nothing without --test.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, relative } from 'node:path';

const fileTimeoutMs = 900_000;
// A file is light when its processes used at most this much CPU per wall second.
const lightLoad = 0.45;
const args = process.argv.slice(2);
const filters = [];
// Batches: files whose checked-in CPU is at most this, up to this much CPU a batch.
const batchFileCpuMs = 5500;
const batchCpuMs = 8000;
const options = { lanes: 2, lightLanes: 2, budget: Math.max(2, availableParallelism()) + 0.5, writeCheckedIn: false, batch: true };
for (let i = 0; i < args.length; i += 1) {
  const arg = args[i];
  if (arg === '--write-durations') options.writeCheckedIn = true;
  else if (arg === '--no-batch') options.batch = false;
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
// A CPU estimate for grouping (checked-in first, as for the load).
const cpuOf = (file) => checkedIn[file]?.cpuMs ?? known[file]?.cpuMs ?? Infinity;

// A file whose top level, or the top level of a module of test/ it imports (at any
// depth), declares a hook (after(), before(), ...) would give it to the root test
// that a batch's files share: it runs alone.
function topLevelHook(file, seen = new Set()) {
  if (seen.has(file) || !existsSync(file)) return false;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  if (/^(?:after|afterEach|before|beforeEach)\(/m.test(text)) return true;
  for (const [, specifier] of text.matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)) {
    const path = join(dirname(file), specifier);
    if (!path.startsWith('test/')) continue;
    if (topLevelHook(path.replace(/\.js$/, '.ts'), seen) || topLevelHook(path, seen)) return true;
  }
  return false;
}
const batchable = (file) => options.batch && /^test\/(?:unit|sim)\//.test(file) && cpuOf(file) <= batchFileCpuMs && !topLevelHook(file);

// A job is one process: a file, or a batch of files. Its estimates are its files' sums.
const jobOf = (jobFiles) => ({
  files: jobFiles,
  name: jobFiles.length === 1 ? jobFiles[0] : `batch of ${jobFiles.length} (${jobFiles.join(' ')})`,
  ms: jobFiles.reduce((sum, file) => sum + durationOf(file), 0),
  cpuMs: jobFiles.reduce((sum, file) => sum + cpuOf(file), 0),
  load: jobFiles.length === 1 ? loadOf(jobFiles[0]) : 1,
});
const jobs = files.filter((file) => !batchable(file)).map((file) => jobOf([file]));
{
  // Batches of about batchCpuMs each, the files dealt out heaviest first to the lightest batch.
  const light = files.filter(batchable).sort((a, b) => cpuOf(b) - cpuOf(a) || a.localeCompare(b));
  const total = light.reduce((sum, file) => sum + cpuOf(file), 0);
  const batches = Array.from({ length: Math.ceil(total / batchCpuMs) }, () => ({ files: [], cpuMs: 0 }));
  for (const file of light) {
    const batch = batches.reduce((least, each) => (each.cpuMs < least.cpuMs ? each : least));
    batch.files.push(file);
    batch.cpuMs += cpuOf(file);
  }
  for (const batch of batches) if (batch.files.length > 0) jobs.push(jobOf(batch.files.sort()));
}
const queue = [...jobs].sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name));

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

// Runs a job's files in one process: the file itself, or scripts/test-batch.mjs
// importing each in turn. Calls onEnd(ok, ms, cpuMs, output, code, signal).
function runProcess(jobFiles, onEnd) {
  const fileStartedAt = Date.now();
  const entry = jobFiles.length === 1 ? jobFiles : ['scripts/test-batch.mjs', ...jobFiles];
  const child = spawn(process.execPath, ['--import', 'tsx', `--test-reporter=${reporter}`, ...entry], {
    stdio: ['ignore', 'pipe', 'pipe'], env: process.env,
  });
  children.add(child);
  let output = '';
  let cpuMs;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, fileTimeoutMs);
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
    clearTimeout(timer);
    children.delete(child);
    if (timedOut) output += `\n# killed after ${fileTimeoutMs / 1000} s (a hang)\n`;
    onEnd(code === 0, Date.now() - fileStartedAt, cpuMs, output, code, signal);
  });
}

const cpuText = (cpuMs) => (cpuMs === undefined ? '' : `, CPU ${(cpuMs / 1000).toFixed(1)} s`);
const statusText = (ok, code, signal) => (ok ? 'passed' : `FAILED (${signal ?? `exit ${code}`})`);
const addCounts = (output) => {
  for (const [, name, value] of output.matchAll(/^(?:# |ℹ )(tests|pass|fail|skipped|cancelled|todo) (\d+)$/gm)) counts[name] += Number(value);
};

function runJob(job, onEnd) {
  runProcess(job.files, (ok, ms, cpuMs, output, code, signal) => {
    if (job.files.length === 1) {
      const [file] = job.files;
      measured[file] = cpuMs === undefined ? { ms } : { ms, cpuMs };
      addCounts(output);
      if (!ok) failedFiles.push(file);
      process.stdout.write(`# file ${file}: ${statusText(ok, code, signal)} in ${(ms / 1000).toFixed(1)} s${cpuText(cpuMs)}\n${output}`);
      onEnd();
      return;
    }
    // A batch's times are shared out to its files in proportion to their estimates
    // (the file times keep their format; only the order and grouping use them).
    for (const file of job.files) {
      const share = Number.isFinite(job.cpuMs) && job.cpuMs > 0 ? cpuOf(file) / job.cpuMs : 1 / job.files.length;
      measured[file] = { ms: Math.round(ms * share), ...(cpuMs === undefined ? {} : { cpuMs: Math.round(cpuMs * share) }) };
    }
    process.stdout.write(`# ${job.name}: ${statusText(ok, code, signal)} in ${(ms / 1000).toFixed(1)} s${cpuText(cpuMs)}\n${output}`);
    if (ok) {
      addCounts(output);
      onEnd();
      return;
    }
    // Each file again alone, in turn, to name the failing ones; the counts are theirs.
    process.stdout.write(`# the batch failed: its ${job.files.length} files run again, each alone\n`);
    const rest = [...job.files];
    let anyFailed = false;
    const next = () => {
      const file = rest.shift();
      if (file === undefined) {
        if (!anyFailed) failedFiles.push(`${job.name} (its files pass alone)`);
        onEnd();
        return;
      }
      runProcess([file], (fileOk, fileMs, fileCpuMs, fileOutput, fileCode, fileSignal) => {
        addCounts(fileOutput);
        if (!fileOk) {
          anyFailed = true;
          failedFiles.push(file);
        }
        process.stdout.write(`# file ${file} (alone): ${statusText(fileOk, fileCode, fileSignal)} in ${(fileMs / 1000).toFixed(1)} s${cpuText(fileCpuMs)}\n${fileOk ? '' : fileOutput}`);
        next();
      });
    };
    next();
  });
}

// Starts what fits: heavy lanes take the longest file left; light lanes take
// the longest light file left while the estimated load leaves room for it.
function schedule() {
  while (queue.length > 0 && heavyRunning < options.lanes) {
    start(queue.shift(), 'heavy');
  }
  while (lightRunning < options.lightLanes) {
    const index = queue.findIndex((job) => job.load <= lightLoad && runningLoad + job.load <= options.budget);
    if (index < 0) break;
    start(queue.splice(index, 1)[0], 'light');
  }
  if (queue.length === 0 && heavyRunning + lightRunning === 0) allDone();
}

function start(job, kind) {
  const { load } = job;
  runningLoad += load;
  if (kind === 'heavy') heavyRunning += 1;
  else lightRunning += 1;
  maxRunning = Math.max(maxRunning, heavyRunning + lightRunning);
  runJob(job, () => {
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
process.stdout.write(`# suite: ${files.length} files (${jobs.length} processes) in ${seconds} s${cpuSeconds} (${options.lanes} lanes + ${options.lightLanes} light, `
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
