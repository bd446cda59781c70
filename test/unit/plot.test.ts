// dsm plot: a trace's faults become marks (one colour per node, reads and
// writes as different shapes), as SVG or PNG; bad input is a named error.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DsmError } from '../../src/errors.js';
import { plotTrace, readAccesses } from '../../src/plot/index.js';

const fixture = 'test/fixtures/traces/matmul-like.json';
const dir = mkdtempSync(join(tmpdir(), 'dsm-plot-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the fault events of a trace are its accesses', () => {
  const { accesses, protocol, nodeCount } = readAccesses(fixture);
  assert.equal(protocol, 'hlrc');
  assert.equal(nodeCount, 3);
  assert.equal(accesses.length, 70);
  assert.equal(accesses.filter((a) => a.kind === 'read').length, 40);
  assert.deepEqual(new Set(accesses.map((a) => a.node)), new Set(['node 0', 'node 1', 'node 2']));
});

test('SVG: one mark per fault, a colour per node, a shape per kind, axis titles', async () => {
  const out = join(dir, 'a.svg');
  const result = await plotTrace(fixture, out);
  assert.deepEqual(result, { points: 70, accesses: 70, nodes: 3, format: 'svg' });
  const svg = readFileSync(out, 'utf8');
  assert.ok(svg.startsWith('<svg'));
  // vega draws each point as a <path> in the marks group with role-mark "point"; count them by their aria label.
  const marks = svg.match(/aria-roledescription="point"/g) ?? [];
  assert.equal(marks.length, 70);
  const fills = new Set([...svg.matchAll(/aria-roledescription="point"[^>]*fill="(#[0-9a-f]{6})"/g)].map((m) => m[1]));
  assert.equal(fills.size, 3, 'three node colours');
  // Reads are hollow (fill-opacity 0), writes filled.
  const fillOpacities = [...svg.matchAll(/aria-roledescription="point"[^>]*fill-opacity="([0-9.]+)"/g)].map((m) => Number(m[1]));
  assert.equal(fillOpacities.length, 70);
  assert.equal(fillOpacities.filter((opacity) => opacity === 0).length, 40);
  assert.equal(fillOpacities.filter((opacity) => opacity > 0.5).length, 30);
  // The run lasts 46 ms, so the axis counts milliseconds.
  assert.match(svg, /time since the run started \(ms\)/);
  assert.match(svg, /Symbol legend titled 'node' for fill color and stroke color with 3 values: node 0, node 1, node 2/);
  assert.match(svg, /Symbol legend titled 'access' for shape with 2 values: read, write/);
  assert.match(svg, /page \(global page number\)/);
  assert.match(svg, /dsm access pattern — hlrc, 3 nodes/);
});

test('PNG: the PNG signature, the requested size', async () => {
  const out = join(dir, 'a.png');
  const result = await plotTrace(fixture, out, { width: 400, height: 200, title: 'small' });
  assert.equal(result.format, 'png');
  const png = readFileSync(out);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  // The plot area plus axes, title and legend.
  assert.ok(width > 400 && width < 700, `width ${width}`);
  assert.ok(height > 200 && height < 400, `height ${height}`);
});

test('a page range keeps only those pages', async () => {
  const result = await plotTrace(fixture, join(dir, 'b.svg'), { pageRange: [40, 49] });
  assert.equal(result.accesses, 30);
});

test('bad input: another extension, a missing file, not a trace, a trace without faults', async () => {
  const isCode = (code: string) => (error: unknown) => error instanceof DsmError && error.code === code;
  await assert.rejects(plotTrace(fixture, join(dir, 'a.jpg')), isCode('DSM_ERR_INVALID_OPTION'));
  await assert.rejects(plotTrace(join(dir, 'missing.json'), join(dir, 'c.svg')), isCode('DSM_ERR_TRACE'));
  const notJson = join(dir, 'bad.json');
  writeFileSync(notJson, '{"traceEvents": [');
  await assert.rejects(plotTrace(notJson, join(dir, 'c.svg')), (error: unknown) => isCode('DSM_ERR_TRACE')(error) && /is not JSON/.test((error as Error).message));
  const empty = join(dir, 'empty.json');
  writeFileSync(empty, JSON.stringify({ traceEvents: [] }));
  await assert.rejects(plotTrace(empty, join(dir, 'c.svg')), (error: unknown) => isCode('DSM_ERR_TRACE')(error) && /no page faults/.test((error as Error).message));
  await assert.rejects(plotTrace(fixture, join(dir, 'c.svg'), { pageRange: [1000, 2000] }),
    (error: unknown) => isCode('DSM_ERR_TRACE')(error) && /no page faults on pages 1000–2000/.test((error as Error).message));
  const malformed = join(dir, 'malformed.json');
  writeFileSync(malformed, JSON.stringify({ traceEvents: [{ cat: 'fault', name: 'read fault', ts: 'x', pid: 0, args: {} }] }));
  await assert.rejects(plotTrace(malformed, join(dir, 'c.svg')), isCode('DSM_ERR_TRACE'));
});

test('a large trace is sampled evenly to plotPointCountMax marks, and the figure says so', async () => {
  const { plotPointCountMax } = await import('../../src/constants.js');
  const count = plotPointCountMax + 10_000;
  const traceEvents = Array.from({ length: count }, (_, index) => ({
    name: index % 2 === 0 ? 'read fault' : 'write fault', cat: 'fault', ph: 'X', ts: index * 10, dur: 5, pid: index % 4, tid: 0, args: { page: index % 500 },
  }));
  const path = join(dir, 'large.json');
  writeFileSync(path, JSON.stringify({ traceEvents }));
  const out = join(dir, 'large.svg');
  const result = await plotTrace(path, out);
  assert.equal(result.accesses, count);
  assert.equal(result.points, plotPointCountMax);
  assert.match(readFileSync(out, 'utf8'), new RegExp(`${count} faults .*sampled evenly: ${plotPointCountMax} of them drawn`));
});

test('twelve nodes: twelve colours, the legend in node order, seconds on the axis', async () => {
  const nodeCount = 12;
  const traceEvents = Array.from({ length: 240 }, (_, index) => ({
    name: index % 3 === 0 ? 'write fault' : 'read fault', cat: 'fault', ph: 'X', ts: index * 10_000, dur: 500, pid: index % nodeCount, tid: 0, args: { page: 100 + index },
  }));
  const path = join(dir, 'twelve.json');
  writeFileSync(path, JSON.stringify({ otherData: { dsm: { protocol: 'sc', nodeCount } }, traceEvents }));
  const out = join(dir, 'twelve.svg');
  const result = await plotTrace(path, out);
  assert.deepEqual(result, { points: 240, accesses: 240, nodes: nodeCount, format: 'svg' });
  const svg = readFileSync(out, 'utf8');
  const fills = new Set([...svg.matchAll(/aria-roledescription="point"[^>]*fill="(#[0-9a-f]{6})"/g)].map((m) => m[1]));
  assert.equal(fills.size, nodeCount);
  assert.match(svg, /with 12 values: node 0, node 1, node 2, node 3, node 4, ending with node 11/);
  assert.match(svg, /time since the run started \(s\)/);
  assert.match(svg, /dsm access pattern — sc, 12 nodes/);
});
