// Round trips between two node processes on loopback: dsm's transport
// (frames, a compact body as a fault's page reply has, or msgpack and an
// out-of-band payload) against plain `net` sockets with a bare length prefix,
// all measured in the same run, 64-byte and 4 KiB payloads.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { handshake, type Connection } from '../src/transport/connection.js';
import { rttHello, rttSecret } from './rtt-config.js';
import { makeTestCerts } from './tls-certs.js';
import { type TlsConfig, dialStream, loadTls } from '../src/transport/tls.js';

export interface RttBenchResult {
  iterations: number;
  rtt64UsP50: number;
  rtt4kUsP50: number;
  rawRtt64UsP50: number;
  rawRtt4kUsP50: number;
  rtt64UsP99: number;
  rtt4kUsP99: number;
  rawRtt64UsP99: number;
  rawRtt4kUsP99: number;
  ratio64: number;
  ratio4k: number;
  /**
   * The round trip as sessions 1-13 measured it (rtt64UsP50 and rtt4kUsP50 until session 14): a message whose
   * bytes travel as the frame's raw payload, a path the protocol's messages of up to 16 KiB do not take.
   * rtt64UsP50 and rtt4kUsP50 now carry the bytes as a fault's reply does (a compact `pageReply`).
   */
  payloadRtt64UsP50: number;
  payloadRtt4kUsP50: number;
  /** A read fault on node 1 served by the page's home on node 0, through a real 2-node dsm run. */
  pageFetchUsP50: number;
  pageFetchUsP99: number;
  pageFetchOverRawRtt4k: number;
  /**
   * A worker's start through a real 2-node dsm run (bench/programs/worker-start.mjs): `new Worker` to the
   * first line of its module, ms, for the run's first worker placed on node 1 (remote) and on node 0 (local).
   */
  remoteWorkerStartMs: number;
  localWorkerStartMs: number;
  /** dsm's transport under mutual TLS (--tls-*), measured in the same rounds; null without openssl. */
  tlsRtt64UsP50: number | null;
  tlsRtt4kUsP50: number | null;
  tlsOverDsm64: number | null;
  tlsOverDsm4k: number | null;
}

/** Runs bench/programs/page-fetch.mjs on a 2-node cluster and returns its figures for remotely homed pages. */
function measurePageFetch(pageCount: number): { p50: number; p99: number } {
  const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
  const result = spawnSync(process.execPath, [join(root, 'bin', 'dsm.js'), 'run', '--nodes', '2', '--placement', 'block', '--region-bytes', '256m',
    join(root, 'bench', 'programs', 'page-fetch.mjs'), String(pageCount)], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, DSM_READAHEAD: '0' } });
  if (result.status !== 0) throw new Error(`page-fetch run failed: ${result.stderr}`);
  const figures = JSON.parse(result.stdout.trim().split('\n').pop()!) as { pageFetchUsP50: number; pageFetchUsP99: number };
  return { p50: figures.pageFetchUsP50, p99: figures.pageFetchUsP99 };
}

/** Runs bench/programs/worker-start.mjs on a 2-node cluster: the first worker's start on node `node`, ms. */
function measureWorkerStart(node: 0 | 1): number {
  const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
  const result = spawnSync(process.execPath, [join(root, 'bin', 'dsm.js'), 'run', '--nodes', '2',
    join(root, 'bench', 'programs', 'worker-start.mjs'), '1', String(node)], { encoding: 'utf8', timeout: 120_000 });
  if (result.status !== 0) throw new Error(`worker-start run failed: ${result.stderr}`);
  return (JSON.parse(result.stdout.trim().split('\n').pop()!) as { firstStartMs: number }).firstStartMs;
}

function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}
const round = (value: number) => Math.round(value * 100) / 100;

/** An echo process serving `modes` (bench/rtt-echo.ts), and its port for each, in that order. */
export async function startEchoes(modes: ReadonlyArray<'raw' | 'dsm' | 'tls'>, env: Record<string, string> = {}): Promise<{ child: ChildProcess; ports: number[] }> {
  const self = fileURLToPath(import.meta.url);
  const echo = self.replace(/rtt\.(ts|js)$/, 'rtt-echo.$1');
  const execArgv = self.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const child = spawn(process.execPath, [...execArgv, echo, modes.join(',')], { stdio: ['pipe', 'pipe', 'inherit'], env: { ...process.env, ...env } });
  const ports = await new Promise<number[]>((resolve, reject) => {
    let text = '';
    const onData = (data: Buffer): void => {
      text += data.toString();
      if (!text.includes('\n')) return;
      child.stdout!.off('data', onData);
      resolve(text.trim().split(' ').map(Number));
    };
    child.stdout!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`rtt echo exited with ${code}`)));
  });
  return { child, ports };
}

