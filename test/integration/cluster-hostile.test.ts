// A hostile raw-TCP client against every port of a running cluster (a local
// `--nodes 3` run, and `--listen` with a `dsm node` joiner): each bad input is
// one line naming the peer, the run finishes with the right result, and the
// secret shows in no environment, command line or listening wildcard.

import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { attack, attacks, listeningPorts, truncatedFlood } from '../fixtures/hostile/attacks.js';
import { secretFor } from '../fixtures/secret.js';
import { refusalLinesMax, refusalWindowMs } from '../../src/constants.js';
import { makeTestCerts } from '../fixtures/tls.js';

interface Run { process: ChildProcess; stdout(): string; stderr(): string; exited: Promise<number | null> }

function start(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['bin/dsm.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => { stdout += chunk; });
  child.stderr!.on('data', (chunk) => { stderr += chunk; });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const safety = setTimeout(() => child.kill('SIGKILL'), 120_000);
  void exited.then(() => clearTimeout(safety));
  return { process: child, stdout: () => stdout, stderr: () => stderr, exited };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let attempt = 0; attempt < 1200 && !condition(); attempt += 1) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(condition(), what);
}

function descendants(pid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
  return out === '' ? [] : out.split(/\s+/).map(Number);
}

/** Every attack of the catalogue against one port, then a flood of truncated 8 MiB frames. */
async function assault(port: number, floodCount: number): Promise<void> {
  for (const chunks of Object.values(attacks)) {
    const result = await attack(port, chunks());
    assert.equal(result.closedByServer, true, `port ${port} closed the hostile connection`);
  }
  const sockets = await truncatedFlood(port, floodCount);
  await Promise.all(sockets.map((socket) => new Promise((resolve) => (socket.destroyed ? resolve(null) : socket.once('close', resolve)))));
}

/**
 * Refusals are reported, each naming the stranger, but rate-limited (src/transport/refusals.ts): at most
 * refusalLinesMax per refusalWindowMs per process, the rest counted in one summary line.
 */
function checkRefusalLines(stderr: string, elapsedMs: number, processCount: number): void {
  assert.doesNotMatch(stderr, /TypeError|RangeError|^\s+at /m, 'no raw exception or stack');
  const refusals = stderr.split('\n').filter((line) => /peer at|joiner at/.test(line));
  assert.ok(refusals.length > 0, 'the refusals are reported');
  for (const line of refusals) assert.match(line, /^dsm: DSM_ERR_[A-Z_]+: .*(peer|joiner) at 127\.0\.0\.1:\d+/);
  const bound = processCount * refusalLinesMax * (Math.ceil(elapsedMs / refusalWindowMs) + 1);
  assert.ok(refusals.length <= bound, `at most ${bound} refusal lines in ${elapsedMs} ms from ${processCount} process(es), not ${refusals.length}`);
  assert.match(stderr, /^dsm: DSM_ERR_HANDSHAKE: \d+ more unauthenticated connection\(s\) were refused within \d+ s/m, 'a flood ends in a summary line');
}

function checkNoSecretVisible(pids: number[], secret: string | null): void {
  for (const pid of pids) {
    const environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    assert.doesNotMatch(environ, /DSM_SECRET=/, `pid ${pid}'s environment holds no secret`);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    if (secret !== null) assert.ok(!cmdline.includes(secret) && !environ.includes(secret), `pid ${pid} shows no secret`);
  }
}

async function checkBinds(pids: number[]): Promise<void> {
  const text = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  for (const line of text.split('\n')) {
    if (!pids.some((pid) => line.includes(`pid=${pid},`))) continue;
    assert.match(line.trim().split(/\s+/)[3]!, /^127\.0\.0\.1:\d+$/, `listens on the cluster's address only: ${line}`);
  }
}

