// Volume under flow control (issue 9 item 1), full size, on 2 nodes over loopback:
//   write: a worker on node 1 writes <write-mib> MiB homed on node 0 between two syncs;
//   posts: <post-count> postMessages of 1 MiB to a worker on node 1 and back (bursts of <burst>).
// Each run is timed; each node's RSS is sampled from /proc every 50 ms (peak
// VmRSS, with its anonymous and shared-memory parts at that moment) and
// compared with the goal: below the touched region + 256 MiB. The same program
// under plain node is the baseline (one process, no network).
//
// Usage: node --import tsx bench/volume.ts [--write-mib 1024] [--post-count 10000] [--burst 64] [--queue-bytes 32m] [--json out.json]

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
const mib = 1024 * 1024;

interface Peak { rssMib: number; anonMib: number; shmemMib: number }
interface RunFigures { ok: boolean; stdout: string; seconds: number; peaks: Peak[]; programFigures: Record<string, number> | null; stderrTail: string }

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1]! : fallback;
}

function statusOf(pid: number): Peak | null {
  try {
    const text = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) / 1024;
    return { rssMib: field('VmRSS'), anonMib: field('RssAnon'), shmemMib: field('RssShmem') };
  } catch {
    return null;
  }
}

function childrenOf(pid: number): number[] {
  const result = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' });
  return result.stdout.trim().split(/\s+/).filter((text) => text !== '').map(Number);
}

/** Runs `dsm run --nodes 2` on a fixture; node 0 is the launcher process, node 1 its child. */
async function runDsm(fixture: string, args: string[], queueBytes: string, regionBytes: string): Promise<RunFigures> {
  const startMs = performance.now();
  const child = spawn(process.execPath, [join(root, 'bin', 'dsm.js'), 'run', '--nodes', '2', '--region-bytes', regionBytes, join(root, 'test', 'fixtures', 'volume', fixture), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DSM_SEND_QUEUE_BYTES: queueBytes },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const peaks: Peak[] = [{ rssMib: 0, anonMib: 0, shmemMib: 0 }, { rssMib: 0, anonMib: 0, shmemMib: 0 }];
  let node1Pid: number | null = null;
  const sampler = setInterval(() => {
    if (node1Pid === null) node1Pid = childrenOf(child.pid!)[0] ?? null;
    const pids = [child.pid!, node1Pid];
    pids.forEach((pid, node) => {
      const status = pid === null ? null : statusOf(pid);
      if (status !== null && status.rssMib > peaks[node]!.rssMib) peaks[node] = status;
    });
  }, 50);
  const safety = setTimeout(() => child.kill('SIGKILL'), 30 * 60_000);
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  clearTimeout(safety);
  clearInterval(sampler);
  const seconds = (performance.now() - startMs) / 1000;
  let programFigures: Record<string, number> | null = null;
  try { programFigures = JSON.parse(stderr.trim().split('\n').at(-1)!) as Record<string, number>; } catch { /* reported below */ }
  return { ok: code === 0, stdout, seconds, peaks, programFigures, stderrTail: stderr.slice(-2000) };
}

function runPlain(fixture: string, args: string[]): { seconds: number; stdout: string; peakMib: number } {
  const startMs = performance.now();
  const result = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, join(root, 'test', 'fixtures', 'volume', fixture), ...args], { encoding: 'utf8', timeout: 30 * 60_000 });
  const seconds = (performance.now() - startMs) / 1000;
  const peakMib = Number(result.stderr.trim().split('\n').at(-1)) / 1024;
  return { seconds, stdout: result.stdout, peakMib };
}

const writeMib = Number(argument('write-mib', '1024'));
const postCount = Number(argument('post-count', '10000'));
const burst = Number(argument('burst', '64'));
const queueBytes = argument('queue-bytes', '32m');
const jsonPath = argument('json', '');
const regionBytes = `${Math.max(512, 2 * writeMib)}m`;
const config = { nodes: 2, writeMib, postCount, postBytes: mib, burst, queueBytes, regionBytes, rssGoal: 'peak VmRSS per node < touched region + 256 MiB' };
console.log(`config ${JSON.stringify(config)}`);

const writeBytes = writeMib * mib;
const writePlain = runPlain('write.mjs', [String(writeBytes)]);
const write = await runDsm('write.mjs', [String(writeBytes)], queueBytes, regionBytes);
const writeOk = write.ok && write.stdout === `words=${writeBytes / 4} wrong=0\n`;
const writeGoalMib = writeMib + 256;
const writeResult = {
  ok: writeOk, seconds: +write.seconds.toFixed(2), plainSeconds: +writePlain.seconds.toFixed(2), ratioToPlain: +(write.seconds / writePlain.seconds).toFixed(1),
  peaks: write.peaks.map((peak) => ({ rssMib: Math.round(peak.rssMib), anonMib: Math.round(peak.anonMib), shmemMib: Math.round(peak.shmemMib) })),
  goalMib: writeGoalMib, withinGoal: write.peaks.every((peak) => peak.rssMib < writeGoalMib), plainPeakMib: Math.round(writePlain.peakMib), program: write.programFigures,
};
console.log(`write ${JSON.stringify(writeResult)}`);
if (!writeOk) console.log(write.stderrTail);

const postsPlain = runPlain('posts.mjs', [String(postCount), String(mib), String(burst)]);
const posts = await runDsm('posts.mjs', [String(postCount), String(mib), String(burst)], queueBytes, '512m');
const postsOk = posts.ok && posts.stdout === `echoes=${postCount} wrong=0\n`;
const postsResult = {
  ok: postsOk, seconds: +posts.seconds.toFixed(2), plainSeconds: +postsPlain.seconds.toFixed(2), ratioToPlain: +(posts.seconds / postsPlain.seconds).toFixed(1),
  mibPerSecondEachWay: +(postCount / posts.seconds).toFixed(0),
  peaks: posts.peaks.map((peak) => ({ rssMib: Math.round(peak.rssMib), anonMib: Math.round(peak.anonMib), shmemMib: Math.round(peak.shmemMib) })),
  goalMib: 256, withinGoal: posts.peaks.every((peak) => peak.rssMib < 256), plainPeakMib: Math.round(postsPlain.peakMib), program: posts.programFigures,
};
console.log(`posts ${JSON.stringify(postsResult)}`);
if (!postsOk) console.log(posts.stderrTail);
if (jsonPath !== '') writeFileSync(jsonPath, `${JSON.stringify({ config, write: writeResult, posts: postsResult }, null, 2)}\n`);
process.exitCode = writeOk && postsOk ? 0 : 1;
