import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PushPredictor } from '../../src/protocol/push-predict.js';

/** The pages of row `i` of an Int32 matrix with rows of `rowBytes`, as matmul's C. */
function rowPages(i: number, rowBytes: number): number[] {
  const first = Math.floor((i * rowBytes) / 4096);
  const last = Math.floor((i * rowBytes + rowBytes - 1) / 4096);
  return first === last ? [first] : [first, last];
}

test('a node writing every 16th row (matmul on 16 nodes) is pushed the pages of its next row', () => {
  const predictor = new PushPredictor();
  assert.equal(predictor.predicted(3), null, 'nothing known of a node before its releases');
  let hits = 0;
  let pushed = 0;
  let needed = 0;
  for (let i = 3; i < 400; i += 16) {
    const next = rowPages(i, 1600);
    const prediction = predictor.predicted(3);
    if (prediction !== null && i > 3 + 16 * 4) {
      // As the manager does: the first pushMax predicted pages (here every predicted page is a candidate).
      const pushes = prediction.pages.slice(0, prediction.pushMax);
      pushed += pushes.length;
      needed += next.length;
      hits += next.filter((page) => pushes.includes(page)).length;
    }
    predictor.noteRelease(3, next);
  }
  assert.ok(hits >= needed * 0.8, `${hits} of ${needed} pages written next were pushed`);
  assert.ok(pushed <= 3 * needed, `${pushed} pushed for ${needed} written`);
});

test('migratory data (the same pages every section) is predicted as those pages', () => {
  const predictor = new PushPredictor();
  for (let k = 0; k < 5; k++) predictor.noteRelease(1, [40, 7]);
  const prediction = predictor.predicted(1)!;
  assert.deepEqual(prediction.pages.slice(0, 2).sort((x, y) => x - y), [7, 40]);
  assert.equal(prediction.pushMax, 3);
  // Each node is learned apart.
  assert.equal(predictor.predicted(2), null);
});

test('a pattern that changes is relearned; offsets stay within their limits', () => {
  const predictor = new PushPredictor();
  for (let k = 0; k < 300; k++) predictor.noteRelease(0, [1000 + 3 * k, 1000 + 3 * k + 1]);
  for (let k = 0; k < 40; k++) predictor.noteRelease(0, [5]);
  assert.equal(predictor.predicted(0)!.pages[0], 5, 'the new pattern ranks first');
  // Many distinct offsets, far ones ignored.
  const wide = new PushPredictor();
  for (let k = 0; k < 500; k++) wide.noteRelease(0, [k * 37 % 5000, 1_000_000 * (k % 2)]);
  assert.ok(wide.predicted(0)!.pages.length <= 64);
});
