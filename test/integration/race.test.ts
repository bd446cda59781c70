// dsm run --race over real processes (docs/RACE.md): racy fixtures are
// reported exactly (the right kind, bytes, buffer and lines, nothing else),
// bad input is refused. The race-free fixtures and litmus programs, which must
// report nothing, are in race-free.test.ts (a file of their own, for the runner's two lanes).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { lineOf, race } from './race-runs.js';

test('a lost counter update: one write-write race on the counter\'s 4 bytes, between the two workers, exit 66', () => {
  const file = 'test/fixtures/race/lost-update.mjs';
  const { status, stderr, report } = race(file, 3);
  assert.equal(status, 66, stderr);
  assert.equal(report.races.length, 1, stderr);
  const [found] = report.races;
  assert.equal(found!.kind, 'write-write');
  assert.equal(found!.precision, 'byte');
  assert.equal(found!.offset, 0);
  assert.equal(found!.length, 4);
  assert.equal(found!.buffer?.byteLength, 16);
  assert.equal(found!.buffer?.allocatedAt, `${file}:${lineOf(file, '// ALLOC')}:34`);
  assert.deepEqual([...found!.first.threads, ...found!.second.threads].sort(), [1, 2]);
  assert.match(found!.first.end?.site ?? '', new RegExp(`^${file}:${lineOf(file, "parentPort.postMessage('done')")}:`));
  assert.match(stderr, /write-write race \(byte-precise\) on bytes 0\.\.3 of SharedArrayBuffer\(16\) allocated at test\/fixtures\/race\/lost-update\.mjs:8:34/);
});

test('a flag set without Atomics: read-write races on the flag (and the payload), no write-write race', () => {
  const file = 'test/fixtures/race/flag-no-atomics.mjs';
  const { status, stderr, report } = race(file, 3);
  assert.equal(status, 66, stderr);
  assert.ok(report.races.length >= 1, stderr);
  for (const found of report.races) {
    assert.equal(found.kind, 'read-write', stderr);
    assert.ok(found.offset === 0 || found.offset === 16, `flag (0) or payload (16), not ${found.offset}`);
    assert.equal(found.buffer?.allocatedAt, `${file}:${lineOf(file, '// ALLOC')}:33`);
  }
  assert.ok(report.races.some((found) => found.offset === 0), 'the flag itself');
});

test('double-checked initialisation: a read-write race on the unlocked check; the locked writes do not race', () => {
  const file = 'test/fixtures/race/double-checked-init.mjs';
  const { status, stderr, report } = race(file, 4);
  assert.equal(status, 66, stderr);
  assert.equal(report.races.length, 1, stderr);
  const [found] = report.races;
  assert.equal(found!.kind, 'read-write');
  assert.equal(found!.offset, 0);
  assert.equal(found!.buffer?.allocatedAt, `${file}:${lineOf(file, '// ALLOC')}:32`);
  // The writer's interval starts at its lock; it ends at the unlock, or at the
  // worker's exit when the (posted) unlock reached the manager after it.
  assert.equal(found!.second.begin?.op, 'Mutex.lock', 'the writer wrote under the lock');
});

test('a queue with a missing fence (tail published before the item is written): read-write races on items only', () => {
  const file = 'test/fixtures/race/queue-missing-fence.mjs';
  const { status, stderr, report } = race(file, 3);
  assert.equal(status, 66, stderr);
  assert.ok(report.races.length >= 1, stderr);
  for (const found of report.races) {
    assert.equal(found.kind, 'read-write', stderr);
    assert.equal(found.buffer?.allocatedAt, `${file}:${lineOf(file, '// ITEMS')}:32`, 'the items buffer, not the control words');
    assert.ok(found.offset % 4 === 0 && found.offset < 80, `an item's first byte, not ${found.offset}`);
    assert.equal(found.second.begin?.op, 'Atomics.store', 'the write follows the publishing store');
  }
});

// Race-free: fixtures of our own and litmus programs of the repository.
test('a program with over 100,000 distinct races: a bounded report, every occurrence counted', () => {
  const { status, stderr, report } = race('test/fixtures/race/many-races.mjs', 3);
  assert.equal(status, 66, stderr.slice(0, 2000));
  assert.equal(report.races.length, 1000);
  assert.equal(report.raceCount, 128 * 1024, 'every other word of 1 MiB, each one race');
  assert.ok(report.unlistedCount > 0);
  assert.ok(stderr.length < 2_000_000, `report of ${stderr.length} characters`);
});

test('too few nodes for the threads: the report says which threads shared a node', () => {
  const { status, stderr, report } = race('test/fixtures/race/lost-update.mjs', 1);
  assert.equal(status, 0, stderr);
  assert.equal(report.sharedNodes.length, 1, stderr);
  assert.equal(report.sharedNodes[0]!.node, 0);
  assert.ok(report.sharedNodes[0]!.threads.includes(0) && report.sharedNodes[0]!.threads.length >= 2, stderr);
  assert.match(stderr, /warning: threads 0, [0-9, ]+ shared node 0: races between threads of one node are not seen/);
});

// A helper's race sweep (session 37): with two threads on a node, plain data written under compare-exchange locks
// or published by Atomics was lost (futex-array 13–16 of 16 locks' counters wrong, every run; mpmc-bigint items
// missing and taken twice), the report saying no race. A page written in the open interval, flushed early when
// another thread of the node acquired, was made writable again at its next read fault with no twin.
test('threads sharing a node in a race run compute what plain node computes: locks in one line guarding plain counters (3 nodes), a Vyukov queue of BigInt64 (2 nodes)', () => {
  for (const [file, nodes, args] of [['test/fixtures/users11/futex-array.mjs', 3, []], ['test/fixtures/users9/mpmc-bigint.mjs', 2, ['2', '2', '200', '8']]] as const) {
    const plain = spawnSync(process.execPath, [file, ...args], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(plain.status, 0, plain.stderr);
    const { status, stdout, stderr, report } = race(file, nodes, [], [...args]);
    assert.equal(status, 0, stderr);
    assert.equal(stdout, plain.stdout, `${file} on ${nodes} nodes: ${stderr}`);
    assert.equal(report.raceCount, 0, stderr);
    assert.ok(report.sharedNodes.length > 0, 'threads shared a node');
  }
});

test('bad input: --race with --listen or another protocol is refused with a clear message', () => {
  const listen = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--race', '--listen', '127.0.0.1:0', '--expect', '2', 'test/fixtures/race/lost-update.mjs'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(listen.status, 2);
  assert.match(listen.stderr, /DSM_ERR_USAGE: --race runs on one machine .* cannot be combined with --listen/);
  const sc = spawnSync(process.execPath, ['bin/dsm.js', 'run', '--race', '--protocol', 'sc', 'test/fixtures/race/lost-update.mjs'], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(sc.status, 2);
  assert.match(sc.stderr, /DSM_ERR_USAGE: --race needs the hlrc protocol/);
});
