#!/usr/bin/env node
// `npm run conformance -- --test262 DIR [--nodes 1|3] [--protocol hlrc|sc] [--json]`
//
// Runs test262's test/built-ins/Atomics and test/built-ins/SharedArrayBuffer
// (sloppy and strict as each test's flags say, with its harness includes)
// under plain node and under `dsm run --nodes N --protocol P`, and prints per
// mode the runs that pass under node but fail under dsm. A run that fails
// (under either) is run once more before it counts, because some tests
// measure time and a loaded machine can fail them. test262 is not part of
// dsm: get it with `git clone --depth 1 https://github.com/tc39/test262`.
//
// Options: --jobs N (runs at once, default 2), --filter TEXT (only tests whose
// path contains TEXT), --timeout MS (per run, default 30000), --keep (keep the
// composed test files), --dsm FILE (the dsm command to test, default this
// checkout's bin/dsm.js).

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const runnerFile = join(root, 'scripts', 'conformance', 'runner.cjs');
const suites = ['test/built-ins/Atomics', 'test/built-ins/SharedArrayBuffer'];

function usage(message) {
  process.stderr.write(`conformance: DSM_ERR_USAGE: ${message}\n` +
    'usage: npm run conformance -- --test262 DIR [--nodes 1|3] [--protocol hlrc|sc] [--json] [--jobs N] [--filter TEXT] [--timeout MS]\n');
  process.exit(2);
}

function parseArgs(argv) {
  const options = { test262: null, nodes: [1, 3], protocols: ['hlrc', 'sc'], json: false, jobs: 2, filter: '', timeoutMs: 30_000, keep: false, dsm: join(root, 'bin', 'dsm.js') };
  for (let k = 0; k < argv.length; k++) {
    const arg = argv[k];
    const value = () => { if (k + 1 >= argv.length) usage(`${arg} needs a value`); return argv[++k]; };
    switch (arg) {
      case '--test262': options.test262 = value(); break;
      case '--nodes': {
        const nodes = Number(value());
        if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) usage('--nodes must be an integer from 1 to 16');
        options.nodes = [nodes];
        break;
      }
      case '--protocol': {
        const protocol = value();
        if (protocol !== 'hlrc' && protocol !== 'sc') usage('--protocol must be hlrc or sc');
        options.protocols = [protocol];
        break;
      }
      case '--json': options.json = true; break;
      case '--keep': options.keep = true; break;
      case '--dsm': options.dsm = value(); break;
      case '--jobs': options.jobs = Number(value()); if (!(options.jobs >= 1 && options.jobs <= 64)) usage('--jobs must be from 1 to 64'); break;
      case '--filter': options.filter = value(); break;
      case '--timeout': options.timeoutMs = Number(value()); if (!(options.timeoutMs >= 1000)) usage('--timeout must be at least 1000 (ms)'); break;
      default: usage(`unknown option '${arg}'`);
    }
  }
  if (options.test262 === null) usage('--test262 DIR is required (a checkout of https://github.com/tc39/test262)');
  for (const suite of suites) {
    if (!existsSync(join(options.test262, suite))) usage(`${join(options.test262, suite)} does not exist: is --test262 a test262 checkout?`);
  }
  return options;
}

function listTests(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) found.push(...listTests(path));
    else if (name.endsWith('.js') && !name.includes('_FIXTURE')) found.push(path);
  }
  return found;
}

