#!/usr/bin/env node
// Timing survey of the user programs (test/fixtures/users*, or the folders --dirs names): each runs under plain `node` and under
// `node bin/dsm.js run --nodes N` (hlrc), best of --repeat runs, each bounded by --timeout; prints a table sorted by
// the ratio dsm / plain. Informative, not a test: the machine's load moves every figure (say `uptime` with them).
//
// The fixed cost of a run (node's start, dsm's cluster start-up and end) is measured on an empty program and
// reported apart: `net ratio` is (dsm − empty dsm) / (plain − empty plain), the per-operation cost.
//
// Usage: node scripts/user-times.mjs [--nodes 2,3] [--repeat 2] [--timeout 60] [--only a,b] [--stats 5] [--json file]
//   --only     substrings of file names to run (default: all)
//   --dirs     comma-separated folders of programs (default: every test/fixtures/users* folder)
//   --stats    rerun the worst K (by net ratio at the largest node count) with --stats-json and print their
//              messages, bytes, page fetches, atomic ops and waits
//   --args     "file=a b c;file2=..." overrides of a program's argv (default: the program's own defaults)

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const options = { nodes: [2, 3], repeat: 2, timeout: 60, only: [], dirs: [], stats: 5, json: undefined, args: new Map() };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 1) {
  const name = argv[i];
  const value = argv[++i];
  if (name === '--nodes') options.nodes = value.split(',').map(Number);
  else if (name === '--repeat') options.repeat = Number(value);
  else if (name === '--timeout') options.timeout = Number(value);
  else if (name === '--only') options.only = value.split(',');
  else if (name === '--dirs') options.dirs = value.split(',');
  else if (name === '--stats') options.stats = Number(value);
  else if (name === '--json') options.json = value;
  else if (name === '--args') {
    for (const entry of value.split(';')) {
      const [file, rest] = entry.split('=');
      options.args.set(file, rest.trim().split(/\s+/));
    }
  } else {
    console.error(`unknown option ${name}`);
    process.exit(2);
  }
}

// Programs whose point is an error, an exit code or a timeout: their time says nothing about dsm's speed.
const skip = new Set(['fail-in-barrier.mjs', 'worker-throws.mjs', 'exit-queued.mjs', 'wait-timeouts.mjs', 'terminate-blocked.mjs']);

const directories = options.dirs.length > 0
  ? options.dirs
  : readdirSync('test/fixtures').filter((name) => /^users\d*$/.test(name)).sort((a, b) => Number(a.slice(5) || 1) - Number(b.slice(5) || 1)).map((name) => join('test/fixtures', name));
const programs = [];
for (const directory of directories) {
  for (const file of readdirSync(directory).sort()) {
    if (!/\.[cm]js$/.test(file) || skip.has(file)) continue;
    if (options.only.length > 0 && !options.only.some((part) => file.includes(part))) continue;
    programs.push({ file, path: join(directory, file), args: options.args.get(file) ?? [] });
  }
}

const scratch = mkdtempSync(join(tmpdir(), 'user-times-'));
const empty = join(scratch, 'empty.mjs');
writeFileSync(empty, '');

/** Best wall time of `repeat` runs in seconds (undefined when a run failed or timed out), and the last output. */
function time(command) {
  let best;
  let output = '';
  for (let i = 0; i < options.repeat; i += 1) {
    const start = process.hrtime.bigint();
    const result = spawnSync(process.execPath, command, { encoding: 'utf8', timeout: options.timeout * 1000, maxBuffer: 1 << 26 });
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    if (result.error !== undefined || result.signal !== null) return { seconds: undefined, output: `timeout/${result.signal ?? result.error}`, status: result.status };
    output = result.stdout;
    if (best === undefined || seconds < best) best = seconds;
    if (i === options.repeat - 1) return { seconds: best, output, status: result.status };
  }
  return { seconds: best, output, status: 0 };
}

const dsm = (nodes, extra = []) => ['bin/dsm.js', 'run', '--nodes', String(nodes), ...extra];

