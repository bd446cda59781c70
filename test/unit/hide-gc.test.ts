// hideGlobalGc: the `gc` V8 installs on a context made while --expose-gc was set is taken away, whatever its
// property's attributes, without throwing (a worker made while another thread collected died on `delete`).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hideGlobalGc } from '../../src/threads/hide-gc.js';

test('a gc installed as V8 does (writable, not configurable) reads as absent afterwards, and deleting it would have thrown', () => {
  const global: Record<string, unknown> = {};
  Object.defineProperty(global, 'gc', { value: () => {}, writable: true, enumerable: true, configurable: false });
  assert.throws(() => { 'use strict'; delete global.gc; }, TypeError, 'the old way threw');
  hideGlobalGc(global);
  assert.equal(typeof global.gc, 'undefined');
});

test('a configurable gc is deleted; an object without one, or whose gc is not a function, is left alone', () => {
  const configurable: Record<string, unknown> = { gc: () => {} };
  hideGlobalGc(configurable);
  assert.equal('gc' in configurable, false);
  const none: Record<string, unknown> = { other: 1 };
  hideGlobalGc(none);
  assert.deepEqual(none, { other: 1 });
  const value: Record<string, unknown> = { gc: 42 };
  hideGlobalGc(value);
  assert.equal(value.gc, 42);
});

test('in a worker whose context was made with gc exposed (as one made while another thread collected): no throw, and gc reads as absent', () => {
  const fixture = fileURLToPath(new URL('../fixtures/unit/hide-gc-worker.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', fixture], { encoding: 'utf8', timeout: 60_000 });
  assert.equal(child.status, 0, child.stderr);
  const result = JSON.parse(child.stdout.trim()) as { before: string; after: string };
  assert.equal(result.before, JSON.stringify({ value: 'function', writable: true, enumerable: true, configurable: false }), 'V8 installs gc writable, not configurable');
  assert.equal(result.after, 'undefined');
});
