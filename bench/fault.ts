// Page-fault costs of the native MMU, measured in one run:
//   readFaultUs       a read of an invalid page: signal, queue, wake the manager,
//                     the manager protects the page read-only and resumes the thread
//   writeFaultUs      a write to a read-only page with fast-write set: the handler
//                     twins the page and upgrades it, no manager round trip
//   slowWriteFaultUs  a write to a read-only page without fast-write: via the manager
//   floorUs           the bare cost: signal delivery, mprotect in the handler, return
// Times are taken in the app thread around one access (hrtime), so they include
// the timer's own overhead, reported as timerUsP50.

import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { pageBytes } from '../src/constants.js';
import { loadNativeMmu, protRead, protReadWrite } from '../src/memory/native.js';
import { packageRoot } from '../src/package-info.js';

export interface FaultBenchResult {
  iterations: number;
  pageBytes: number;
  readFaultUsP50: number;
  readFaultUsP99: number;
  writeFaultUsP50: number;
  writeFaultUsP99: number;
  slowWriteFaultUsP50: number;
  slowWriteFaultUsP99: number;
  floorUsP50: number;
  floorUsP99: number;
  timerUsP50: number;
  writeFaultOverFloor: number;
  readFaultOverFloor: number;
}

function percentile(samples: Float64Array | number[], fraction: number): number {
  const sorted = Float64Array.from(samples).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}

const round = (value: number) => Math.round(value * 100) / 100;

const appThreadSource = `
const { workerData, parentPort } = require('node:worker_threads');
const native = require(workerData.addon);
const { iterations, pageBytes } = workerData;
const view = new Uint8Array(native.sharedArrayBuffer(0, 3 * iterations * pageBytes));
const time = (touch) => {
  const samples = new Float64Array(iterations);
  for (let i = 0; i < iterations; i++) {
    const start = process.hrtime.bigint();
    touch(i);
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  return samples;
};
let sink = 0;
const timer = time(() => {});
const read = time((i) => { sink += view[i * pageBytes]; });
const fast = time((i) => { view[(iterations + i) * pageBytes] = 1; });
const slow = time((i) => { view[(2 * iterations + i) * pageBytes] = 1; });
parentPort.postMessage({ timer, read, fast, slow, sink });
`;

export async function runFaultBench(options: { iterations: number }): Promise<FaultBenchResult> {
  const iterations = options.iterations;
  const native = loadNativeMmu();
  const regionBytes = Math.max(64 * 1024 * 1024, Math.ceil((3 * iterations * pageBytes) / (1024 * 1024)) * 1024 * 1024);
  native.init(native.isInitialized() ? native.regionBytes() : regionBytes);
  if (native.regionBytes() < 3 * iterations * pageBytes) throw new Error('fault bench: region too small for the iterations');
  native.installHandler();
  // Pages [0, n): invalid. [n, 2n): read-only with fast write. [2n, 3n): read-only.
  native.protect(0, 3 * iterations, 0);
  native.protect(iterations, 2 * iterations, protRead);
  native.setFastWrite(Uint32Array.from({ length: iterations }, (_, i) => iterations + i), true);
  // A read-only page is a valid page: its contents exist (it was fetched or
  // read before), so bring them into memory as a real run would have.
  const scratch = new Uint8Array(pageBytes);
  for (let page = iterations; page < 3 * iterations; page += 1) native.writePage(page, scratch);
  native.startFaultService((records) => {
    const slots = new Uint32Array(records.length / 3);
    for (let index = 0; index < records.length; index += 3) {
      const page = records[index + 1]!;
      const isWrite = (records[index + 2]! & 1) === 1;
      if (isWrite) native.makeTwin(page);
      native.protect(page, 1, isWrite ? protReadWrite : protRead);
      slots[index / 3] = records[index]!;
    }
    native.resumeMany(slots);
  });

  const floorNs = native.benchFloor(iterations);
  const addon = join(packageRoot, 'build', 'Release', 'dsm_mmu.node');
  const samples = await new Promise<{ timer: Float64Array; read: Float64Array; fast: Float64Array; slow: Float64Array }>((resolve, reject) => {
    const worker = new Worker(appThreadSource, { eval: true, workerData: { addon, iterations, pageBytes } });
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  native.stopFaultService();
  // Leave the pages clean for anyone else in this process.
  native.flush(Uint32Array.from({ length: 2 * iterations }, (_, i) => iterations + i));
  native.drainDirty();

  const floorUs = Array.from(floorNs, (ns) => ns / 1000);
  const result: FaultBenchResult = {
    iterations,
    pageBytes,
    readFaultUsP50: round(percentile(samples.read, 0.5)),
    readFaultUsP99: round(percentile(samples.read, 0.99)),
    writeFaultUsP50: round(percentile(samples.fast, 0.5)),
    writeFaultUsP99: round(percentile(samples.fast, 0.99)),
    slowWriteFaultUsP50: round(percentile(samples.slow, 0.5)),
    slowWriteFaultUsP99: round(percentile(samples.slow, 0.99)),
    floorUsP50: round(percentile(floorUs, 0.5)),
    floorUsP99: round(percentile(floorUs, 0.99)),
    timerUsP50: round(percentile(samples.timer, 0.5)),
    writeFaultOverFloor: 0,
    readFaultOverFloor: 0,
  };
  result.writeFaultOverFloor = round(result.writeFaultUsP50 / result.floorUsP50);
  result.readFaultOverFloor = round(result.readFaultUsP50 / result.floorUsP50);
  return result;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const result = await runFaultBench({ iterations: Number(process.argv[2] ?? 2000) });
  console.log(JSON.stringify(result));
}
