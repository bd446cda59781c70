// Slurm's compressed host lists and task counts, expanded the way Slurm does
// (`scontrol show hostnames`), so node 0's host is known without running scontrol
// (which is not on every compute node's PATH, and would be one more process per rank).
//
//   node[01-04,07]          node01 node02 node03 node04 node07  (zero padding kept)
//   a,b[1-2],c              a b1 b2 c                           (commas outside brackets split)
//   rack[1-2]-n[1-2]        rack1-n1 rack1-n2 rack2-n1 rack2-n2  (several brackets: rightmost varies fastest)
//   2(x3),1                 tasks per node: 2 2 2 1

import { hostlistHostCountMax } from '../../constants.js';
import { assert } from '../../errors.js';

/** Why a host list does not parse; the caller names the variable it came from. */
export class HostlistError extends Error {}

/** Splits on commas that are not inside brackets. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let index = 0; index < text.length; index += 1) {
    const char = text[index];
    if (char === '[') {
      if (depth > 0) throw new HostlistError(`nested '[' at position ${index}`);
      depth = 1;
    } else if (char === ']') {
      if (depth === 0) throw new HostlistError(`']' without '[' at position ${index}`);
      depth = 0;
    } else if (char === ',' && depth === 0) {
      parts.push(text.slice(start, index));
      start = index + 1;
    }
  }
  if (depth !== 0) throw new HostlistError('a \'[\' is not closed');
  parts.push(text.slice(start));
  return parts;
}

/** The values of one bracket's body, e.g. "01-04,07" -> 01 02 03 04 07. */
function expandRanges(body: string, room: number): string[] {
  const values: string[] = [];
  for (const range of body.split(',')) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(range.trim());
    if (match === null) throw new HostlistError(`'[${body}]': '${range}' is not a number or a range like 01-04`);
    const lowText = match[1]!;
    const highText = match[2] ?? lowText;
    const low = Number(lowText);
    const high = Number(highText);
    if (high < low) throw new HostlistError(`'[${body}]': range ${range} runs backwards`);
    if (values.length + (high - low + 1) > room) {
      throw new HostlistError(`expands to more than ${hostlistHostCountMax} hosts`);
    }
    // Slurm pads to the width of the lower bound when it has leading zeros (01-10 -> 01..10).
    const width = lowText.length;
    for (let value = low; value <= high; value += 1) values.push(String(value).padStart(width, '0'));
  }
  return values;
}

/** One host expression (no top-level commas): literal text and bracket groups, their cartesian product. */
function expandOne(expression: string): string[] {
  let hosts = [''];
  const pieces = expression.split(/(\[[^\]]*\])/).filter((piece) => piece !== '');
  for (const piece of pieces) {
    if (piece.startsWith('[')) {
      const values = expandRanges(piece.slice(1, -1), Math.floor(hostlistHostCountMax / hosts.length));
      hosts = hosts.flatMap((prefix) => values.map((value) => prefix + value));
    } else {
      if (/[\s\]]/.test(piece)) throw new HostlistError(`'${piece}' contains a space or a stray ']'`);
      hosts = hosts.map((prefix) => prefix + piece);
    }
  }
  return hosts;
}

/** Expands a Slurm host list (SLURM_STEP_NODELIST, SLURM_JOB_NODELIST) into host names, in Slurm's order. */
export function expandHostlist(text: string): string[] {
  if (text.trim() === '') throw new HostlistError('it is empty');
  const hosts: string[] = [];
  for (const part of splitTopLevel(text.trim())) {
    if (part === '') throw new HostlistError('an empty entry between commas');
    const expanded = expandOne(part);
    if (hosts.length + expanded.length > hostlistHostCountMax) throw new HostlistError(`expands to more than ${hostlistHostCountMax} hosts`);
    hosts.push(...expanded);
  }
  assert(hosts.length > 0 && hosts.every((host) => host !== ''), 'a parsed host list names at least one host, none empty');
  return hosts;
}

/** Expands Slurm's tasks-per-node form (SLURM_STEP_TASKS_PER_NODE), e.g. "2(x3),1" -> [2, 2, 2, 1]. */
export function expandTaskCounts(text: string): number[] {
  const counts: number[] = [];
  for (const part of text.trim().split(',')) {
    const match = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    if (match === null) throw new HostlistError(`'${part}' is not a count like 2 or 2(x3)`);
    const repeat = Number(match[2] ?? '1');
    if (repeat < 1 || counts.length + repeat > hostlistHostCountMax) throw new HostlistError(`'${part}': repeat count out of range`);
    for (let index = 0; index < repeat; index += 1) counts.push(Number(match[1]));
  }
  return counts;
}
