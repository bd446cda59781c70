// `dsm bench rtt --hops` (issue 13.4): one remote read fault broken into its
// hops from a traced 2-node run; every fault is matched with the hops stamped
// on both nodes and by the reading thread.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

test('bench rtt --hops: every fault of the run is matched with its hops, which add up to about the whole fault', () => {
  const result = spawnSync(process.execPath, ['bin/dsm.js', 'bench', 'rtt', '--hops', '--iterations', '40', '--json'], { encoding: 'utf8', timeout: 180_000 });
  assert.equal(result.status, 0, result.stderr);
  const figures = JSON.parse(result.stdout.trim().split('\n').pop()!) as {
    pages: number; faultsMatched: number; totalUsP50: number; sumOfHopP50sUs: number; hops: Array<{ hop: string; p50Us: number }>;
    rawRtt4kUsP50: number; totalOverRawRtt4k: number;
  };
  assert.equal(figures.pages, 40);
  assert.equal(figures.faultsMatched, 40);
  assert.equal(figures.hops.length, 10);
  assert.deepEqual(figures.hops.map((hop) => hop.hop).filter((name) => !name.startsWith(' ')),
    ['thread faults -> manager sees it', 'requester engine', 'request: send -> home has it', 'home serves', 'reply: send -> requester has it', 'install + resume call', 'thread wakes with the value']);
  assert.ok(figures.totalUsP50 > 0 && figures.sumOfHopP50sUs > 0);
  // The three parts (encode + write on each side, the requester's prefault) are timed apart, not pooled under one name.
  const parts = figures.hops.map((hop) => hop.hop).filter((name) => name.startsWith(' '));
  assert.equal(new Set(parts).size, 3, `two distinct parts: ${parts.join(', ')}`);
  // The raw 4 KiB round trip of the same run, and the fault against it.
  assert.ok(figures.rawRtt4kUsP50 > 0 && figures.totalOverRawRtt4k > 0);
});
