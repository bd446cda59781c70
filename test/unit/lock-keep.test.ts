// The keep window's policy (src/protocol/lock-keep.ts): how long a node keeps
// a recalled lock token for its own threads, and how that window adapts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lockKeepMsInitial, lockKeepMsMax, lockKeepMsMin, lockKeepProbeInterval, lockKeepStateCountMax } from '../../src/constants.js';
import { LockKeepPolicy } from '../../src/protocol/lock-keep.js';

test('lock keep policy: a token is kept until its window since arrival ends; past it, not at all', () => {
  const policy = new LockKeepPolicy();
  assert.equal(policy.keepUntil(1, 100, 100), 100 + lockKeepMsInitial);
  assert.equal(policy.keepUntil(1, 100, 100 + lockKeepMsInitial / 2), 100 + lockKeepMsInitial, 'counted from the arrival, not the ask');
  assert.equal(policy.keepUntil(1, 100, 100 + lockKeepMsInitial), null, 'the window is over');
});

test('lock keep policy: batches cut by the window double it, up to the fairness bound', () => {
  const policy = new LockKeepPolicy();
  let expected = lockKeepMsInitial;
  for (let k = 0; k < 10; k++) {
    assert.equal(policy.windowMs(7), expected);
    policy.ended(7, 'cut');
    expected = Math.min(lockKeepMsMax, expected * 2);
  }
  assert.equal(policy.windowMs(7), lockKeepMsMax);
  assert.equal(policy.keepUntil(7, 0, 0), lockKeepMsMax, 'never kept past lockKeepMsMax after arrival');
  policy.ended(7, 'drained');
  assert.equal(policy.windowMs(7), lockKeepMsMax, 'a batch that ended by itself changes nothing');
  assert.equal(policy.windowMs(8), lockKeepMsInitial, 'windows are per lock');
});

test('lock keep policy: a keep nobody used halves the window and skips the next keeps until a probe', () => {
  const policy = new LockKeepPolicy();
  policy.ended(3, 'idle');
  assert.equal(policy.windowMs(3), Math.max(lockKeepMsMin, lockKeepMsInitial / 2));
  for (let k = 1; k < lockKeepProbeInterval; k++) assert.equal(policy.keepUntil(3, 0, 0), null, `skipped keep ${k}`);
  assert.equal(policy.keepUntil(3, 0, 0), policy.windowMs(3), 'the probe keeps again');
  for (let k = 0; k < 10; k++) policy.ended(3, 'idle');
  assert.equal(policy.windowMs(3), lockKeepMsMin, 'never below lockKeepMsMin');
});

test('lock keep policy: the remembered windows are bounded', () => {
  const policy = new LockKeepPolicy();
  for (let lockId = 0; lockId <= lockKeepStateCountMax; lockId++) policy.keepUntil(lockId, 0, 0);
  assert.ok(policy.size <= lockKeepStateCountMax);
});
