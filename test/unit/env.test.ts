// One module reads dsm's process environment (src/env.ts): no other source file touches process.env.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { test } from 'node:test';
import { childEnvironment, childJoinEnvironment, interruptBudgetFromEnvironment, managerPollFromEnvironment, parkYieldUsFromEnvironment, readAheadPageCount, testHook } from '../../src/env.js';
import { interruptBudgetBytes, interruptBudgetBytesMax, managerLingerUs, managerPollUs, managerPollUsMax, parkYieldUs, parkYieldUsMax, prefetchPageCountMax, prefetchPageCountRuntime } from '../../src/constants.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : /\.ts$/.test(name) ? [path] : [];
  });
}

test('only src/env.ts reads or writes process.env', () => {
  const offenders = sources('src').filter((path) => relative('src', path) !== 'env.ts')
    .filter((path) => /process\.env\b|process\[['"]env['"]\]/.test(readFileSync(path, 'utf8')));
  assert.deepEqual(offenders, []);
});

test('a child\'s environment carries its settings, never the secret, and reads back validated', () => {
  const env = childEnvironment({ join: '127.0.0.1:7400', nodeId: 3, clusterConfig: { clusterId: 'x' }, joinTimeoutMs: 5000, parentPid: 42, heartbeatTimeoutMs: 4000 },
    { DSM_SECRET: 'no', OTHER: 'yes' });
  assert.equal(env.DSM_SECRET, undefined);
  assert.equal(env.OTHER, 'yes');
  const read = childJoinEnvironment(env);
  assert.deepEqual(read, { join: '127.0.0.1:7400', secretFromStdin: true, nodeId: 3, clusterConfig: { clusterId: 'x' }, joinTimeoutMs: 5000, parentPid: 42, heartbeatTimeoutMs: 4000 });
  assert.throws(() => childJoinEnvironment({ ...env, DSM_NODE_ID: 'x' }), { code: 'DSM_ERR_INVALID_OPTION' });
  assert.throws(() => childJoinEnvironment({ ...env, DSM_CLUSTER_CONFIG: '{' }), { code: 'DSM_ERR_INVALID_OPTION' });
  assert.throws(() => childJoinEnvironment({}), { code: 'DSM_ERR_INVALID_OPTION' });
});

test('test hooks name a node', () => {
  assert.equal(testHook('BLOCK_LOOP', 1), null);
});

test('DSM_PARK_YIELD_US: microseconds a faulting thread polls before it sleeps, validated', () => {
  assert.equal(parkYieldUsFromEnvironment({}), parkYieldUs);
  assert.equal(parkYieldUsFromEnvironment({ DSM_PARK_YIELD_US: '0' }), 0);
  assert.equal(parkYieldUsFromEnvironment({ DSM_PARK_YIELD_US: '250' }), 250);
  for (const bad of ['-1', '1.5', 'soon', String(parkYieldUsMax + 1)]) {
    assert.throws(() => parkYieldUsFromEnvironment({ DSM_PARK_YIELD_US: bad }), /DSM_PARK_YIELD_US/);
  }
});

test('DSM_MANAGER_POLL_US and DSM_MANAGER_LINGER_US: the manager\'s poll before it sleeps, 0 for off, validated', () => {
  assert.deepEqual(managerPollFromEnvironment({}), { pollUs: managerPollUs, lingerUs: managerLingerUs });
  assert.deepEqual(managerPollFromEnvironment({ DSM_MANAGER_POLL_US: '0', DSM_MANAGER_LINGER_US: '0' }), { pollUs: 0, lingerUs: 0 });
  assert.deepEqual(managerPollFromEnvironment({ DSM_MANAGER_LINGER_US: '40' }), { pollUs: managerPollUs, lingerUs: 40 });
  for (const bad of ['-1', '1.5', 'soon', String(managerPollUsMax + 1)]) {
    assert.throws(() => managerPollFromEnvironment({ DSM_MANAGER_POLL_US: bad }), /DSM_MANAGER_POLL_US='/);
    assert.throws(() => managerPollFromEnvironment({ DSM_MANAGER_LINGER_US: bad }), /DSM_MANAGER_LINGER_US='/);
  }
});

test('DSM_INTERRUPT_BUDGET: V8\'s interrupt budget in a node process, 0 for V8\'s own, validated', () => {
  assert.equal(interruptBudgetFromEnvironment({}), interruptBudgetBytes);
  assert.equal(interruptBudgetFromEnvironment({ DSM_INTERRUPT_BUDGET: '0' }), 0);
  assert.equal(interruptBudgetFromEnvironment({ DSM_INTERRUPT_BUDGET: '67584' }), 67584);
  for (const bad of ['-1', '1.5', 'soon', String(interruptBudgetBytesMax + 1)]) {
    assert.throws(() => interruptBudgetFromEnvironment({ DSM_INTERRUPT_BUDGET: bad }), /DSM_INTERRUPT_BUDGET/);
  }
});

test('DSM_READAHEAD_PAGES sets the runtime\'s read-ahead window limit (default prefetchPageCountRuntime); DSM_READAHEAD=0 turns read-ahead off', () => {
  assert.equal(readAheadPageCount({}), prefetchPageCountRuntime);
  assert.equal(readAheadPageCount({ DSM_READAHEAD_PAGES: '64' }), 64);
  assert.equal(readAheadPageCount({ DSM_READAHEAD_PAGES: String(prefetchPageCountMax) }), prefetchPageCountMax);
  assert.equal(readAheadPageCount({ DSM_READAHEAD: '0', DSM_READAHEAD_PAGES: '64' }), 1);
  for (const bad of ['0', '-1', '1.5', 'many', String(prefetchPageCountMax + 1)]) {
    assert.throws(() => readAheadPageCount({ DSM_READAHEAD_PAGES: bad }), /DSM_READAHEAD_PAGES/);
  }
});

test('the interrupt budget is set only on a V8 that has the flag (11 and earlier: Node 20), not on Node 22+', async () => {
  const { v8HasInterruptBudget } = await import('../../src/runtime/manager.js');
  assert.equal(v8HasInterruptBudget('11.3.244.8-node.33'), true);
  assert.equal(v8HasInterruptBudget('12.4.254.21-node.33'), false);
  assert.equal(v8HasInterruptBudget('13.6.233.17-node.37'), false);
});

test('docs/LIMITS.md "Environment variables" names every variable src/env.ts reads, and none that is gone', () => {
  const names = (text: string): Set<string> => new Set((text.match(/\bDSM_[A-Z][A-Z0-9_]*[A-Z0-9]\b/g) ?? []).filter((name) => !name.startsWith('DSM_ERR_')));
  const doc = readFileSync(join('docs', 'LIMITS.md'), 'utf8');
  const start = doc.indexOf('## Environment variables');
  const section = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const documented = names(section);
  const read = [...names(readFileSync(join('src', 'env.ts'), 'utf8'))].filter((name) => !name.startsWith('DSM_TEST_HOOK'));
  assert.deepEqual(read.filter((name) => !documented.has(name)), [], 'read by src/env.ts, missing from the section');
  const code = sources('src').map((path) => readFileSync(path, 'utf8')).join('\n')
    + readFileSync(join('scripts', 'build-native.mjs'), 'utf8');
  assert.deepEqual([...documented].filter((name) => !code.includes(name)), [], 'documented, read nowhere');
});
