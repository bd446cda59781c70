// `dsm run --listen HOST:PORT --expect N` with `dsm node --join HOST:PORT`, as
// across machines, here on loopback.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { secretFor } from '../fixtures/secret.js';

/** A port the system just gave out and took back (a random one could be another test's listener). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * Node 0 reports a refused joiner at once and goes on waiting for the right
 * one (a stranger must not end the run); its join timeout is long, so that a
 * joiner slow to start on a loaded machine still finds it listening (with 3 s,
 * node 0 could give up first and the joiner then saw only refused connections).
 * Once the joiner is gone and node 0 has said why, node 0 is stopped.
 */
async function refusedOnBothSides(main: ReturnType<typeof start>, joiner: ReturnType<typeof start>, reason: RegExp) {
  const joined = await joiner.done;
  const deadline = Date.now() + 30_000;
  while (!reason.test(main.stderr()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  main.child.kill('SIGTERM');
  const ran = await main.done;
  return { ran, joined };
}

function start(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['bin/dsm.js', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void done.then(() => clearTimeout(timer));
  return { child, done, stderr: () => stderr };
}

test('a program runs on a node that listens and a node that joins', async () => {
  const port = await freePort();
  const env = { DSM_SECRET: secretFor('join-test') };
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--region-bytes', '256m', 'examples/sum.js', '1000'], env);
  const joiner = start(['node', '--join', `127.0.0.1:${port}`, '--region-bytes', '256m'], env);
  const [ran, joined] = await Promise.all([main.done, joiner.done]);
  const plain = spawnSync(process.execPath, ['examples/sum.js', '1000'], { encoding: 'utf8' });
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout, plain.stdout);
  assert.notEqual(joined.code, null, 'the joiner ended with the run');
});

test('a joiner with another secret is refused, with the reason on both sides', async () => {
  const port = await freePort();
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--join-timeout', '50000', '--region-bytes', '256m', 'examples/sum.js', '10'], { DSM_SECRET: secretFor('one') });
  // The joiner's timeout is long too: it is refused as soon as it connects, and node 0
  // may take seconds to listen on a loaded machine (CI saw 12 refused attempts in 3 s).
  const joiner = start(['node', '--join', `127.0.0.1:${port}`, '--region-bytes', '256m', '--join-timeout', '30000'], { DSM_SECRET: secretFor('two') });
  const { ran, joined } = await refusedOnBothSides(main, joiner, /DSM_ERR_SECRET/);
  assert.notEqual(ran.code, 0);
  assert.notEqual(joined.code, 0);
  assert.match(joined.stderr, /DSM_ERR_SECRET/);
  assert.match(ran.stderr, /DSM_ERR_SECRET/);
});

test('a joiner with another placement is refused, naming the difference on both sides', async () => {
  const port = await freePort();
  const env = { DSM_SECRET: secretFor('placement-test') };
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--join-timeout', '50000', '--region-bytes', '256m', '--placement', 'roundRobin', 'examples/sum.js', '10'], env);
  const joiner = start(['node', '--join', `127.0.0.1:${port}`, '--region-bytes', '256m', '--join-timeout', '30000'], env);
  const { ran, joined } = await refusedOnBothSides(main, joiner, /DSM_ERR_CONFIG_MISMATCH/);
  assert.notEqual(ran.code, 0);
  assert.notEqual(joined.code, 0);
  assert.match(joined.stderr, /DSM_ERR_CONFIG_MISMATCH.*coherence differs: hlrc\/roundRobin there, hlrc\/block here/);
  assert.match(ran.stderr, /DSM_ERR_CONFIG_MISMATCH/);
});
