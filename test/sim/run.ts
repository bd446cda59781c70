// Runs many simulation seeds: npm run sim -- --seeds 10000 (options: npm run sim -- --help).
import { runSeed } from './programs.js';

import { parseArgs } from 'node:util';

const usage = `usage: npm run sim -- [options]
Runs seeds of the protocol simulation (test/sim/programs.ts); a failure prints its seed and the command that reruns it.
  --seeds N                 how many seeds (default 1000), from --first (default 1)
  --seed S                  only seed S
  --protocol hlrc|sc        the coherence protocol (default hlrc)
  --concurrent M            threads' operations interleave within a node: seeded (default), always or never
  --early-flush P           the chance of a release flushing early (default 0)
  --lines M                 Atomics by synchronization lines: never (default), seeded or always
  --tokens M                lock tokens kept by their node: seeded (default), always or never
  --keep M                  the lock keep window: seeded (default), always or never
  --defer M                 deferred diffs: seeded (default), always or never
  --atomic-barrier M        barriers made from Atomics: never (default), seeded or always
  --stale-refresh M         looks for stale copies at random steps: seeded (default: a quarter of the seeds), always or never
  -h, --help                this text`;

const modeOptions = ['concurrent', 'lines', 'tokens', 'keep', 'defer', 'atomic-barrier', 'stale-refresh'] as const;
type Mode = 'seeded' | 'always' | 'never';
let parsed: ReturnType<typeof parseOptions>;
function parseOptions() {
  return parseArgs({
    args: process.argv.slice(2),
    strict: true,
    allowPositionals: false,
    options: {
      seeds: { type: 'string' }, seed: { type: 'string' }, first: { type: 'string' }, protocol: { type: 'string' },
      'early-flush': { type: 'string' }, help: { type: 'boolean', short: 'h' },
      ...Object.fromEntries(modeOptions.map((name) => [name, { type: 'string' as const }])),
    },
  }).values as Record<string, string | boolean | undefined>;
}
try {
  parsed = parseOptions();
} catch (error) {
  console.error(`sim: ${(error as Error).message}\n${usage}`);
  process.exit(2);
}
if (parsed.help === true) {
  console.log(usage);
  process.exit(0);
}
function argValue(name: string): string | undefined {
  const value = parsed[name];
  return typeof value === 'string' ? value : undefined;
}
function countArg(name: string, fallback: string): number {
  const value = Number(argValue(name) ?? fallback);
  if (!Number.isSafeInteger(value) || value < 0) {
    console.error(`sim: --${name} takes a whole number, not ${JSON.stringify(argValue(name))}\n${usage}`);
    process.exit(2);
  }
  return value;
}
function modeArg(name: (typeof modeOptions)[number], fallback: Mode): Mode {
  const value = argValue(name) ?? fallback;
  if (value !== 'seeded' && value !== 'always' && value !== 'never') {
    console.error(`sim: --${name} is seeded, always or never, not ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return value;
}
const seedCount = countArg('seeds', '1000');
const protocol = argValue('protocol') ?? 'hlrc';
if (protocol !== 'hlrc' && protocol !== 'sc') {
  console.error(`sim: --protocol is hlrc or sc, not ${JSON.stringify(protocol)}`);
  process.exit(2);
}
const only = argValue('seed') === undefined ? undefined : countArg('seed', '0');
const concurrent = modeArg('concurrent', 'seeded');
const earlyFlushChance = Number(argValue('early-flush') ?? '0');
if (!(earlyFlushChance >= 0 && earlyFlushChance <= 1)) {
  console.error(`sim: --early-flush is a chance between 0 and 1, not ${JSON.stringify(argValue('early-flush'))}`);
  process.exit(2);
}
const lines = modeArg('lines', 'never');
if (lines !== 'never' && protocol !== 'hlrc') console.log(`--lines ${lines}: ${protocol} never uses atomic lines (as in a real run: its atomics run at the page's manager); the seeds run without them`);
const tokens = modeArg('tokens', 'seeded');
const keep = modeArg('keep', 'seeded');
const defer = modeArg('defer', 'seeded');
const atomicBarrier = modeArg('atomic-barrier', 'never');
const staleRefresh = modeArg('stale-refresh', 'seeded');
const first = countArg('first', '1');
const seeds = only !== undefined ? [only] : Array.from({ length: seedCount }, (_, k) => first + k);
let messages = 0;
let pagesLent = 0;
let aheadFetches = 0;
let writtenAhead = 0;
let fastTouches = 0;
let shippedOps = 0;
let lineShares = 0;
let lineEvictions = 0;
let lineSharesAhead = 0;
let quietNotifies = 0;
let threadNotifies = 0;
let keepTakes = 0;
let lockPushes = 0;
let lockPushesTaken = 0;
let staleDropped = 0;
const started = performance.now();
// Progress on stderr every 10 s of a long run (stdout keeps only the result line).
const progressEveryMs = 10_000;
let progressAt = started + progressEveryMs;
for (const [done, seed] of seeds.entries()) {
  if (performance.now() >= progressAt) {
    progressAt += progressEveryMs;
    process.stderr.write(`sim: ${done} of ${seeds.length} seeds passed, ${((performance.now() - started) / 1000).toFixed(0)} s\n`);
  }
  try {
    const outcome = runSeed(seed, protocol, concurrent, earlyFlushChance, lines, tokens, keep, defer, atomicBarrier, staleRefresh);
    messages += outcome.messageCount;
    pagesLent += outcome.pagesLent;
    aheadFetches += outcome.aheadFetches;
    writtenAhead += outcome.writtenAhead;
    fastTouches += outcome.fastTouches;
    shippedOps += outcome.shippedOps;
    lineShares += outcome.lineShares;
    lineEvictions += outcome.lineEvictions;
    lineSharesAhead += outcome.lineSharesAhead;
    quietNotifies += outcome.quietNotifies;
    threadNotifies += outcome.threadNotifies;
    keepTakes += outcome.keepTakes;
    lockPushes += outcome.lockPushes;
    lockPushesTaken += outcome.lockPushesTaken;
    staleDropped += outcome.staleDropped;
  } catch (error) {
    console.error(`seed ${seed} failed (protocol ${protocol}): ${(error as Error).stack}`);
    console.error(`rerun: npm run sim -- --seed ${seed} --protocol ${protocol} --concurrent ${concurrent} --early-flush ${earlyFlushChance} --lines ${lines} --tokens ${tokens} --keep ${keep} --defer ${defer} --atomic-barrier ${atomicBarrier} --stale-refresh ${staleRefresh}`);
    process.exit(1);
  }
}
console.log(`${seeds.length} seeds passed (protocol ${protocol}), ${messages} messages, ${pagesLent} pages lent, ${aheadFetches} read-ahead windows streamed, ${writtenAhead} pages twinned ahead of write streams, ${fastTouches} read-ahead touches served without a fault, ${shippedOps} Atomics ops shipped to a line's directory, ${lineShares} read copies of lines (${lineSharesAhead} more ahead), ${lineEvictions} lines given back to make room, ${quietNotifies} notifies answered with no message (${threadNotifies} more in the thread), ${keepTakes} takes of kept lock tokens, ${lockPushes} lock tokens pushed (${lockPushesTaken} taken), ${staleDropped} stale copies dropped, ${((performance.now() - started) / 1000).toFixed(1)} s`);
