// The mailbox the test262 main thread and its agents share: a lock word, the
// started and received counters, and a queue of report strings (UTF-16 code
// units, each prefixed by its length), written and read under the lock.
'use strict';

const mailboxBytes = 1 << 16;
const headerBytes = 64;

function mailboxFunctions(buffer) {
  const words = new Int32Array(buffer, 0, headerBytes / 4);
  const units = new Uint16Array(buffer, headerBytes);
  const lockIndex = 0;
  const writeIndex = 1;
  const readIndex = 2;
  const receivedIndex = 3;
  const startedIndex = 4;

  function lock() {
    while (Atomics.compareExchange(words, lockIndex, 0, 1) !== 0) Atomics.wait(words, lockIndex, 1, 5);
  }
  function unlock() {
    Atomics.store(words, lockIndex, 0);
    Atomics.notify(words, lockIndex, 1);
  }
  return {
    buffer, words, receivedIndex, startedIndex,
    put(text) {
      lock();
      try {
        const at = words[writeIndex];
        if (at + 1 + text.length > units.length) throw new RangeError('$262.agent.report: the mailbox is full');
        units[at] = text.length;
        for (let k = 0; k < text.length; k++) units[at + 1 + k] = text.charCodeAt(k);
        words[writeIndex] = at + 1 + text.length;
      } finally {
        unlock();
      }
    },
    take() {
      lock();
      try {
        const at = words[readIndex];
        if (at >= words[writeIndex]) return null;
        const length = units[at];
        words[readIndex] = at + 1 + length;
        return String.fromCharCode(...units.subarray(at + 1, at + 1 + length));
      } finally {
        unlock();
      }
    },
  };
}

module.exports = { mailboxFunctions, mailboxBytes };