/** The YAML front matter fields a runner needs: includes, flags, negative. */
function metadataOf(source) {
  const match = /\/\*---([\s\S]*?)---\*\//.exec(source);
  const text = match === null ? '' : match[1];
  const list = (key) => {
    const inline = new RegExp(`^${key}:\\s*\\[(.*)\\]`, 'm').exec(text);
    if (inline !== null) return inline[1].split(',').map((item) => item.trim()).filter(Boolean);
    const block = new RegExp(`^${key}:\\s*\\n((?:\\s+-.*\\n?)+)`, 'm').exec(text);
    return block === null ? [] : block[1].split('\n').map((line) => line.replace(/^\s*-\s*/, '').trim()).filter(Boolean);
  };
  const negative = /^negative:\s*\n\s+phase:\s*(\w+)\s*\n\s+type:\s*(\w+)/m.exec(text) ?? /^negative:\s*\n\s+type:\s*(\w+)\s*\n\s+phase:\s*(\w+)/m.exec(text);
  let negativeType = null;
  if (negative !== null) negativeType = /phase/.test(negative[0].split('\n')[1]) ? negative[2] : negative[1];
  return { includes: list('includes'), flags: list('flags'), negativeType };
}

/** Every run of the suites: one per test and mode (sloppy, strict) its flags allow. */
function planRuns(options, workDir) {
  const harness = (name) => readFileSync(join(options.test262, 'harness', name), 'utf8');
  const runs = [];
  for (const suite of suites) {
    for (const path of listTests(join(options.test262, suite))) {
      const name = relative(options.test262, path);
      if (options.filter !== '' && !name.includes(options.filter)) continue;
      const source = readFileSync(path, 'utf8');
      const meta = metadataOf(source);
      // A node main thread can block, so [[CanBlock]] is true; modules are not in these suites.
      if (meta.flags.includes('CanBlockIsFalse') || meta.flags.includes('module')) continue;
      const async = meta.flags.includes('async');
      const raw = meta.flags.includes('raw');
      const includes = raw ? [] : ['assert.js', 'sta.js', ...(async ? ['doneprintHandle.js'] : []), ...meta.includes];
      const body = includes.map(harness).join('\n') + '\n' + source;
      const modes = raw || meta.flags.includes('noStrict') ? ['sloppy'] : meta.flags.includes('onlyStrict') ? ['strict'] : ['sloppy', 'strict'];
      for (const mode of modes) {
        const file = join(workDir, `${runs.length}.js`);
        writeFileSync(file, (mode === 'strict' ? '"use strict";\n' : '') + body);
        runs.push({ name, mode, file, async, negativeType: meta.negativeType });
      }
    }
  }
  return runs;
}

/** Runs in flight: each is its own process group, ended with it if we are interrupted. */
const children = new Set();
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const child of children) { try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ } }
    process.exit(130);
  });
}

function runOnce(command, args, timeoutMs) {
  return new Promise((resolvePromise) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => { if (stdout.length < 65536) stdout += chunk; });
    child.stderr.on('data', (chunk) => { if (stderr.length < 65536) stderr += chunk; });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { process.kill(-child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }, timeoutMs);
    child.on('close', (code, signal) => {
      children.delete(child);
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr, timedOut });
    });
  });
}

function verdict(run, result) {
  if (result.timedOut) return { pass: false, why: 'timed out' };
  if (run.negativeType !== null) {
    const pass = result.code !== 0 && result.stderr.includes(run.negativeType);
    return { pass, why: pass ? '' : `expected ${run.negativeType}, exit ${result.code}` };
  }
  if (result.code !== 0) return { pass: false, why: firstErrorLine(result.stderr) || `exit ${result.code ?? result.signal}` };
  if (run.async) {
    if (!result.stdout.includes('Test262:AsyncTestComplete') || result.stdout.includes('Test262:AsyncTestFailure')) {
      return { pass: false, why: (/Test262:AsyncTestFailure:.*/.exec(result.stdout)?.[0]) ?? 'async test never completed' };
    }
  }
  return { pass: true, why: '' };
}

function firstErrorLine(stderr) {
  const lines = stderr.split('\n').map((line) => line.trim()).filter(Boolean);
  return lines.find((line) => /^(\w*Error|Test262Error|DsmError|Uncaught)\b|Error:|DSM_ERR_/.test(line)) ?? lines[0] ?? '';
}

