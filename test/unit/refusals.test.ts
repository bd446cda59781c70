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
