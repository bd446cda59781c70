// A thread ended while it boots (src/channel/thread-config.ts: trackBoot, terminateAppThread, markEntryReached):
// Node 20's V8 aborts the whole process when a termination is pending as it starts a module with top-level await
// (dsm's entry is one; CI saw it twice, at a node's exit). test/fixtures/boot-termination makes that window
// deterministic (a long JSON.parse in the last module evaluated before the entry) and ends the thread in it: through
// dsm's terminate and at process.exit the process lives; Node's bare terminate() and exit abort it on V8 11.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../fixtures/boot-termination/main.mjs', import.meta.url));
const run = (how: string): { status: number | null; stdout: string; stderr: string } => {
  const result = spawnSync(process.execPath, [main, how], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};
const v8Aborts = process.versions.v8.startsWith('11.');

test('a thread terminated as its entry module starts: terminated once it reaches its entry, the process lives', () => {
  const result = run('terminate');
  assert.equal(result.stderr, '');
  assert.equal(result.stdout, 'terminated 1\n');
  assert.equal(result.status, 0);
});

test('process.exit while a thread it started boots: the exit waits for the thread to reach its entry, then exits with its code', () => {
  const result = run('exit');
  assert.equal(result.stderr, '');
  assert.equal(result.status, 3);
});

test('the window is real: Node\'s own terminate() and exit in it abort the process (V8 11, Node 20)', { skip: !v8Aborts }, () => {
  for (const how of ['bare', 'bare-exit']) {
    const result = run(how);
    assert.notEqual(result.status, 0, how);
    assert.match(result.stderr, /ExecuteAsyncModule/, how);
  }
});
