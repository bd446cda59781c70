// `dsm bench startup`: what a run costs before and after the program, against
// plain node in the same bench run. bench/programs/start-run.mjs runs under
// `node` and under `dsm run --nodes N` (N = 1, 2, 3), rounds alternating, for
// a one-line program and for one that starts two workers; each figure is the
// median over the rounds: the program's first line, its workers' first lines
// and the process's whole wall time, all since the spawn; the ratios are dsm's
// wall time over plain node's. Start-up is what a short program pays on top of
// its work (docs/EVALUATION.md, "Session 19: start-up").

import { spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

interface Sample { firstLineMs: number; workersMs: number; lastLineMs: number; wallMs: number }

function runOnce(command: string[], what: string): Sample {
  const launchedAt = Date.now();
  const start = performance.now();
  const result = spawnSync(process.execPath, [...command.slice(0, -1), String(launchedAt), command.at(-1)!], { encoding: 'utf8', timeout: 120_000 });
  const wallMs = performance.now() - start;
  if (result.status !== 0) throw new Error(`${what} failed (exit ${result.status}): ${result.stderr}`);
  const line = JSON.parse(result.stdout.trim().split('\n').pop()!) as Omit<Sample, 'wallMs'>;
  return { ...line, wallMs };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

const round = (value: number, digits = 1): number => Number(value.toFixed(digits));

export async function runStartupBench(options: { iterations: number }): Promise<Record<string, unknown>> {
  const root = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url));
  const program = join(root, 'bench', 'programs', 'start-run.mjs');
  const dsm = join(root, 'bin', 'dsm.js');
  // --iterations 2000 (the default of micro-benchmarks) is 7 rounds.
  const rounds = Math.min(31, Math.max(3, Math.round(options.iterations / 300)));
  const nodeCounts = [1, 2, 3];
  const result: Record<string, unknown> = {
    config: `bench/programs/start-run.mjs, ${rounds} rounds alternating plain node and dsm run --nodes ${nodeCounts.join('/')}; medians in ms since the spawn`,
    loadAverageAtStart: round(loadavg()[0]!, 2),
  };
  for (const workers of [0, 2]) {
    const kind = workers === 0 ? 'empty' : 'workers';
    const samples = new Map<string, Sample[]>();
    const add = (key: string, sample: Sample) => samples.set(key, [...(samples.get(key) ?? []), sample]);
    for (let index = 0; index < rounds; index += 1) {
      add('plain', runOnce([program, String(workers)], `plain node ${kind}`));
      for (const nodes of nodeCounts) {
        add(`nodes${nodes}`, runOnce([dsm, 'run', '--nodes', String(nodes), program, String(workers)], `dsm run --nodes ${nodes} ${kind}`));
      }
    }
    const plainWall = median(samples.get('plain')!.map((sample) => sample.wallMs));
    for (const [key, list] of samples) {
      result[`${kind}.${key}.firstLineMs`] = round(median(list.map((sample) => sample.firstLineMs)));
      if (workers > 0) result[`${kind}.${key}.workersMs`] = round(median(list.map((sample) => sample.workersMs)));
      result[`${kind}.${key}.wallMs`] = round(median(list.map((sample) => sample.wallMs)));
      if (key !== 'plain') result[`${kind}.${key}.wallRatio`] = round(median(list.map((sample) => sample.wallMs)) / plainWall, 2);
    }
  }
  result.loadAverageAtEnd = round(loadavg()[0]!, 2);
  return result;
}
