// A thread that only receives large messages must collect them as plain node
// does, in young-generation GCs (src/channel/clone.ts, youngGcCheckBytesMin):
// buffers that arrive by transfer and those V8's deserializer makes never
// make V8 weigh its young generation, so such a thread held them until a full
// collection (node 1 of bench/volume.ts's posts: 50 MiB more at its peak).

import assert from 'node:assert/strict';
import { once } from 'node:events';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { serializeValue, transferListOf } from '../../src/channel/clone.js';

/** The receiving thread: reads each message with dsm's clone; answers 'count' with the young GCs it ran meanwhile. */
const receiverSource = `
  const { parentPort } = require('node:worker_threads');
  require('tsx/cjs');
  const { constants, PerformanceObserver } = require('node:perf_hooks');
  const { deserializeValue } = require(${JSON.stringify(new URL('../../src/channel/clone.ts', import.meta.url).pathname)});
  const noRanges = { rangeOf: () => null, bufferAt: () => { throw new Error('no dsm buffers here'); } };
  let minorGcs = 0;
  let majorGcs = 0;
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MINOR) minorGcs += 1;
      if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs += 1;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  let checksum = 0;
  parentPort.on('message', (message) => {
    if (message === 'count') {
      // The observer's entries come on a later turn.
      setTimeout(() => { observer.disconnect(); parentPort.postMessage({ minorGcs, majorGcs, checksum }); parentPort.close(); }, 100);
      return;
    }
    checksum += deserializeValue(message, noRanges)[7];
  });
`;

const noRanges = { rangeOf: () => null, bufferAt: (): never => { throw new Error('no dsm buffers here'); } };

test('a thread that receives 192 messages of 1 MiB by transfer collects them in young GCs', async () => {
  const receiver = new Worker(receiverSource, { eval: true });
  try {
    const messageCount = 192;
    for (let index = 0; index < messageCount; index += 1) {
      const bytes = serializeValue(new Uint8Array(1024 * 1024).fill(index & 0xff), noRanges);
      receiver.postMessage(bytes, transferListOf(bytes));
      // Let the receiver keep up (its queue is not what is measured).
      if (index % 8 === 7) await new Promise((resolve) => setTimeout(resolve, 2));
    }
    receiver.postMessage('count');
    const [{ minorGcs, majorGcs, checksum }] = await once(receiver, 'message') as [{ minorGcs: number; majorGcs: number; checksum: number }];
    assert.equal(checksum, Array.from({ length: messageCount }, (_, index) => index & 0xff).reduce((sum, value) => sum + value, 0));
    // 192 MiB received and read (384 MiB of buffers): a young GC per 32 MiB or so of them. Node 24's V8 weighs
    // such buffers itself and collects them in full GCs instead (Node 24: 0 young, 8 full in this test).
    const collections = minorGcs + (Number(process.versions.node.split('.')[0]) >= 24 ? majorGcs : 0);
    assert.ok(collections >= 4, `GCs in the receiving thread while it received: ${minorGcs} young, ${majorGcs} full`);
  } finally {
    await receiver.terminate();
  }
});
