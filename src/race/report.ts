// The --race report: text for people (stderr) and JSON (--race-json).
// Global addresses are resolved here to the SharedArrayBuffer that holds
// them and where it was allocated.

import type { RaceSummary } from './checker.js';
import type { AllocationRecord, RaceEntry, RaceSide, SyncPoint } from './record.js';

export interface ResolvedRace {
  kind: RaceEntry['kind'];
  /** byte: the bytes named were accessed by both; page: the reader read somewhere in the page (maybe other bytes). */
  precision: 'byte' | 'page';
  /** The SharedArrayBuffer (null: the bytes lie in no buffer allocated in race mode). */
  buffer: { byteLength: number; allocatedAt: string | null; allocatedBy: number; address: number } | null;
  /** Byte offset within the buffer (or the global address when the buffer is unknown) and length. */
  offset: number;
  length: number;
  count: number;
  first: RaceSide;
  second: RaceSide;
  threadPairs: Array<[number[], number[]]>;
  otherPlaces: Array<[RaceSide, RaceSide]>;
}

/** The checker's summary with each race resolved to its buffer and allocation site (the allocations themselves are not repeated). */
export type RaceReport = Omit<RaceSummary, 'races' | 'allocations'> & { races: ResolvedRace[] };

function allocationOf(allocations: AllocationRecord[], address: number): AllocationRecord | null {
  let low = 0;
  let high = allocations.length - 1;
  let found: AllocationRecord | null = null;
  while (low <= high) {
    const mid = (low + high) >> 1;
    if (allocations[mid]!.address <= address) { found = allocations[mid]!; low = mid + 1; } else high = mid - 1;
  }
  return found !== null && address < found.address + Math.max(1, found.byteLength) ? found : null;
}

export function resolveRaces(summary: RaceSummary): RaceReport {
  const races = summary.races.map((race): ResolvedRace => {
    const allocation = allocationOf(summary.allocations, race.start);
    let offset = race.start;
    let length = race.end - race.start;
    if (allocation !== null) {
      offset = race.start - allocation.address;
      // A read-write race is a page: say the part of the page the buffer holds.
      if (race.kind === 'read-write-page') {
        offset = Math.max(0, offset);
        length = Math.min(race.end, allocation.address + allocation.byteLength) - (allocation.address + offset);
      }
    }
    return {
      kind: race.kind, precision: race.kind === 'read-write-page' ? 'page' : 'byte',
      buffer: allocation === null ? null : { byteLength: allocation.byteLength, allocatedAt: allocation.site, allocatedBy: allocation.thread, address: allocation.address },
      offset, length, count: race.count, first: race.first, second: race.second, threadPairs: race.threadPairs,
      otherPlaces: race.otherPlaces,
    };
  });
  return {
    raceCount: summary.raceCount, distinctCount: summary.distinctCount, distinctCountExact: summary.distinctCountExact, unlistedCount: summary.unlistedCount,
    intervalCount: summary.intervalCount, droppedRecordCount: summary.droppedRecordCount, pageOverlapCount: summary.pageOverlapCount, sharedNodes: summary.sharedNodes, races,
  };
}

function point(value: SyncPoint | null, fallback: string): string {
  if (value === null) return fallback;
  return value.site === null ? value.op : `${value.op} at ${value.site}`;
}

function threadsOf(side: RaceSide): string {
  if (side.threads.length === 0) return `node ${side.node}`;
  const names = side.threads.map((id) => (id === 0 ? 'main thread' : `thread ${id}`));
  return names.join(' or ');
}

function sideLine(side: RaceSide, verb: string): string {
  return `    ${threadsOf(side)} ${verb} in the interval from ${point(side.begin, 'its start')} to ${point(side.end, 'its end')}`;
}

export function formatRaceReport(report: RaceReport): string {
  const overlapNote = report.pageOverlapCount > 0 && !report.races.some((race) => race.kind === 'read-write-page')
    ? `\n  note: ${report.pageOverlapCount} time(s) a thread read a page another wrote concurrently, but not the byte it was first seen reading: false sharing or a race at page precision (--race-pages lists them)`
    : '';
  const sharedNote = report.sharedNodes.length === 0 ? '' : `\n  warning: ${report.sharedNodes.map(({ node, threads }) => `threads ${threads.join(', ')} shared node ${node}`).join('; ')}: races between threads of one node are not seen (run with --nodes at least the number of threads, the main thread included)`;
  const droppedNote = report.droppedRecordCount > 0 ? `\n  note: ${report.droppedRecordCount} access record(s) left the comparison window at its limit: races with them may have gone unseen` : '';
  if (report.raceCount === 0) return `dsm race: no data races found (${report.intervalCount} intervals checked)${overlapNote}${sharedNote}${droppedNote}\n`;
  const lines: string[] = [];
  lines.push(`dsm race: ${report.distinctCountExact ? '' : 'at least '}${report.distinctCount} data race(s) found, ${report.raceCount} occurrence(s) in ${report.intervalCount} intervals checked`);
  for (const race of report.races) {
    const where = race.buffer === null
      ? `global bytes ${race.offset}..${race.offset + race.length - 1} (in no SharedArrayBuffer allocated in race mode)`
      : `SharedArrayBuffer(${race.buffer.byteLength}) allocated at ${race.buffer.allocatedAt ?? 'an unknown place'}${race.buffer.allocatedBy === 0 ? ' by the main thread' : ` by thread ${race.buffer.allocatedBy}`}`;
    const bytes = race.length === 1 ? `byte ${race.offset}` : `bytes ${race.offset}..${race.offset + race.length - 1}`;
    const title = race.kind === 'write-write'
      ? `write-write race (byte-precise) on ${bytes} of ${where}`
      : race.kind === 'read-write'
        ? `read-write race on ${bytes} of ${where} (a byte the reader certainly read, the first it read in the page; it may have read more)`
        : `possible read-write race (page precision: a read somewhere in ${bytes}, maybe false sharing) on ${where}`;
    lines.push('');
    lines.push(`  ${title}${race.count > 1 ? `, ${race.count} times` : ''}`);
    lines.push(sideLine(race.first, race.kind === 'write-write' ? 'wrote' : race.kind === 'read-write' ? 'read' : 'read the page'));
    lines.push(sideLine(race.second, 'wrote'));
    const others = race.threadPairs.slice(1).map(([a, b]) => `${a.join('/')} and ${b.join('/')}`);
    if (others.length > 0) lines.push(`    also between threads ${others.join(', ')}`);
    for (const [a, b] of race.otherPlaces) {
      lines.push(`    also: ${threadsOf(a)} from ${point(a.begin, 'its start')} to ${point(a.end, 'its end')}, and ${threadsOf(b)} from ${point(b.begin, 'its start')} to ${point(b.end, 'its end')}`);
    }
  }
  if (report.unlistedCount > 0) lines.push('', `  ... and ${report.distinctCountExact ? '' : 'at least '}${report.unlistedCount} more distinct race(s) not listed (report limit reached; every occurrence is counted above)`);
  if (overlapNote !== '') lines.push(overlapNote.slice(1));
  if (sharedNote !== '') lines.push(sharedNote.slice(1));
  if (report.droppedRecordCount > 0) lines.push('', `  note: ${report.droppedRecordCount} access record(s) left the comparison window at its limit: races with them may have gone unseen`);
  lines.push('');
  return `${lines.join('\n')}\n`;
}
