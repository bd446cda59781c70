// The sync classes are built only on Atomics, so they run on plain worker
// threads too; dsm runs them across nodes by making Atomics synchronizing.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { Barrier, Condition, Mutex } from '../../src/sync/index.js';

const workerSource = (body: string) => `
  const { workerData, parentPort } = require('node:worker_threads');
  require('tsx/cjs');
  const { Mutex, Barrier, Condition } = require(${JSON.stringify(new URL('../../src/sync/index.ts', import.meta.url).pathname)});
  ${body}
`;

function runWorkers(count: number, body: string, data: unknown): Promise<unknown[]> {
  return Promise.all(Array.from({ length: count }, (_, index) => new Promise((resolve, reject) => {
    const worker = new Worker(workerSource(body), { eval: true, workerData: { index, ...(data as object) } });
    let result: unknown;
    worker.on('message', (value) => { result = value; });
    worker.on('error', reject);
    worker.on('exit', (code) => (code === 0 ? resolve(result) : reject(new Error(`worker exit ${code}`))));
  })));
}

test('Mutex: 4 threads x 2000 increments of a plain counter lose none', async () => {
  const mutex = new Mutex();
  const counter = new Int32Array(new SharedArrayBuffer(4));
  await runWorkers(4, `
    const mutex = Mutex.from(workerData.handle);
    const counter = workerData.counter;
    for (let i = 0; i < 2000; i++) { mutex.lock(); counter[0] = counter[0] + 1; mutex.unlock(); }
  `, { handle: mutex.handle, counter });
  assert.equal(counter[0], 8000);
});

test('Mutex: unlock by a non-owner and relocking are errors with codes', () => {
  const mutex = new Mutex();
  assert.throws(() => mutex.unlock(), { code: 'DSM_ERR_NOT_OWNER' });
  mutex.lock();
  assert.throws(() => mutex.lock(), { code: 'DSM_ERR_NOT_OWNER' });
  assert.equal(mutex.tryLock(), false);
  mutex.unlock();
  assert.equal(mutex.tryLock(), true);
  mutex.unlock();
  assert.throws(() => Mutex.from(new Int32Array(new SharedArrayBuffer(16))), { code: 'DSM_ERR_INVALID_OPTION' });
});

test('Barrier: 4 threads x 50 rounds, each round sees every write of the previous one', async () => {
  const barrier = new Barrier(4);
  const cells = new Int32Array(new SharedArrayBuffer(4 * 4));
  const results = await runWorkers(4, `
    const barrier = Barrier.from(workerData.handle, 4);
    const cells = workerData.cells;
    let bad = 0, leaders = 0;
    for (let round = 1; round <= 50; round++) {
      cells[workerData.index] = round;
      if (barrier.wait()) leaders++;
      for (let j = 0; j < 4; j++) if (cells[j] !== round) bad++;
      barrier.wait();
    }
    parentPort.postMessage({ bad, leaders });
  `, { handle: barrier.handle, cells }) as Array<{ bad: number; leaders: number }>;
  assert.equal(results.reduce((sum, r) => sum + r.bad, 0), 0);
  assert.equal(results.reduce((sum, r) => sum + r.leaders, 0), 50);
  assert.throws(() => Barrier.from(barrier.handle, 3), { code: 'DSM_ERR_BARRIER_PARTIES' });
  assert.throws(() => new Barrier(0), { code: 'DSM_ERR_BARRIER_PARTIES' });
});

test('Condition: producer-consumer over a bounded queue hands over every item once', async () => {
  const mutex = new Mutex();
  const notEmpty = new Condition();
  const notFull = new Condition();
  const queue = new Int32Array(new SharedArrayBuffer(4 * (2 + 8)));
  const results = await runWorkers(2, `
    const mutex = Mutex.from(workerData.mutex), notEmpty = Condition.from(workerData.notEmpty), notFull = Condition.from(workerData.notFull);
    const q = workerData.queue; // q[0] = head, q[1] = count, q[2..9] = slots
    const total = 500;
    if (workerData.index === 0) {
      for (let i = 1; i <= total; i++) {
        mutex.lock();
        while (q[1] === 8) notFull.wait(mutex);
        q[2 + (q[0] + q[1]) % 8] = i; q[1]++;
        notEmpty.signal();
        mutex.unlock();
      }
      parentPort.postMessage(0);
    } else {
      let sum = 0;
      for (let i = 1; i <= total; i++) {
        mutex.lock();
        while (q[1] === 0) notEmpty.wait(mutex);
        sum += q[2 + q[0]]; q[0] = (q[0] + 1) % 8; q[1]--;
        notFull.signal();
        mutex.unlock();
      }
      parentPort.postMessage(sum);
    }
  `, { mutex: mutex.handle, notEmpty: notEmpty.handle, notFull: notFull.handle, queue });
  assert.equal(results[1], (500 * 501) / 2);
});
