// Cluster start-up says what it is doing on a terminal: node 0 waits for N
// nodes at an address, a joiner says which node it became, and a joiner that
// cannot reach node 0 says so at once and shows its retries. Not a terminal
// (pipes, files): nothing but the program's own output.

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { test } from 'node:test';
import { secretFor } from '../fixtures/secret.js';

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function start(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, ['bin/dsm.js', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  const seen: Array<{ pattern: RegExp; resolve: () => void }> = [];
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
    for (const waiter of seen.splice(0)) {
      if (waiter.pattern.test(stderr)) waiter.resolve();
      else seen.push(waiter);
    }
  });
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  void done.then(() => clearTimeout(timer));
  /** Resolves when stderr matches `pattern` (the process still running). */
  const said = (pattern: RegExp) => new Promise<boolean>((resolve) => {
    if (pattern.test(stderr)) { resolve(child.exitCode === null); return; }
    seen.push({ pattern, resolve: () => resolve(child.exitCode === null) });
    void done.then(() => resolve(false));
  });
  return { child, done, said };
}

test('node 0 says it waits for N nodes at its address; a joiner says which node it became', async () => {
  const port = await freePort();
  const env = { DSM_SECRET: secretFor('progress-test'), DSM_PROGRESS: '1' };
  const main = start(['run', '--listen', `127.0.0.1:${port}`, '--expect', '2', '--region-bytes', '256m', 'examples/sum.js', '1000'], env);
  assert.equal(await main.said(/waiting for 2 nodes at 127\.0\.0\.1:\d+/), true, 'node 0 says what it waits for before anyone joins');
  const joiner = start(['node', '--join', `127.0.0.1:${port}`, '--region-bytes', '256m'], env);
  const [ran, joined] = await Promise.all([main.done, joiner.done]);
  const plain = spawnSync(process.execPath, ['examples/sum.js', '1000'], { encoding: 'utf8' });
  assert.equal(ran.code, 0, ran.stderr);
  assert.equal(ran.stdout, plain.stdout, 'progress never goes to stdout');
  assert.match(ran.stderr, new RegExp(`^dsm: waiting for 2 nodes at 127\\.0\\.0\\.1:${port} .*dsm node --join 127\\.0\\.0\\.1:${port}`, 'm'));
  assert.match(ran.stderr, /^dsm: node 1 joined from 127\.0\.0\.1 \(2 of 2\)$/m);
  assert.match(ran.stderr, /^dsm: all 2 nodes joined; starting the program$/m);
  assert.match(joined.stderr, /^dsm: joined as node 1; waiting for the other nodes$/m);
});

test('a joiner that cannot reach node 0 says so at once, shows its retries, then gives up with a code', async () => {
  const port = await freePort();
  const joiner = start(['node', '--join', `127.0.0.1:${port}`, '--join-timeout', '2500'], { DSM_SECRET: secretFor('s'), DSM_PROGRESS: '1' });
  assert.equal(await joiner.said(/node 0 at 127\.0\.0\.1:\d+ is not reachable yet \(ECONNREFUSED\); retrying every \d+ ms, attempt 1,/), true,
    'the first failed attempt is reported while the joiner still retries');
  const ended = await joiner.done;
  assert.equal(ended.code, 2);
  assert.match(ended.stderr, /attempt [2-9]\d*, giving up in \d+ s/);
  assert.match(ended.stderr, /dsm: DSM_ERR_UNREACHABLE: cannot reach node 0/);
});

test('not a terminal: a joiner prints only its error; on a terminal, progress shows without DSM_PROGRESS', async () => {
  const port = await freePort();
  const piped = await start(['node', '--join', `127.0.0.1:${port}`, '--join-timeout', '600'], { DSM_SECRET: secretFor('s') }).done;
  assert.equal(piped.code, 2);
  assert.deepEqual(piped.stderr.trimEnd().split('\n').map((line) => line.replace(/:.*/, '')), ['dsm']);
  assert.match(piped.stderr, /^dsm: DSM_ERR_UNREACHABLE: /);
  // script(1) gives the command a pseudo-terminal.
  const script = spawnSync('script', ['-qec', `${process.execPath} bin/dsm.js node --join 127.0.0.1:${port} --join-timeout 600`, '/dev/null'], {
    encoding: 'utf8', env: { ...process.env, DSM_SECRET: secretFor('s'), DSM_PROGRESS: '' }, timeout: 30_000,
  });
  if (script.error !== undefined) return; // no script(1) here
  assert.match(script.stdout, /not reachable yet/);
});
