// A worker hosted on another node than its parent talks to it through the
// channel (parent-message events, parent-post calls): its parentPort must
// behave as Node's — messages sent before it listens wait, in order; close()
// and unref() let the worker end.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';

const fixture = 'test/fixtures/programs/remote-parent-port.mjs';

function run(args: string[]) {
  const result = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(result.error, undefined, String(result.error));
  return result;
}

test('a remote worker\'s parentPort: queued messages in order, close() and unref() end it, as under node', () => {
  const plain = run([fixture]);
  assert.equal(plain.status, 0, plain.stderr);
  const onDsm = run(['bin/dsm.js', 'run', '--nodes', '2', fixture]);
  assert.equal(onDsm.status, 0, onDsm.stderr);
  assert.equal(onDsm.stdout, plain.stdout);
  assert.match(onDsm.stderr, /^late worker on node 1$/m, 'the worker ran on the other node');
});
