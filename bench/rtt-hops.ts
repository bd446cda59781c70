// `dsm bench rtt --hops`: where the time of one remote read fault goes. A
// 2-node run of bench/programs/page-fetch.mjs with --trace: a worker on node 1
// reads one byte of each page homed on node 0 (read-ahead off: DSM_READAHEAD=0),
// stamping when it starts each read and when it has the
// value; dsm's trace stamps the hops in between on each node (cluster-node.ts
// `hop`). All stamps are this machine's epoch time in microseconds, so the
// two processes' stamps line up (one machine, loopback).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rawConnect, rawRoundTrips, startEcho } from './rtt.js';

/** The hops of one fault, in order: the stamp that ends each, and who stamps it. */
const hops: Array<{ name: string; from: string; to: string; side: string; part?: boolean }> = [
  { name: 'thread faults -> manager sees it', from: 'thread start', to: 'fault received', side: 'node 1: app thread, signal handler, fault service, event loop turn' },
  { name: 'requester engine', from: 'fault received', to: 'request sending', side: 'node 1: engine onFault, read-ahead plan' },
  { name: 'request: send -> home has it', from: 'request sending', to: 'request received', side: 'node 1 encode + write, loopback TCP, node 0 event loop turn + decode' },
  { name: '  of which request encode + write', from: 'request sending', to: 'request sent', side: 'node 1: frame, compact body, socket write (wakes node 0)', part: true },
  { name: '  then prefault (request out)', from: 'request sent', to: 'request prefaulted', side: 'node 1: the page made resident while node 0 serves', part: true },
  { name: 'home serves', from: 'request received', to: 'reply sending', side: 'node 0: engine, page copy' },
  { name: 'reply: send -> requester has it', from: 'reply sending', to: 'reply received', side: 'node 0 encode + write, loopback TCP, node 1 event loop turn + decode' },
  { name: '  of which reply encode + write', from: 'reply sending', to: 'reply sent', side: 'node 0: frame, compact body, socket write (wakes node 1)', part: true },
  { name: 'install + resume call', from: 'reply received', to: 'thread resumed', side: 'node 1: engine install (write page, prefaulted; protect), native resume' },
  { name: 'thread wakes with the value', from: 'thread resumed', to: 'thread end', side: 'node 1: futex wake, signal return, load retried (its first touch in the app view: a minor fault)' },
];

export interface HopRow { hop: string; where: string; p50Us: number; p90Us: number }
export interface HopsResult {
  pages: number; faultsMatched: number; totalUsP50: number; sumOfHopP50sUs: number; hops: HopRow[];
  /** Raw TCP round trip of 4 KiB between two processes (bench/rtt.ts), measured in the same run, before and after the traced run. */
  rawRtt4kUsP50: number;
  /** totalUsP50 over rawRtt4kUsP50 (the goal of issue 13.4 is 2 for an untraced fetch: `dsm bench rtt` pageFetchOverRawRtt4k). */
  totalOverRawRtt4k: number;
}

interface TraceEvent { name: string; cat: string; pid: number; args?: { page?: number; epochUs?: number } }

function percentile(samples: number[], fraction: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(fraction * sorted.length))]!;
}
const round = (value: number) => Math.round(value * 10) / 10;

/** The median raw 4 KiB round trip over `iterations` (bench/rtt.ts's raw echo). */
async function rawRtt4k(iterations: number): Promise<number[]> {
  const raw = await startEcho('raw');
  const socket = await rawConnect(raw.port);
  try {
    await rawRoundTrips(raw.port, 4096, Math.min(200, iterations), socket);
    return await rawRoundTrips(raw.port, 4096, iterations, socket);
  } finally {
    socket.destroy();
    raw.child.stdin!.end();
  }
}

export async function runRttHops(options: { pages: number }): Promise<HopsResult> {
  const rawBefore = await rawRtt4k(500);
  const traced = tracedRun(options);
  const rawAfter = await rawRtt4k(500);
  const rawRtt4kUsP50 = round(percentile([...rawBefore, ...rawAfter], 0.5));
  return { ...traced, rawRtt4kUsP50, totalOverRawRtt4k: Math.round((traced.totalUsP50 / rawRtt4kUsP50) * 100) / 100 };
}

