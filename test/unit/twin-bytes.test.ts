// --twin-bytes (issue 17) is validated where it enters, naming the option.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseRunOptions, twinBytesDefault } from '../../src/cli/options.js';
import { pageBytes, twinBytesDefaultMax, twinBytesMin } from '../../src/constants.js';
import { DsmError } from '../../src/errors.js';

test('--twin-bytes: a share of RAM by default, sizes with units, whole pages, and a clear error otherwise', () => {
  const byDefault = parseRunOptions({}).twinBytes;
  assert.equal(byDefault, twinBytesDefault());
  assert.ok(byDefault >= twinBytesMin && byDefault <= twinBytesDefaultMax && byDefault % pageBytes === 0);
  assert.equal(parseRunOptions({ twinBytes: '64m' }).twinBytes, 64 * 1024 * 1024);
  assert.equal(parseRunOptions({ twinBytes: '256k' }).twinBytes, 256 * 1024);
  for (const bad of ['1k', '100001', 'lots', '-4m', '128g']) {
    assert.throws(() => parseRunOptions({ twinBytes: bad }),
      (error: unknown) => error instanceof DsmError && error.code === 'DSM_ERR_INVALID_OPTION' && error.message.startsWith('--twin-bytes'), bad);
  }
});

test('the default twin limit holds a 3,072-page range written between two releases (QuickSort\'s first pushed range of 4 M ints, session 13), and a release of all of it fits a send queue', async () => {
  const { sendQueueBytesMax } = await import('../../src/constants.js');
  assert.ok(twinBytesDefaultMax >= 3072 * pageBytes, `${twinBytesDefaultMax / pageBytes} pages`);
  assert.ok(twinBytesDefaultMax * 2.5 < sendQueueBytesMax);
});
