// The main program of one test262 run (scripts/conformance.mjs): defines the
// host part of test262's `$262`, then runs the composed test (harness files
// and the test) as a classic script in this thread's global scope, as a
// test262 host does. Under `dsm run` this file is the program, so every
// SharedArrayBuffer and Atomics call in the test goes through dsm.
//
// `$262.agent` starts each agent as a Worker from the file agent.cjs, so under
// `dsm run --nodes 3` the agents land on the other nodes. Reports and
// broadcast acknowledgements travel through one SharedArrayBuffer (the
// mailbox), because the main thread of a test spins in getReport() and never
// returns to its event loop to receive a message.
'use strict';

const { readFileSync } = require('node:fs');
const { join } = require('node:path');
const vm = require('node:vm');
const { Worker } = require('node:worker_threads');
const { mailboxFunctions, mailboxBytes } = require('./mailbox.cjs');

const testFile = process.argv[2];
const source = readFileSync(testFile, 'utf8');
const agentStartMsMax = 60_000;

let mailbox = null;
const agents = [];

function mailboxOf() {
  // Made on first use, so tests without agents allocate nothing extra.
  if (mailbox === null) mailbox = mailboxFunctions(new SharedArrayBuffer(mailboxBytes));
  return mailbox;
}

function sleep(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms));
}

globalThis.print = (...values) => console.log(...values);
globalThis.$262 = {
  global: globalThis,
  evalScript(code) { return vm.runInThisContext(code); },
  detachArrayBuffer(buffer) { structuredClone(buffer, { transfer: [buffer] }); },
  agent: {
    start(agentSource) {
      const box = mailboxOf();
      const startedCount = Atomics.load(box.words, box.startedIndex);
      const worker = new Worker(join(__dirname, 'agent.cjs'), { workerData: { source: String(agentSource), mailbox: box.buffer } });
      agents.push(worker);
      // INTERPRETING.md: start blocks until the agent is running.
      const deadlineMs = performance.now() + agentStartMsMax;
      while (Atomics.load(box.words, box.startedIndex) === startedCount) {
        if (performance.now() > deadlineMs) throw new Error('$262.agent.start: the agent did not start');
        Atomics.wait(box.words, box.startedIndex, startedCount, 50);
      }
    },
    broadcast(buffer, id) {
      const box = mailboxOf();
      Atomics.store(box.words, box.receivedIndex, 0);
      for (const worker of agents) worker.postMessage({ buffer, id });
      // INTERPRETING.md: broadcast blocks until every agent has retrieved the message.
      for (;;) {
        const received = Atomics.load(box.words, box.receivedIndex);
        if (received >= agents.length) break;
        Atomics.wait(box.words, box.receivedIndex, received, 50);
      }
    },
    getReport() { return mailboxOf().take(); },
    sleep,
    monotonicNow() { return performance.now(); },
  },
};

vm.runInThisContext(source, { filename: testFile });
