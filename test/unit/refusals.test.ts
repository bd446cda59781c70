// Refusal lines for strangers are rate-limited: the first N per window, then one summary.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RefusalLog } from '../../src/transport/refusals.js';

test('a flood of refusals prints the first N lines and one summary per window', () => {
  const lines: string[] = [];
  let nowMs = 1000;
  const log = new RefusalLog((line) => lines.push(line), () => nowMs, 3, 10_000);
  for (let index = 0; index < 1000; index += 1) log.report(`dsm: DSM_ERR_SECRET: peer at 127.0.0.1:${index} failed`);
  assert.equal(lines.length, 3);
  nowMs += 10_000;
  log.report('dsm: DSM_ERR_SECRET: peer at 127.0.0.1:1 failed again');
  assert.equal(lines.length, 5);
  assert.match(lines[3]!, /^dsm: DSM_ERR_HANDSHAKE: 997 more unauthenticated connection\(s\) were refused within 10 s/);
  assert.match(lines[4]!, /failed again/);
  log.summarize();
  assert.equal(lines.length, 5, 'nothing suppressed, no summary');
});

test('a peer that vanished mid-handshake is reported after the hold, or never when the process ends for a node failure', async () => {
  const lines: string[] = [];
  const log = new RefusalLog((line) => lines.push(line), Date.now, 3, 10_000, 20);
  log.report('dsm: DSM_ERR_HANDSHAKE: peer at 127.0.0.1:1: read ECONNRESET during the handshake', true);
  log.report('dsm: DSM_ERR_SECRET: peer at 127.0.0.1:2 failed', false);
  assert.deepEqual(lines, ['dsm: DSM_ERR_SECRET: peer at 127.0.0.1:2 failed'], 'a refusal at once, a vanished peer held');
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(lines.length, 2, 'printed after the hold');
  assert.match(lines[1]!, /ECONNRESET/);
  log.report('dsm: DSM_ERR_HANDSHAKE: peer at 127.0.0.1:3 closed the connection during the handshake', true);
  log.endingForFailure();
  log.report('dsm: DSM_ERR_HANDSHAKE: peer at 127.0.0.1:4 closed the connection during the handshake', true);
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(lines.length, 2, 'held and later vanished peers dropped: the dying node has its own line');
  log.report('dsm: DSM_ERR_SECRET: peer at 127.0.0.1:5 failed', false);
  assert.equal(lines.length, 3, 'a stranger refused for its credentials is still reported');
});

test('while a mesh is being made, a vanished peer\'s line waits for the start\'s outcome, then the hold as any other', async () => {
  const lines: string[] = [];
  const log = new RefusalLog((line) => lines.push(line), Date.now, 3, 10_000, 20);
  const started = log.holdWhileStarting();
  log.report('dsm: DSM_ERR_HANDSHAKE: node 1: read ECONNRESET during the handshake', true);
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.deepEqual(lines, [], 'held past the hold while the mesh is being made (a start that fails drops it at its exit)');
  started();
  started();
  assert.deepEqual(lines, [], 'then held for the hold');
  await new Promise((resolve) => setTimeout(resolve, 60));
  assert.equal(lines.length, 1, 'printed after the hold once the mesh was made');
  assert.match(lines[0]!, /ECONNRESET/);
});
