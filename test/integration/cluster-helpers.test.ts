// The cluster layer's small pure helpers (no processes).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LineTagger, formatAddress, parseAddress } from '../../src/cluster/common.js';
import { DsmError } from '../../src/errors.js';

describe('cluster helpers', () => {
  it('parses HOST:PORT, including bracketed IPv6, and rejects the rest naming the option', () => {
    assert.deepEqual(parseAddress('10.0.0.1:7400', '--listen'), { host: '10.0.0.1', port: 7400 });
    assert.deepEqual(parseAddress('[::1]:80', '--join'), { host: '::1', port: 80 });
    assert.equal(formatAddress('::1', 80), '[::1]:80');
    for (const bad of ['10.0.0.1', ':7400', 'host:70000', 'host:x']) {
      assert.throws(() => parseAddress(bad, '--join'), (error: unknown) => error instanceof DsmError && error.code === 'DSM_ERR_INVALID_OPTION' && error.message.startsWith('--join'));
    }
  });

  it('tags whole lines and keeps a partial line until it ends', () => {
    const tagger = new LineTagger('[node 1 thread 2] ');
    assert.equal(tagger.push('a\nb'), '[node 1 thread 2] a\n');
    assert.equal(tagger.push('c\n\nd'), '[node 1 thread 2] bc\n[node 1 thread 2] \n');
    assert.equal(tagger.flush(), '[node 1 thread 2] d\n');
    assert.equal(tagger.flush(), '');
  });
});
