// Volume under flow control (issue 9 item 1), full size, on 2 nodes over loopback:
//   write: a worker on node 1 writes <write-mib> MiB homed on node 0 between two syncs;
//   posts: <post-count> postMessages of 1 MiB to a worker on node 1 and back (bursts of <burst>).
// Each run is timed; each node's memory is sampled from /proc every 100 ms
// (test/fixtures/volume/measure.ts: peak Pss, which counts the doubly mapped
// region once, with its anonymous and shared-memory parts, and peak VmRSS,
// which counts it twice) and compared with the goal: below the touched region
// + 256 MiB. The same program under plain node is the baseline (one process,
// no network).
//
// Usage: node --import tsx bench/volume.ts [--write-mib 1024] [--post-count 10000] [--burst 16] [--queue-bytes 32m] [--json out.json]
// (--write-mib 0 or --post-count 0 skips that case)

import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runVolume, type NodeMemory } from '../test/fixtures/volume/measure.js';

const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
const mib = 1024 * 1024;

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? process.argv[index + 1]! : fallback;
}

function runPlain(fixture: string, args: string[]): { seconds: number; stdout: string; peakMib: number } {
  const startMs = performance.now();
  const result = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, join(root, 'test', 'fixtures', 'volume', fixture), ...args], { encoding: 'utf8', timeout: 30 * 60_000 });
  const seconds = (performance.now() - startMs) / 1000;
  const peakMib = Number(result.stderr.trim().split('\n').at(-1)) / 1024;
  return { seconds, stdout: result.stdout, peakMib };
}

function lastJson(text: string): unknown {
  try { return JSON.parse(text.trim().split('\n').at(-1)!); } catch { return null; }
}

const writeMib = Number(argument('write-mib', '1024'));
const postCount = Number(argument('post-count', '10000'));
const burst = Number(argument('burst', '16'));
const queueBytes = argument('queue-bytes', '32m');
const jsonPath = argument('json', '');
const regionBytes = `${Math.max(512, 2 * writeMib)}m`;
const config = { nodes: 2, writeMib, postCount, postBytes: mib, burst, queueBytes, regionBytes, goal: 'peak Pss per node < touched region + 256 MiB', loadAverage1m: +loadavg()[0]!.toFixed(1) };
console.log(`config ${JSON.stringify(config)}`);

async function benchWrite(): Promise<{ ok: boolean; result: unknown }> {
  const writeBytes = writeMib * mib;
  const writePlain = runPlain('write.mjs', [String(writeBytes)]);
  const write = await runVolume('write.mjs', [String(writeBytes)], { queueBytes, regionBytes, timeoutMs: 30 * 60_000 });
  const writeOk = write.code === 0 && write.stdout === `words=${writeBytes / 4} wrong=0\n`;
  const writeGoalMib = writeMib + 256;
  const writeResult = {
    ok: writeOk, seconds: +write.seconds.toFixed(2), plainSeconds: +writePlain.seconds.toFixed(2), ratioToPlain: +(write.seconds / writePlain.seconds).toFixed(1),
    nodes: write.nodes, goalMib: writeGoalMib, pssWithinGoal: write.nodes.every((node: NodeMemory) => node.pssMib < writeGoalMib),
    plainPeakRssMib: Math.round(writePlain.peakMib), program: lastJson(write.stderr),
  };
  console.log(`write ${JSON.stringify(writeResult)}`);
  if (!writeOk) console.log(write.stderr.slice(-2000));
  return { ok: writeOk, result: writeResult };
}

async function benchPosts(): Promise<{ ok: boolean; result: unknown }> {
  const postsPlain = runPlain('posts.mjs', [String(postCount), String(mib), String(burst)]);
  const posts = await runVolume('posts.mjs', [String(postCount), String(mib), String(burst)], { queueBytes, regionBytes: '512m', timeoutMs: 30 * 60_000 });
  const postsOk = posts.code === 0 && posts.stdout === `echoes=${postCount} wrong=0\n`;
  const postsResult = {
    ok: postsOk, seconds: +posts.seconds.toFixed(2), plainSeconds: +postsPlain.seconds.toFixed(2), ratioToPlain: +(posts.seconds / postsPlain.seconds).toFixed(1),
    mibPerSecondEachWay: +(postCount / posts.seconds).toFixed(0),
    // The program holds up to a burst of messages itself (under plain node too).
    nodes: posts.nodes, goalMib: 256 + burst, pssWithinGoal: posts.nodes.every((node: NodeMemory) => node.pssMib < 256 + burst),
    plainPeakRssMib: Math.round(postsPlain.peakMib), program: lastJson(posts.stderr),
  };
  console.log(`posts ${JSON.stringify(postsResult)}`);
  if (!postsOk) console.log(posts.stderr.slice(-2000));
  return { ok: postsOk, result: postsResult };
}
const write = writeMib > 0 ? await benchWrite() : { ok: true, result: 'skipped' };
const posts = postCount > 0 ? await benchPosts() : { ok: true, result: 'skipped' };
if (jsonPath !== '') writeFileSync(jsonPath, `${JSON.stringify({ config, write: write.result, posts: posts.result }, null, 2)}\n`);
process.exitCode = write.ok && posts.ok ? 0 : 1;
