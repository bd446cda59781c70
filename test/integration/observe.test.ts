// `dsm run --stats`, `--stats-json` and `--trace` on a real 3-node run: the
// numbers add up, the engine-routed Mutex and Barrier show in the message
// counts, and the trace is Chrome Trace Event JSON with faults and fetches.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';

const dir = mkdtempSync(join(tmpdir(), 'dsm-observe-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Stats {
  nodeCount: number; seconds: number; exitCode: number;
  total: Record<string, number> & { messagesByType: Record<string, { count: number; bytes: number }> };
  nodes: Array<Record<string, number> & { nodeId: number; messagesByType: Record<string, { count: number; bytes: number }> }>;
}

function run(args: string[], env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, ['bin/dsm.js', 'run', ...args], { encoding: 'utf8', timeout: 120_000, env });
}

test('3 nodes: --stats-json adds up, --stats prints the table, --trace holds faults and fetches', () => {
  const statsPath = join(dir, 'stats.json');
  const tracePath = join(dir, 'trace.json');
  const result = run(['--nodes', '3', '--region-bytes', '256m', '--stats', '--stats-json', statsPath, '--trace', tracePath, 'test/fixtures/observe/counter.mjs']);
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'counter=60 seen=6,6,6\n');
  assert.match(result.stderr, /dsm stats: hlrc, 3 node\(s\)/);
  assert.match(result.stderr, /lock acquires +\d+ +\d+ +\d+ +60\n/);

  const stats = JSON.parse(readFileSync(statsPath, 'utf8')) as Stats;
  assert.equal(stats.nodeCount, 3);
  assert.equal(stats.exitCode, 0);
  assert.ok(stats.seconds > 0);
  assert.deepEqual(stats.nodes.map((n) => n.nodeId), [0, 1, 2]);
  for (const key of ['readFaults', 'writeFaults', 'messagesSent', 'bytesSent', 'lockAcquires', 'barrierWaits', 'diffsSent', 'lineGrants', 'lineRecalls', 'lineNotifiesInThread']) {
    assert.equal(stats.total[key], stats.nodes.reduce((sum, n) => sum + n[key]!, 0), key);
  }
  // Every message sent was received (observability's own messages are not counted).
  assert.equal(stats.total.messagesSent, stats.total.messagesReceived);
  assert.equal(stats.total.bytesSent, stats.total.bytesReceived);
  const byType = stats.total.messagesByType;
  assert.equal(Object.values(byType).reduce((sum, t) => sum + t.count, 0), stats.total.messagesSent);
  // 60 lock acquires and 3 barrier waits through the engine's managers.
  assert.equal(stats.total.lockAcquires, 60);
  assert.equal(stats.total.barrierWaits, 3);
  assert.ok((byType.lockRequest?.count ?? 0) > 0 && byType.lockRequest!.count <= 60);
  assert.equal(byType.lockGrant?.count, byType.lockRequest?.count);
  assert.ok((byType.barrierArrive?.count ?? 0) >= 2);
  assert.equal(byType.rtReport, undefined);
  assert.ok(stats.total.pageFetches! >= 2, 'workers fetched the slots the others wrote');
  // Managers polled before sleeping while their threads waited for grants and pages (hits or, on a busy CPU, misses).
  assert.ok(stats.total.managerPollHits! + stats.total.managerPollMisses! + stats.total.managerPollSkips! > 0, 'the managers polled, or would have');
  assert.match(result.stderr, /manager polls: saw an event \/ ended without \/ skipped +\d+ \/ \d+ \/ \d+/);
  assert.match(result.stderr, /line grants \(recalls\) +\d+ \(\d+\) +\d+ \(\d+\) +\d+ \(\d+\) +\d+ \(\d+\)\n/);
  assert.match(result.stderr, /notifies answered in the thread +\d+ +\d+ +\d+ +\d+\n/);

  const trace = JSON.parse(readFileSync(tracePath, 'utf8')) as { otherData: { dsm: { nodeCount: number; pageBytes: number } }; traceEvents: Array<Record<string, unknown>> };
  assert.equal(trace.otherData.dsm.nodeCount, 3);
  assert.equal(trace.otherData.dsm.pageBytes, 4096);
  const events = trace.traceEvents;
  assert.deepEqual(new Set(events.filter((e) => e.ph === 'M').map((e) => e.pid)), new Set([0, 1, 2]));
  const faults = events.filter((e) => e.cat === 'fault');
  assert.ok(faults.length > 0);
  for (const fault of faults) {
    assert.ok(fault.name === 'read fault' || fault.name === 'write fault');
    assert.equal(typeof (fault.args as { page: unknown }).page, 'number');
    assert.ok((fault.ts as number) >= 0);
  }
  const begins = events.filter((e) => e.cat === 'fetch' && e.ph === 'b').map((e) => e.id);
  const ends = events.filter((e) => e.cat === 'fetch' && e.ph === 'e').map((e) => e.id);
  assert.equal(begins.length, stats.total.pageFetches);
  assert.deepEqual(new Set(ends), new Set(begins));
  // A lock taken in the node's lock token table (issue 12.3) reaches no manager: no event.
  const lockWaits = events.filter((e) => e.name === 'lock wait').length;
  assert.ok(lockWaits >= 3 && lockWaits <= 60, `${lockWaits} lock waits`);
  assert.equal(events.filter((e) => e.name === 'barrier wait').length, 3);
});

