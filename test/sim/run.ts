// Runs many simulation seeds: npm run sim -- --seeds 10000 [--seed S] [--protocol hlrc] [--concurrent seeded|always|never] [--early-flush P] [--lines seeded|always|never] [--tokens seeded|always|never] [--keep seeded|always|never] [--defer seeded|always|never] [--atomic-barrier seeded|always|never]
import { runSeed } from './programs.js';

function argValue(name: string): string | undefined {
  const k = process.argv.indexOf(name);
  return k >= 0 ? process.argv[k + 1] : undefined;
}
const seedCount = Number(argValue('--seeds') ?? '1000');
const protocol = argValue('--protocol') ?? 'hlrc';
const only = argValue('--seed');
const concurrent = argValue('--concurrent') ?? 'seeded';
if (!['seeded', 'always', 'never'].includes(concurrent)) throw new Error('--concurrent is seeded, always or never');
const earlyFlushChance = Number(argValue('--early-flush') ?? '0');
const lines = argValue('--lines') ?? 'never';
if (!['seeded', 'always', 'never'].includes(lines)) throw new Error('--lines is seeded, always or never');
if (lines !== 'never' && protocol !== 'hlrc') console.log(`--lines ${lines}: ${protocol} never uses atomic lines (as in a real run: its atomics run at the page's manager); the seeds run without them`);
const tokens = argValue('--tokens') ?? 'seeded';
if (!['seeded', 'always', 'never'].includes(tokens)) throw new Error('--tokens is seeded, always or never');
const keep = argValue('--keep') ?? 'seeded';
if (!['seeded', 'always', 'never'].includes(keep)) throw new Error('--keep is seeded, always or never');
const defer = argValue('--defer') ?? 'seeded';
if (!['seeded', 'always', 'never'].includes(defer)) throw new Error('--defer is seeded, always or never');
const atomicBarrier = argValue('--atomic-barrier') ?? 'never';
if (!['seeded', 'always', 'never'].includes(atomicBarrier)) throw new Error('--atomic-barrier is seeded, always or never');
const first = Number(argValue('--first') ?? '1');
const seeds = only !== undefined ? [Number(only)] : Array.from({ length: seedCount }, (_, k) => first + k);
let messages = 0;
let pagesLent = 0;
let aheadFetches = 0;
let writtenAhead = 0;
let shippedOps = 0;
let quietNotifies = 0;
let keepTakes = 0;
const started = performance.now();
for (const seed of seeds) {
  try {
    const outcome = runSeed(seed, protocol, concurrent as 'seeded' | 'always' | 'never', earlyFlushChance, lines as 'seeded' | 'always' | 'never', tokens as 'seeded' | 'always' | 'never', keep as 'seeded' | 'always' | 'never', defer as 'seeded' | 'always' | 'never', atomicBarrier as 'seeded' | 'always' | 'never');
    messages += outcome.messageCount;
    pagesLent += outcome.pagesLent;
    aheadFetches += outcome.aheadFetches;
    writtenAhead += outcome.writtenAhead;
    shippedOps += outcome.shippedOps;
    quietNotifies += outcome.quietNotifies;
    keepTakes += outcome.keepTakes;
  } catch (error) {
    console.error(`seed ${seed} failed (protocol ${protocol}): ${(error as Error).stack}`);
    console.error(`rerun: npm run sim -- --seed ${seed} --protocol ${protocol} --concurrent ${concurrent} --early-flush ${earlyFlushChance} --lines ${lines} --tokens ${tokens} --keep ${keep} --defer ${defer} --atomic-barrier ${atomicBarrier}`);
    process.exit(1);
  }
}
console.log(`${seeds.length} seeds passed (protocol ${protocol}), ${messages} messages, ${pagesLent} pages lent, ${aheadFetches} read-ahead windows streamed, ${writtenAhead} pages twinned ahead of write streams, ${shippedOps} Atomics ops shipped to a line's directory, ${quietNotifies} notifies answered with no message, ${keepTakes} takes of kept lock tokens, ${((performance.now() - started) / 1000).toFixed(1)} s`);