function tracedRun(options: { pages: number }): Omit<HopsResult, 'rawRtt4kUsP50' | 'totalOverRawRtt4k'> {
  const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'dsm-hops-'));
  try {
    const tracePath = join(dir, 'trace.json');
    const result = spawnSync(process.execPath, [join(root, 'bin', 'dsm.js'), 'run', '--nodes', '2', '--placement', 'block', '--region-bytes', '256m',
      '--trace', tracePath, join(root, 'bench', 'programs', 'page-fetch.mjs'), String(options.pages), 'hops'], { encoding: 'utf8', timeout: 120_000, env: { ...process.env, DSM_READAHEAD: '0' } });
    if (result.status !== 0) throw new Error(`page-fetch run failed: ${result.stderr}`);
    const program = JSON.parse(result.stdout.trim().split('\n').pop()!) as { starts: number[]; ends: number[] };
    const trace = JSON.parse(readFileSync(tracePath, 'utf8')) as { traceEvents: TraceEvent[] };
    // Per region page: the stamp of each hop (the first of its kind).
    const stamps = new Map<number, Map<string, number>>();
    for (const event of trace.traceEvents) {
      if (event.cat !== 'hop' || event.args?.page === undefined || event.args.epochUs === undefined) continue;
      let byHop = stamps.get(event.args.page);
      if (byHop === undefined) { byHop = new Map(); stamps.set(event.args.page, byHop); }
      if (!byHop.has(event.name)) byHop.set(event.name, event.args.epochUs);
    }
    // The program's pages are consecutive region pages: the lowest faulted one is its page 0.
    const faulted = [...stamps].filter(([, byHop]) => byHop.has('fault received')).map(([page]) => page);
    const base = Math.min(...faulted);
    const samples = new Map<string, number[]>(hops.map((hop) => [hop.name, []]));
    const totals: number[] = [];
    let matched = 0;
    for (let page = 0; page < options.pages; page++) {
      const byHop = stamps.get(base + page);
      if (byHop === undefined) continue;
      const all = new Map(byHop);
      all.set('thread start', program.starts[page]!);
      all.set('thread end', program.ends[page]!);
      if (!hops.every((hop) => all.has(hop.from) && all.has(hop.to))) continue;
      matched++;
      for (const hop of hops) samples.get(hop.name)!.push(all.get(hop.to)! - all.get(hop.from)!);
      totals.push(program.ends[page]! - program.starts[page]!);
    }
    const rows = hops.map((hop) => ({ hop: hop.name, where: hop.side, p50Us: round(percentile(samples.get(hop.name)!, 0.5)), p90Us: round(percentile(samples.get(hop.name)!, 0.9)) }));
    return {
      pages: options.pages, faultsMatched: matched, totalUsP50: round(percentile(totals, 0.5)),
      sumOfHopP50sUs: round(rows.reduce((sum, row, k) => sum + (hops[k]!.part === true ? 0 : row.p50Us), 0)), hops: rows,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The table `dsm bench rtt --hops` prints. */
export function formatHops(result: HopsResult): string {
  const lines = [`one remote read fault, ${result.faultsMatched} of ${result.pages} faults matched; median ${result.totalUsP50} µs from read to value`,
    `raw TCP 4 KiB round trip in the same run: ${result.rawRtt4kUsP50} µs (the traced fault: ${result.totalOverRawRtt4k}x)`,
    `${'hop'.padEnd(36)} ${'p50 µs'.padStart(8)} ${'p90 µs'.padStart(8)}  where`];
  for (const row of result.hops) lines.push(`${row.hop.padEnd(36)} ${String(row.p50Us).padStart(8)} ${String(row.p90Us).padStart(8)}  ${row.where}`);
  lines.push(`${'sum of medians'.padEnd(36)} ${String(result.sumOfHopP50sUs).padStart(8)}`);
  return `${lines.join('\n')}\n`;
}