/** Runs one run under one mode; a failure is run once more (timing tests are flaky on a loaded machine). */
async function runInMode(run, mode, options) {
  const args = mode.nodes === 0 ? [runnerFile, run.file]
    : [options.dsm, 'run', '--nodes', String(mode.nodes), '--protocol', mode.protocol, runnerFile, run.file];
  let result = verdict(run, await runOnce(process.execPath, args, options.timeoutMs));
  if (!result.pass) {
    const second = verdict(run, await runOnce(process.execPath, args, options.timeoutMs));
    if (second.pass) return { pass: true, why: '', flaky: true };
    result = second;
  }
  return { ...result, flaky: false };
}

async function pool(items, jobs, work) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(jobs, items.length) }, async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  }));
  return results;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const workDir = mkdtempSync(join(tmpdir(), 'dsm-conformance-'));
  try {
    const runs = planRuns(options, workDir);
    const log = (text) => { if (!options.json) process.stderr.write(text); };
    log(`conformance: ${runs.length} runs from ${options.test262} (${suites.join(', ')}), ${options.jobs} at a time\n`);
    const nodeResults = await pool(runs, options.jobs, (run) => runInMode(run, { nodes: 0 }, options));
    const nodePassCount = nodeResults.filter((result) => result.pass).length;
    log(`node ${process.version}: ${nodePassCount}/${runs.length} runs pass\n`);
    const modes = [];
    for (const nodes of options.nodes) {
      for (const protocol of options.protocols) {
        const started = performance.now();
        // Only runs that pass under node can differ in the way that counts.
        const candidates = runs.filter((_, index) => nodeResults[index].pass);
        let doneCount = 0;
        const dsmResults = await pool(candidates, options.jobs, async (run) => {
          const result = await runInMode(run, { nodes, protocol }, options);
          doneCount++;
          if (!result.pass) log(`  [--nodes ${nodes} --protocol ${protocol}] FAIL ${run.name} (${run.mode}): ${result.why}\n`);
          if (doneCount % 100 === 0) log(`  [--nodes ${nodes} --protocol ${protocol}] ${doneCount}/${candidates.length}\n`);
          return result;
        });
        const failures = candidates
          .map((run, index) => ({ run, result: dsmResults[index] }))
          .filter(({ result }) => !result.pass)
          .map(({ run, result }) => ({ test: run.name, mode: run.mode, why: result.why }));
        const flakyCount = dsmResults.filter((result) => result.flaky).length;
        const mode = { nodes, protocol, runs: runs.length, nodePass: nodePassCount, dsmPass: candidates.length - failures.length,
          failCount: failures.length, flakyRerunPassCount: flakyCount, seconds: Math.round((performance.now() - started) / 100) / 10, failures };
        modes.push(mode);
        if (!options.json) {
          process.stdout.write(`\n--nodes ${nodes} --protocol ${protocol}: ${failures.length} run(s) pass under node but fail under dsm` +
            ` (${mode.dsmPass}/${candidates.length} pass; ${flakyCount} passed on the rerun; ${mode.seconds} s)\n`);
          for (const failure of failures) process.stdout.write(`  ${failure.test} (${failure.mode}): ${failure.why}\n`);
        }
      }
    }
    const nodeFailures = runs.map((run, index) => ({ run, result: nodeResults[index] })).filter(({ result }) => !result.pass)
      .map(({ run, result }) => ({ test: run.name, mode: run.mode, why: result.why }));
    if (options.json) {
      process.stdout.write(JSON.stringify({ test262: options.test262, node: process.version, runs: runs.length, nodePass: nodePassCount, nodeFailures, modes }, null, 2) + '\n');
    }
    process.exitCode = modes.some((mode) => mode.failCount > 0) ? 1 : 0;
  } finally {
    if (!options.keep) rmSync(workDir, { recursive: true, force: true });
    else process.stderr.write(`conformance: composed tests kept in ${workDir}\n`);
  }
}

await main();
