// One test262 agent (see runner.cjs): a Worker that defines the agent side
// of `$262.agent` and runs the agent's source as a classic script.
'use strict';

const vm = require('node:vm');
const { parentPort, workerData } = require('node:worker_threads');
const { mailboxFunctions } = require('./mailbox.cjs');

const box = mailboxFunctions(workerData.mailbox);

globalThis.print = (...values) => console.log(...values);
globalThis.$262 = {
  global: globalThis,
  agent: {
    receiveBroadcast(callback) {
      parentPort.on('message', (message) => {
        Atomics.add(box.words, box.receivedIndex, 1);
        Atomics.notify(box.words, box.receivedIndex);
        callback(message.buffer, message.id);
      });
    },
    report(value) { box.put(String(value)); },
    // The agent is done: stop listening, so its thread may end.
    leaving() { parentPort.removeAllListeners('message'); parentPort.unref(); },
    sleep(ms) { Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms)); },
    monotonicNow() { return performance.now(); },
  },
};

Atomics.add(box.words, box.startedIndex, 1);
Atomics.notify(box.words, box.startedIndex);
vm.runInThisContext(workerData.source, { filename: 'agent' });
