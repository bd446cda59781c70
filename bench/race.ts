// `dsm bench race`: what --race costs. Each program (bench/programs/race-work.mjs,
// with a synchronization per round) runs under plain node and under
// `dsm run --race` in the same bench run; the figures are the program's own
// workers' loop time, the program's time (first worker created to last
// worker exited) and the whole wall time (dsm's includes starting a node per
// thread), and their ratios against plain node.

import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

interface RaceBenchCase { name: string; threads: number; rounds: number; pages: number; work: number }

/** Short and long rounds (one synchronization each); syncPerMsPerThread in the result says how often each really synchronized. */
const cases: RaceBenchCase[] = [
  { name: 'short-rounds', threads: 2, rounds: 300, pages: 1, work: 20 },
  { name: 'long-rounds', threads: 2, rounds: 40, pages: 4, work: 25 },
];

function run(command: string[], what: string): { ms: number; loopMs: number; wallMs: number } {
  const start = performance.now();
  const result = spawnSync(process.execPath, command, { encoding: 'utf8', timeout: 600_000 });
  const wallMs = performance.now() - start;
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status}): ${result.stderr}`);
  const { ms, loopMs } = JSON.parse(result.stdout.trim().split('\n').pop()!) as { ms: number; loopMs: number };
  return { ms, loopMs, wallMs };
}

export async function runRaceBench(options: { iterations: number }): Promise<Record<string, unknown>> {
  const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
  const program = join(root, 'bench', 'programs', 'race-work.mjs');
  const scale = Math.max(0.1, options.iterations / 2000);
  const result: Record<string, unknown> = { config: `threads, rounds (one Atomics.add each), pages written and work per element per round; rounds scaled by --iterations/2000 = ${scale}` };
  for (const spec of cases) {
    const rounds = Math.max(10, Math.round(spec.rounds * scale));
    const args = [String(spec.threads), String(rounds), String(spec.pages), String(spec.work)];
    const plain = run([program, ...args], `plain node ${spec.name}`);
    const race = run([join(root, 'bin', 'dsm.js'), 'run', '--race', '--nodes', String(spec.threads + 1), '--region-bytes', '256m', program, ...args], `dsm --race ${spec.name}`);
    // The same cluster shape without --race: what dsm itself costs (a synchronization is a round trip to another node).
    const dsm = run([join(root, 'bin', 'dsm.js'), 'run', '--nodes', String(spec.threads + 2), '--region-bytes', '256m', program, ...args], `dsm ${spec.name}`);
    result[`${spec.name}.case`] = `${spec.threads} threads, ${rounds} rounds, ${spec.pages} page(s), work ${spec.work}`;
    result[`${spec.name}.plainLoopMs`] = plain.loopMs;
    result[`${spec.name}.raceLoopMs`] = race.loopMs;
    result[`${spec.name}.dsmLoopMs`] = dsm.loopMs;
    /** What --race adds to a dsm run of the same node count. */
    result[`${spec.name}.raceOverDsm`] = race.loopMs / dsm.loopMs;
    result[`${spec.name}.syncPerMsPerThread`] = rounds / plain.loopMs;
    /** The workers' own loops: what --race costs a running program. */
    result[`${spec.name}.slowdown`] = race.loopMs / plain.loopMs;
    /** With thread start-up (a node per thread under --race). */
    result[`${spec.name}.programSlowdown`] = race.ms / plain.ms;
    result[`${spec.name}.wallSlowdown`] = race.wallMs / plain.wallMs;
  }
  return result;
}
