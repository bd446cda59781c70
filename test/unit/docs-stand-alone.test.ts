// The project's docs and comments stand alone: they point at no file outside the repository, and
// every file of the repository they cite exists.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';

function files(dir: string, pattern: RegExp): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'generated' || name === 'figures' ? [] : files(path, pattern);
    return pattern.test(name) ? [path] : [];
  });
}

const texts = ['README.md', ...files('docs', /\.md$/), ...files('src', /\.ts$/), ...files('native', /\.(cc|h)$/)]
  .map((path) => ({ path, text: readFileSync(path, 'utf8') }));

test('no doc or comment points outside the repository', () => {
  const outside = /(?:^|[\s`'"(])(\/work\/|\/home\/|~\/work|shared\/design|shared\/|seeds\/)/m;
  const found = texts.flatMap(({ path, text }) => text.split('\n').flatMap((line, i) => outside.test(line) ? [`${path}:${i + 1}: ${line.trim()}`] : []));
  assert.deepEqual(found, []);
});

test('every file of the repository a doc or comment cites exists', () => {
  const cited = /\b((?:src|test|docs|native|scripts|bench|examples)\/[\w./-]+\.(?:ts|mts|mjs|js|cjs|md|cc|h|json|yaml|sbatch))\b/g;
  const missing: string[] = [];
  for (const { path, text } of texts) {
    for (const match of text.matchAll(cited)) {
      const file = match[1]!;
      if (!existsSync(file) && !existsSync(file.replace(/\.js$/, '.ts'))) missing.push(`${path}: ${file}`);
    }
  }
  assert.deepEqual([...new Set(missing)], []);
});