test('a running --nodes 3 cluster shrugs off a hostile client on every port, and no secret shows', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsm-hostile-'));
  const goFile = join(dir, 'go');
  const startedAt = Date.now();
  const run = start(['run', '--nodes', '3', '--region-bytes', '256m', 'test/fixtures/programs/hostile-wait.mjs', goFile]);
  try {
    await until(() => (run.stdout().match(/^worker \d/gm) ?? []).length === 3, 'three workers started');
    const pids = [run.process.pid!, ...descendants(run.process.pid!)];
    assert.equal(pids.length, 3, 'node 0 and two child nodes');
    const workerPids = [...run.stdout().matchAll(/^worker \d pid (\d+)/gm)].map((match) => Number(match[1]));
    assert.ok(workerPids.some((pid) => pid !== run.process.pid), 'some workers run on other nodes');
    for (const line of run.stdout().split('\n').filter((text) => text.startsWith('worker '))) assert.match(line, /env none child none$/);
    checkNoSecretVisible(pids, null);
    await checkBinds(pids);
    for (const pid of pids) {
      for (const port of await listeningPorts(pid)) await assault(port, pid === run.process.pid ? 200 : 20);
    }
    writeFileSync(goFile, '');
    assert.equal(await run.exited, 0, run.stderr());
    assert.match(run.stdout(), /^sum 3000$/m);
    checkRefusalLines(run.stderr(), Date.now() - startedAt, 3);
  } finally {
    run.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test('--listen keeps serving real nodes through a hostile client, before and after they join; the secret file stays off argv', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsm-hostile-'));
  const goFile = join(dir, 'go');
  const secretFile = join(dir, 'secret');
  const secret = secretFor('listen');
  writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const port = await freePort();
  const startedAt = Date.now();
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--secret-file', secretFile, '--join-timeout', '60000', '--region-bytes', '256m', 'test/fixtures/programs/hostile-wait.mjs', goFile]);
  let joiner: Run | null = null;
  try {
    await until(() => { try { return listeningPortsSync(main.process.pid!).includes(port); } catch { return false; } }, 'node 0 listens');
    // Before anyone joined: the control port takes the whole catalogue and a flood, and still admits the node.
    await assault(port, 200);
    joiner = start(['node', '--join', `127.0.0.1:${port}`, '--secret-file', secretFile, '--region-bytes', '256m']);
    await until(() => (main.stdout().match(/^worker \d/gm) ?? []).length === 3, 'three workers started');
    const pids = [main.process.pid!, joiner.process.pid!];
    checkNoSecretVisible(pids, secret);
    await checkBinds(pids);
    for (const pid of pids) for (const hostilePort of await listeningPorts(pid)) await assault(hostilePort, 20);
    writeFileSync(goFile, '');
    assert.equal(await main.exited, 0, main.stderr());
    assert.match(main.stdout(), /^sum 3000$/m);
    assert.equal(await joiner.exited, 0, joiner.stderr());
    checkRefusalLines(main.stderr(), Date.now() - startedAt, 1);
  } finally {
    main.process.kill('SIGKILL');
    joiner?.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a weak secret is refused with how to make one; dsm secret prints a strong one', () => {
  const weak = spawnSyncDsm(['node', '--join', '127.0.0.1:1', '--secret', 'hunter2']);
  assert.equal(weak.status, 2);
  assert.match(weak.stderr, /^dsm: DSM_ERR_WEAK_SECRET: .*dsm secret/);
  const made = spawnSyncDsm(['secret']);
  assert.equal(made.status, 0);
  assert.match(made.stdout, /^[A-Za-z0-9_-]{43}\n$/);
  assert.notEqual(made.stdout, spawnSyncDsm(['secret']).stdout);
});

function spawnSyncDsm(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['bin/dsm.js', ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, DSM_SECRET: '' } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function listeningPortsSync(pid: number): number[] {
  const text = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' });
  return text.split('\n').filter((line) => line.includes(`pid=${pid},`)).map((line) => {
    const local = line.trim().split(/\s+/)[3] ?? '';
    return Number(local.slice(local.lastIndexOf(':') + 1));
  });
}

test('mutual TLS: a --listen run with a TLS joiner completes; strangers without a certificate and a node with another CA are turned away', async (t) => {
  const certs = makeTestCerts();
  if (certs === null) {
    t.skip('openssl is not installed');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'dsm-hostile-'));
  const goFile = join(dir, 'go');
  const secretFile = join(dir, 'secret');
  writeFileSync(secretFile, `${secretFor('tls')}\n`, { mode: 0o600 });
  const tlsArgs = ['--tls-cert', certs.cert, '--tls-key', certs.key, '--tls-ca', certs.ca];
  const port = await freePort();
  const startedAt = Date.now();
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--secret-file', secretFile, ...tlsArgs, '--join-timeout', '60000', '--region-bytes', '256m', 'test/fixtures/programs/hostile-wait.mjs', goFile]);
  let joiner: Run | null = null;
  let wrongCa: Run | null = null;
  try {
    await until(() => listeningPortsSync(main.process.pid!).includes(port), 'node 0 listens');
    // Plain TCP (no certificate at all): refused by TLS, whatever the bytes.
    for (const chunks of Object.values(attacks).slice(0, 3)) assert.equal((await attack(port, chunks())).closedByServer, true);
    wrongCa = start(['node', '--join', `127.0.0.1:${port}`, '--secret-file', secretFile, '--tls-cert', certs.cert, '--tls-key', certs.key, '--tls-ca', certs.otherCa, '--region-bytes', '256m', '--join-timeout', '2000']);
    assert.notEqual(await wrongCa.exited, 0, 'a node that does not trust our CA does not join');
    joiner = start(['node', '--join', `127.0.0.1:${port}`, '--secret-file', secretFile, ...tlsArgs, '--region-bytes', '256m']);
    await until(() => (main.stdout().match(/^worker \d/gm) ?? []).length === 3, 'three workers started');
    writeFileSync(goFile, '');
    assert.equal(await main.exited, 0, main.stderr());
    assert.match(main.stdout(), /^sum 3000$/m);
    assert.equal(await joiner.exited, 0, joiner.stderr());
    assert.match(main.stderr(), /DSM_ERR_HANDSHAKE: peer at 127\.0\.0\.1:\d+: TLS refused/);
  } finally {
    main.process.kill('SIGKILL');
    joiner?.process.kill('SIGKILL');
    wrongCa?.process.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    rmSync(certs.dir, { recursive: true, force: true });
  }
});
