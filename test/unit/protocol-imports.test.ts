// src/protocol/ stays a set of parts with no import cycle (type-only imports
// count too), imports no I/O (no node:* module, nothing outside protocol/ but
// errors.ts and constants.ts), and keeps its files small: a file over 600
// lines says why at its top.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

const dir = 'src/protocol';
const files = readdirSync(dir).filter((name) => name.endsWith('.ts')).sort();
const sources = new Map(files.map((name) => [name, readFileSync(join(dir, name), 'utf8')]));

function importsOf(source: string): string[] {
  const out: string[] = [];
  for (const match of source.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'([^']+)'/gms)) out.push(match[1]!);
  return out;
}

test('src/protocol imports nothing but its own files, errors.ts and constants.ts', () => {
  for (const [name, source] of sources) {
    for (const target of importsOf(source)) {
      const allowed = target.startsWith('./') || target === '../errors.js' || target === '../constants.js';
      assert.ok(allowed, `${name} imports ${target}`);
    }
  }
});

test('src/protocol has no import cycle', () => {
  const edges = new Map<string, string[]>();
  for (const [name, source] of sources) {
    edges.set(name, importsOf(source).filter((t) => t.startsWith('./')).map((t) => t.slice(2).replace(/\.js$/, '.ts')));
  }
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): void => {
    if (state.get(name) === 'done') return;
    assert.notEqual(state.get(name), 'visiting', `import cycle: ${[...path, name].join(' -> ')}`);
    state.set(name, 'visiting');
    for (const next of edges.get(name) ?? []) {
      assert.ok(sources.has(next), `${name} imports ${next}, which does not exist`);
      visit(next, [...path, name]);
    }
    state.set(name, 'done');
  };
  for (const name of files) visit(name, []);
});

test('src/protocol files over 600 lines say why at their top', () => {
  for (const [name, source] of sources) {
    const lines = source.split('\n').length;
    if (lines <= 600) continue;
    const header = source.split('\n').slice(0, 30).join('\n');
    assert.match(header, /Over 600 lines/, `${name} has ${lines} lines and no reason at its top`);
  }
});
