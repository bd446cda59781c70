#!/usr/bin/env node
// Reads the hop stamps of a run made with DSM_HOPS=<dir> (src/util/hops.ts)
// and prints, for each pair of successive hops, how often it occurred and
// its p50/p90 in microseconds. Two tables: successive hops within one node
// process (its manager and app threads: `m:` and `t:` hops), and from a hop
// to the next hop of another process (the transport between two nodes).
// The first fifth of the stamps (warm-up) is left out.
//   DSM_HOPS=/tmp/hops dsm run --nodes 2 bench/programs/sync-barrier.mjs 1000
//   node scripts/hop-stats.mjs /tmp/hops
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (dir === undefined) {
  console.error('usage: node scripts/hop-stats.mjs <DSM_HOPS directory>');
  process.exit(2);
}
const stamps = [];
for (const file of readdirSync(dir)) {
  for (const line of readFileSync(join(dir, file), 'utf8').split('\n')) {
    if (line === '') continue;
    const [ns, who, ...name] = line.split(' ');
    stamps.push({ ns: BigInt(ns), pid: who.split(':')[0], name: name.join(' ') });
  }
}
stamps.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : 0));
const steady = stamps.slice(Math.floor(stamps.length / 5));
const within = new Map();
const across = new Map();
const lastOf = new Map();
let previous = null;
const add = (table, key, us) => {
  let list = table.get(key);
  if (list === undefined) table.set(key, list = []);
  list.push(us);
};
for (const stamp of steady) {
  const last = lastOf.get(stamp.pid);
  if (last !== undefined) add(within, `${last.name} -> ${stamp.name}`, Number(stamp.ns - last.ns) / 1000);
  if (previous !== null && previous.pid !== stamp.pid) add(across, `${previous.name} => ${stamp.name}`, Number(stamp.ns - previous.ns) / 1000);
  lastOf.set(stamp.pid, stamp);
  previous = stamp;
}
const print = (title, table) => {
  console.log(title);
  const rows = [...table].filter(([, list]) => list.length >= 20).sort((a, b) => b[1].length - a[1].length);
  for (const [key, list] of rows) {
    list.sort((a, b) => a - b);
    const at = (fraction) => list[Math.min(list.length - 1, Math.floor(fraction * list.length))].toFixed(1);
    console.log(`${String(list.length).padStart(7)} p50 ${at(0.5).padStart(8)} p90 ${at(0.9).padStart(8)}  ${key}`);
  }
};
print('successive hops within a node process (count, µs):', within);
print('a hop, then the next hop in another process (count, µs):', across);