test('one node: --stats-json has the same shape with no messages', () => {
  const statsPath = join(dir, 'one.json');
  const result = run(['--stats-json', statsPath, 'test/fixtures/observe/counter.mjs']);
  assert.equal(result.status, 0, result.stderr);
  const stats = JSON.parse(readFileSync(statsPath, 'utf8')) as Stats;
  assert.equal(stats.nodeCount, 1);
  assert.equal(stats.total.messagesSent, 0);
  // One node maps its region read-write from the start (nothing needs a twin
  // or a diff): no dsm fault at all, however much the program writes.
  assert.equal(stats.total.writeFaults, 0);
  assert.equal(stats.total.readFaults, 0);
  assert.equal(stats.total.managerPollHits! + stats.total.managerPollMisses! + stats.total.managerPollSkips!, 0, 'one node never polls');
});

test('2 nodes, DSM_MANAGER_POLL_US=0 DSM_MANAGER_LINGER_US=0: no manager polls, the same result', () => {
  const statsPath = join(dir, 'no-poll.json');
  const result = run(['--nodes', '2', '--region-bytes', '256m', '--stats-json', statsPath, 'test/fixtures/observe/counter.mjs'],
    { ...process.env, DSM_MANAGER_POLL_US: '0', DSM_MANAGER_LINGER_US: '0' });
  assert.equal(result.status, 0, result.stderr);
  assert.equal(result.stdout, 'counter=60 seen=6,6,6\n');
  const stats = JSON.parse(readFileSync(statsPath, 'utf8')) as Stats;
  assert.equal(stats.total.managerPollHits! + stats.total.managerPollMisses! + stats.total.managerPollSkips!, 0);
});

test('a bad DSM_MANAGER_POLL_US is a clear error before anything runs', () => {
  const result = run(['--nodes', '2', 'examples/sum.js', '10'], { ...process.env, DSM_MANAGER_POLL_US: 'fast' });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /DSM_MANAGER_POLL_US='fast' is not a whole number of microseconds/);
});

test('one node: a working set past the old dirty-page bound (4,096 pages) takes no fault, iteration after iteration', () => {
  const statsPath = join(dir, 'stencil.json');
  // Two 1024x1024 Float64 grids, 16 MiB: 2,044 written pages per iteration.
  const result = run(['--region-bytes', '256m', '--stats-json', statsPath, 'bench/apps/stencil.mjs', '--size', '1024', '--iterations', '6']);
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /"verified":true/);
  const stats = JSON.parse(readFileSync(statsPath, 'utf8')) as Stats;
  assert.equal(stats.total.writeFaults, 0);
});

test('an unwritable --stats-json or --trace path is a clear error before the program runs', () => {
  const result = run(['--nodes', '2', '--region-bytes', '256m', '--stats-json', join(dir, 'missing', 'dir', 'x.json'), 'examples/sum.js', '1000']);
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /--stats-json: cannot write .*x\.json/);
  // Before: the program ran to its end first (its output printed), and only then was the path found wrong.
  assert.doesNotMatch(result.stdout, /total=/);
  const directory = run(['--nodes', '2', '--trace', dir, 'examples/sum.js', '1000']);
  assert.notEqual(directory.status, 0);
  assert.match(directory.stderr, /--trace: cannot write .* \(it is a directory\); choose a writable path/);
  assert.doesNotMatch(directory.stdout, /total=/);
});
