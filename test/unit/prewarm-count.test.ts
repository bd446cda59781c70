// How many local warm threads the program's main thread makes before its start gate (src/runtime/program.ts
// mainThreadPrewarmCount): one on a cluster, none on one node for a program whose entry names no worker_threads,
// else one a CPU up to mainThreadPrewarmCountMax.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mainThreadPrewarmCount } from '../../src/runtime/program.js';
import { mainThreadPrewarmCountMax } from '../../src/constants.js';
import { prewarmLocalCount, warmThreadWorkerData, StartGate } from '../../src/channel/thread-config.js';
import { MessageChannel } from 'node:worker_threads';

test('the main thread prewarms one local thread on a cluster, one a CPU (at most the limit) on one node when its entry names workers', () => {
  assert.equal(mainThreadPrewarmCount(2, false, 8), 1);
  assert.equal(mainThreadPrewarmCount(3, true, 8), 1);
  assert.equal(mainThreadPrewarmCount(1, false, 8), 0);
  assert.equal(mainThreadPrewarmCount(1, true, 1), 1);
  assert.equal(mainThreadPrewarmCount(1, true, 2), Math.min(2, mainThreadPrewarmCountMax));
  assert.equal(mainThreadPrewarmCount(1, true, 64), mainThreadPrewarmCountMax);
});

test('the count travels in the warm thread\'s workerData, bounded when read', () => {
  const { port1, port2 } = new MessageChannel();
  try {
    assert.equal(prewarmLocalCount(warmThreadWorkerData(port1, new StartGate(), 0)), 0);
    assert.equal(prewarmLocalCount(warmThreadWorkerData(port1, new StartGate(), 2)), 2);
    assert.equal(prewarmLocalCount({ __dsmPrewarmLocal: 1000 }), mainThreadPrewarmCountMax);
    assert.equal(prewarmLocalCount({ __dsmPrewarmLocal: true }), 0);
    assert.equal(prewarmLocalCount(null), 0);
  } finally {
    port1.close();
    port2.close();
  }
});
