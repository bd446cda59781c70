// `dsm run --listen HOST:PORT --expect N` with `dsm node --join HOST:PORT`, as
// across machines, here on loopback.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { secretFor } from '../fixtures/secret.js';

function freePort(): number {
  return 20000 + Math.floor(Math.random() * 30000);
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
  return { child, done };
}

test('a program runs on a node that listens and a node that joins', async () => {
  const port = freePort();
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
  const port = freePort();
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--join-timeout', '3000', '--region-bytes', '256m', 'examples/sum.js', '10'], { DSM_SECRET: secretFor('one') });
  // The joiner's timeout is long: it is refused as soon as it connects, and node 0
  // may take seconds to listen on a loaded machine (CI saw 12 refused attempts in 3 s).
  const joiner = start(['node', '--join', `127.0.0.1:${port}`, '--region-bytes', '256m', '--join-timeout', '30000'], { DSM_SECRET: secretFor('two') });
  const [ran, joined] = await Promise.all([main.done, joiner.done]);
  assert.notEqual(ran.code, 0);
  assert.notEqual(joined.code, 0);
  assert.match(joined.stderr, /DSM_ERR_SECRET/);
  assert.match(ran.stderr, /DSM_ERR_SECRET|DSM_ERR_JOIN_TIMEOUT/);
});

test('a joiner with another placement is refused, naming the difference on both sides', async () => {
  const port = freePort();
  const env = { DSM_SECRET: secretFor('placement-test') };
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--join-timeout', '3000', '--region-bytes', '256m', '--placement', 'roundRobin', 'examples/sum.js', '10'], env);
  const joiner = start(['node', '--join', `127.0.0.1:${port}`, '--region-bytes', '256m', '--join-timeout', '30000'], env);
  const [ran, joined] = await Promise.all([main.done, joiner.done]);
  assert.notEqual(ran.code, 0);
  assert.notEqual(joined.code, 0);
  assert.match(joined.stderr, /DSM_ERR_CONFIG_MISMATCH.*coherence differs: hlrc\/roundRobin there, hlrc\/block here/);
  assert.match(ran.stderr, /DSM_ERR_CONFIG_MISMATCH|DSM_ERR_JOIN_TIMEOUT/);
});