export async function startEcho(mode: 'raw' | 'dsm' | 'tls', env: Record<string, string> = {}): Promise<{ child: ChildProcess; port: number }> {
  const { child, ports } = await startEchoes([mode], env);
  return { child, port: ports[0]! };
}

/** A raw TCP connection to an echo (Nagle off), for rawRoundTrips. */
export async function rawConnect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

/**
 * Round trips of a [u32 length][bytes] frame over raw TCP. Given a connection (`kept`), on it, as dsm's round trips
 * run on one connection for the whole run; else on a connection of their own (a fresh connection's round trips
 * were ~20% slower for the whole of a 200-trip round on a quiet machine: 91-98 against 72-85 µs).
 */
export async function rawRoundTrips(port: number, payloadBytes: number, iterations: number, kept?: net.Socket): Promise<number[]> {
  const socket = kept ?? await rawConnect(port);
  const frame = Buffer.alloc(4 + payloadBytes, 7);
  frame.writeUInt32BE(payloadBytes, 0);
  const samples: number[] = [];
  let received = 0;
  let wake: () => void = () => {};
  const onData = (chunk: Buffer): void => {
    received += chunk.length;
    if (received >= frame.length) {
      received -= frame.length;
      wake();
    }
  };
  socket.on('data', onData);
  for (let i = 0; i < iterations; i += 1) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      wake = resolve;
      socket.write(frame);
    });
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  socket.off('data', onData);
  if (kept === undefined) socket.destroy();
  return samples;
}

/**
 * What the round trip carries: 'page', the message a read fault's reply is (a `pageReply` with the bytes in its
 * body, in the compact layout, as every protocol message of up to 16 KiB goes); 'payload', a message whose
 * bytes travel as the frame's raw payload (a large window's reply, a postMessage: their own buffer, two copies).
 */
export type DsmRoundTripKind = 'page' | 'payload';

