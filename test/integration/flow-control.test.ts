// Flow control from end to end (issue 9 item 1): a full link parks the
// producer instead of throwing into the engine, the channel or the runtime.
// Before it, a worker on node 1 that wrote 28 MiB or more of memory homed on
// node 0 between two synchronizations died with DSM_ERR_BACKPRESSURE, and
// about 33 postMessages of 1 MiB to a remote worker crashed node 0
// ("invariant failed: one answer per call").
//
// The link limit is lowered (DSM_SEND_QUEUE_BYTES, 4 MiB) so that small
// volumes cross it many times (48 MiB of writes 12 times, 256 MiB of posts 64
// times: half what they were, which crossed it as surely, for half the CPU); each node's peak memory (Pss, see
// test/fixtures/volume/measure.ts) must stay below the
// touched region plus 256 MiB. The full-size runs (1 GiB of writes, 10,000
// round trips of 1 MiB) are in bench/volume.ts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runVolume } from '../fixtures/volume/measure.js';

const mib = 1024 * 1024;
/** Memory a node may use beyond what the program touches (a node process alone uses about 75 MiB). */
const overheadMibMax = 256;
const options = { queueBytes: '4m', regionBytes: '256m', timeoutMs: 170_000 };

test('hlrc, 2 nodes: a worker on node 1 writes 48 MiB homed on node 0 between two syncs, every word arrives, memory bounded', async () => {
  const bytes = 48 * mib;
  const run = await runVolume('write.mjs', [String(bytes)], options);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, `words=${bytes / 4} wrong=0\n`);
  // Both nodes hold the touched region (node 1 its copy, node 0 the master).
  for (const [node, memory] of run.nodes.entries()) {
    assert.ok(memory.pssMib > 0, `node ${node} was sampled`);
    assert.ok(memory.pssMib < bytes / mib + overheadMibMax, `node ${node} peak Pss ${JSON.stringify(memory)}`);
  }
});

test('hlrc, 2 nodes: 256 postMessages of 1 MiB to a remote worker and back, in bursts of 64, arrive in order, memory bounded', async () => {
  const burst = 64;
  const run = await runVolume('posts.mjs', ['256', String(mib), String(burst)], options);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.stdout, 'echoes=256 wrong=0\n');
  for (const [node, memory] of run.nodes.entries()) {
    assert.ok(memory.pssMib > 0, `node ${node} was sampled`);
    // The program's own memory: up to a burst of messages held (under plain node too).
    assert.ok(memory.pssMib < burst + overheadMibMax, `node ${node} peak Pss ${JSON.stringify(memory)}`);
  }
});