const base = { plain: time([empty]).seconds };
for (const nodes of options.nodes) base[nodes] = time([...dsm(nodes), empty]).seconds;
console.log(`empty program: plain ${base.plain.toFixed(2)} s, ${options.nodes.map((n) => `dsm ${n} nodes ${base[n].toFixed(2)} s`).join(', ')}`);

const rows = [];
for (const program of programs) {
  const plain = time([program.path, ...program.args]);
  const row = { file: program.file, args: program.args, plain: plain.seconds, dsm: {}, same: {} };
  for (const nodes of options.nodes) {
    const run = time([...dsm(nodes), program.path, ...program.args]);
    row.dsm[nodes] = run.seconds;
    row.same[nodes] = run.output === plain.output && run.status === plain.status;
  }
  rows.push(row);
  process.stderr.write(`${program.file} `);
}
process.stderr.write('\n');

const ratio = (row, nodes) => (row.dsm[nodes] === undefined ? Infinity : row.dsm[nodes] / row.plain);
const net = (row, nodes) =>
  row.dsm[nodes] === undefined ? Infinity : Math.max(row.dsm[nodes] - base[nodes], 0.001) / Math.max(row.plain - base.plain, 0.01);
const last = options.nodes[options.nodes.length - 1];
rows.sort((a, b) => net(b, last) - net(a, last));

const cell = (value, digits = 2) => (value === undefined ? 'fail' : value === Infinity ? '∞' : value.toFixed(digits));
const header = ['program', 'plain s', ...options.nodes.flatMap((n) => [`${n}n s`, `${n}n ratio`, `${n}n net`])];
console.log(`| ${header.join(' | ')} |`);
console.log(`|${header.map(() => '---').join('|')}|`);
for (const row of rows) {
  const cells = [row.file + (row.args.length > 0 ? ` ${row.args.join(' ')}` : ''), cell(row.plain)];
  for (const nodes of options.nodes) {
    cells.push(cell(row.dsm[nodes]) + (row.same[nodes] ? '' : ' (differs)'), cell(ratio(row, nodes), 1), cell(net(row, nodes), 1));
  }
  console.log(`| ${cells.join(' | ')} |`);
}

/** The figures of a --stats-json file summed over nodes: messages and bytes by type, and the counters named below. */
function summary(file) {
  const stats = JSON.parse(readFileSync(file, 'utf8'));
  const nodes = Array.isArray(stats) ? stats : (stats.nodes ?? [stats]);
  const totals = {};
  const add = (key, value) => {
    if (typeof value === 'number') totals[key] = (totals[key] ?? 0) + value;
  };
  const walk = (prefix, value) => {
    if (typeof value === 'number') add(prefix, value);
    else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) walk(prefix === '' ? k : `${prefix}.${k}`, v);
  };
  for (const node of nodes) walk('', node);
  return totals;
}

if (options.stats > 0) {
  const worst = rows.filter((row) => row.dsm[last] !== undefined).slice(0, options.stats);
  for (const row of worst) {
    const file = join(scratch, `${row.file}.json`);
    const program = programs.find((p) => p.file === row.file);
    spawnSync(process.execPath, [...dsm(last, ['--stats-json', file]), program.path, ...program.args], { timeout: options.timeout * 1000 });
    let totals;
    try {
      totals = summary(file);
    } catch (error) {
      console.log(`${row.file}: no statistics (${error.message})`);
      continue;
    }
    const wanted = Object.entries(totals)
      .filter(([key, value]) => value > 0 && /messages|bytes|fetch|fault|atomic|wait|lock|barrier|diff/i.test(key))
      .sort((a, b) => b[1] - a[1])
      .slice(0, 24)
      .map(([key, value]) => `${key} ${value}`);
    console.log(`\n${row.file} on ${last} nodes (summed over nodes):\n  ${wanted.join('\n  ')}`);
    row.stats = totals;
  }
}

if (options.json !== undefined) writeFileSync(options.json, JSON.stringify({ base, rows }, null, 2));
rmSync(scratch, { recursive: true, force: true });