async function dsmRoundTrips(connection: Connection, payloadBytes: number, iterations: number, kind: DsmRoundTripKind = 'page'): Promise<number[]> {
  const payload = new Uint8Array(payloadBytes).fill(7);
  const samples: number[] = [];
  let wake: () => void = () => {};
  connection.on('message', () => wake());
  for (let i = 0; i < iterations; i += 1) {
    const start = process.hrtime.bigint();
    await new Promise<void>((resolve) => {
      wake = resolve;
      connection.send(kind === 'page'
        ? { type: 'pageReply', page: i, version: [i, 0], bytes: payload, extraPages: [], extraVersions: [], extraBytes: [] }
        : { type: 'ping', i, payload });
    });
    samples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  connection.removeAllListeners('message');
  return samples;
}

export async function runRttBench(options: { iterations: number }): Promise<RttBenchResult> {
  const { iterations } = options;
  const certs = makeTestCerts();
  const tlsConfig: TlsConfig | undefined = certs === null ? undefined : loadTls({ cert: certs.cert, key: certs.key, ca: certs.ca });
  // One echo process serves every kind (bench/rtt-echo.ts: the scheduler places it once for all of them).
  const echo = await startEchoes(certs === null ? ['raw', 'dsm'] : ['raw', 'dsm', 'tls'],
    certs === null ? {} : { DSM_BENCH_TLS_CERT: certs.cert, DSM_BENCH_TLS_KEY: certs.key, DSM_BENCH_TLS_CA: certs.ca });
  const raw = { port: echo.ports[0]! };
  const dsm = { port: echo.ports[1]! };
  const secure = certs === null ? null : { port: echo.ports[2]! };
  try {
    const connection = await handshake(net.connect(dsm.port, '127.0.0.1'),
      { hello: rttHello, secret: rttSecret, role: 'connect', peerLabel: 'rtt echo' });
    const tlsConnection = secure === null ? null : await handshake(await dialStream('127.0.0.1', secure.port, tlsConfig),
      { hello: rttHello, secret: rttSecret, role: 'connect', peerLabel: 'rtt echo (tls)' });
    // One raw connection for the run, as dsm's round trips have one.
    const rawSocket = await rawConnect(raw.port);
    const warm = Math.min(200, iterations);
    await rawRoundTrips(raw.port, 64, warm, rawSocket);
    await dsmRoundTrips(connection, 64, warm);
    if (tlsConnection !== null) await dsmRoundTrips(tlsConnection, 64, warm);
    const tls64: number[] = [];
    const tls4k: number[] = [];
    // Interleave in rounds, so load from elsewhere on the machine hits both kinds alike.
    const roundCount = 10;
    const perRound = Math.max(1, Math.ceil(iterations / roundCount));
    const raw64: number[] = [];
    const dsm64: number[] = [];
    const raw4k: number[] = [];
    const dsm4k: number[] = [];
    const payload64: number[] = [];
    const payload4k: number[] = [];
    for (let roundIndex = 0; roundIndex < roundCount; roundIndex += 1) {
      raw64.push(...await rawRoundTrips(raw.port, 64, perRound, rawSocket));
      dsm64.push(...await dsmRoundTrips(connection, 64, perRound));
      raw4k.push(...await rawRoundTrips(raw.port, 4096, perRound, rawSocket));
      dsm4k.push(...await dsmRoundTrips(connection, 4096, perRound));
      payload64.push(...await dsmRoundTrips(connection, 64, perRound, 'payload'));
      payload4k.push(...await dsmRoundTrips(connection, 4096, perRound, 'payload'));
      if (tlsConnection !== null) {
        tls64.push(...await dsmRoundTrips(tlsConnection, 64, perRound));
        tls4k.push(...await dsmRoundTrips(tlsConnection, 4096, perRound));
      }
    }
    connection.close();
    tlsConnection?.close();
    rawSocket.destroy();
    const result: RttBenchResult = {
      iterations,
      rtt64UsP50: round(percentile(dsm64, 0.5)),
      rtt4kUsP50: round(percentile(dsm4k, 0.5)),
      rawRtt64UsP50: round(percentile(raw64, 0.5)),
      rawRtt4kUsP50: round(percentile(raw4k, 0.5)),
      rtt64UsP99: round(percentile(dsm64, 0.99)),
      rtt4kUsP99: round(percentile(dsm4k, 0.99)),
      rawRtt64UsP99: round(percentile(raw64, 0.99)),
      rawRtt4kUsP99: round(percentile(raw4k, 0.99)),
      ratio64: 0,
      ratio4k: 0,
      payloadRtt64UsP50: round(percentile(payload64, 0.5)),
      payloadRtt4kUsP50: round(percentile(payload4k, 0.5)),
      pageFetchUsP50: 0,
      pageFetchUsP99: 0,
      pageFetchOverRawRtt4k: 0,
      remoteWorkerStartMs: 0,
      localWorkerStartMs: 0,
      tlsRtt64UsP50: tls64.length === 0 ? null : round(percentile(tls64, 0.5)),
      tlsRtt4kUsP50: tls4k.length === 0 ? null : round(percentile(tls4k, 0.5)),
      tlsOverDsm64: null,
      tlsOverDsm4k: null,
    };
    if (result.tlsRtt64UsP50 !== null) result.tlsOverDsm64 = round(result.tlsRtt64UsP50 / result.rtt64UsP50);
    if (result.tlsRtt4kUsP50 !== null) result.tlsOverDsm4k = round(result.tlsRtt4kUsP50 / result.rtt4kUsP50);
    const fetch = measurePageFetch(Math.min(iterations, 4000));
    result.pageFetchUsP50 = fetch.p50;
    result.pageFetchUsP99 = fetch.p99;
    result.pageFetchOverRawRtt4k = round(fetch.p50 / result.rawRtt4kUsP50);
    result.remoteWorkerStartMs = measureWorkerStart(1);
    result.localWorkerStartMs = measureWorkerStart(0);
    result.ratio64 = round(result.rtt64UsP50 / result.rawRtt64UsP50);
    result.ratio4k = round(result.rtt4kUsP50 / result.rawRtt4kUsP50);
    return result;
  } finally {
    echo.child.stdin!.end();
    if (certs !== null) rmSync(certs.dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(JSON.stringify(await runRttBench({ iterations: Number(process.argv[2] ?? 2000) })));
}
