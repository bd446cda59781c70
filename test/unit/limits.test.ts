// Every limit declared in src/constants.ts is used (enforced where it belongs, or read by the native
// addons through the generated header) and listed in docs/LIMITS.md with what happens past it.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as constants from '../../src/constants.js';
// @ts-expect-error: a build script in plain JavaScript, without declarations
import { nativeConstants } from '../../scripts/native-constants.mjs';

const declared = Object.keys(constants).sort();

function sources(dir: string): string[] {
  return readdirSync(dir).sort().flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') && path !== join('src', 'constants.ts') ? [path] : [];
  });
}

test('every constant of src/constants.ts is used outside it (in src/, or by the native addons)', () => {
  const text = sources('src').map((path) => readFileSync(path, 'utf8')).join('\n');
  const native = new Set((nativeConstants as { name: string }[]).map((entry) => entry.name));
  const unused = declared.filter((name) => !native.has(name) && !new RegExp(`\\b${name}\\b`).test(text));
  assert.deepEqual(unused, [], `declared but never used (enforce each where it belongs, or remove it): ${unused.join(', ')}`);
});

test('docs/LIMITS.md names every constant of src/constants.ts', () => {
  const doc = readFileSync(join('docs', 'LIMITS.md'), 'utf8');
  const missing = declared.filter((name) => !doc.includes(`\`${name}\``));
  assert.deepEqual(missing, [], `missing from docs/LIMITS.md ("Every named limit"): ${missing.join(', ')}`);
});
