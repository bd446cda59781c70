// A clean `npm install` on a fresh clone: no warning about dependencies' install
// scripts (the project's choice is declared in package.json#allowScripts), and
// a lockfile npm 11 does not rewrite (it lists every optional platform package).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

interface LockEntry { optionalDependencies?: Record<string, string>; dependencies?: Record<string, string> }

test('package-lock.json lists every optional dependency of every locked package', () => {
  const lock = JSON.parse(readFileSync('package-lock.json', 'utf8')) as { packages: Record<string, LockEntry> };
  const missing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    for (const name of Object.keys(entry.optionalDependencies ?? {})) {
      // Node's resolution: nested under the package, or hoisted to the top.
      const nested = `${path === '' ? '' : `${path}/`}node_modules/${name}`;
      if (lock.packages[nested] === undefined && lock.packages[`node_modules/${name}`] === undefined) missing.push(`${path || '(root)'} -> ${name}`);
    }
  }
  assert.deepEqual(missing, []);
});

test('every dependency with install scripts is covered by package.json#allowScripts', (t) => {
  const result = spawnSync('npm', ['install-scripts', 'ls'], { encoding: 'utf8', timeout: 60_000 });
  if (result.error !== undefined || /Unknown command/i.test(result.stderr + result.stdout)) {
    t.skip('this npm has no install-scripts command (npm < 11.x)');
    return;
  }
  assert.equal(result.status, 0, result.stderr);
  assert.match(result.stdout, /No packages with unreviewed install scripts/);
});
