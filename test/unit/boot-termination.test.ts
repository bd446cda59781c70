// A thread ended while it boots (src/channel/thread-config.ts: trackBoot, terminateAppThread, markEntryReached;
// src/threads/boot-mark.ts): Node 20's V8 aborts the whole process when a termination is pending as it starts a
// module with top-level await (dsm's entry is one; CI saw it twice, at a node's exit). test/fixtures/boot-termination
// puts a long JSON.parse (no interrupt checks) before boot-mark (`early`) or after it, right before the entry
// (`loaded`: the window), and ends the thread during it: through dsm's terminate and at process.exit the process
// lives either way; Node's bare terminate() and exit in the window abort it on V8 11.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { bootStatesHere } from '../../src/channel/thread-config.js';
import { bootStates } from '../../src/threads/boot-mark.js';

const main = fileURLToPath(new URL('../fixtures/boot-termination/main.mjs', import.meta.url));
const run = (how: string, where: string): { status: number | null; stdout: string; stderr: string } => {
  const result = spawnSync(process.execPath, [main, how, where], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
};
const v8Aborts = process.versions.v8.startsWith('11.');

test('boot-mark and thread-config number the boot word\'s states alike', () => {
  assert.deepEqual(bootStatesHere, bootStates);
});

for (const where of ['early', 'loaded']) {
  test(`a thread terminated as it boots (${where}): terminated, exit code 1, the process lives`, () => {
    const result = run('terminate', where);
    assert.equal(result.stderr, '');
    assert.equal(result.stdout, 'terminated 1\n');
    assert.equal(result.status, 0);
  });

  test(`process.exit while a thread it started boots (${where}): the process exits with its code, nothing on stderr`, () => {
    const result = run('exit', where);
    assert.equal(result.stderr, '');
    assert.equal(result.status, 3);
  });
}

test('the window is real: Node\'s own terminate() and exit there abort the process (V8 11, Node 20)', { skip: !v8Aborts }, () => {
  for (const how of ['bare', 'bare-exit']) {
    const result = run(how, 'loaded');
    assert.notEqual(result.status, 0, how);
    assert.match(result.stderr, /ExecuteAsyncModule/, how);
  }
});
