// Every stable error code is raised somewhere: a code in src/errors.ts that no
// code path raises is a promise the docs cannot keep (issue 11). The TypeScript
// raises a code as a string literal ('DSM_ERR_…'), the native addons through
// the macro of native/generated/dsm_constants.h.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { errorCodes } from '../../src/errors.js';

function sources(dir: string, pattern: RegExp): string[] {
  const files: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) {
      if (name !== 'generated') files.push(...sources(path, pattern));
    } else if (pattern.test(name)) {
      files.push(path);
    }
  }
  return files;
}

test('every error code in src/errors.ts is raised by src/, bench/ or native/', () => {
  const typescript = [...sources('src', /\.ts$/), ...sources('bench', /\.ts$/)].filter((file) => file !== join('src', 'errors.ts'))
    .map((file) => readFileSync(file, 'utf8')).join('\n');
  const native = sources('native', /\.(cc|h)$/).map((file) => readFileSync(file, 'utf8')).join('\n');
  const neverRaised = Object.keys(errorCodes).filter((code) =>
    !typescript.includes(`'${code}'`) && !typescript.includes(`"${code}"`) && !new RegExp(`\\b${code}\\b`).test(native));
  assert.deepEqual(neverRaised, []);
});

test('docs/LIMITS.md "Error codes" lists every code of src/errors.ts, and no other', () => {
  const doc = readFileSync(join('docs', 'LIMITS.md'), 'utf8');
  const section = doc.slice(doc.indexOf('## Error codes'), doc.indexOf('\n## ', doc.indexOf('## Error codes') + 1));
  const listed = new Set(section.match(/\bDSM_ERR_[A-Z_]+\b/g) ?? []);
  assert.deepEqual(Object.keys(errorCodes).filter((code) => !listed.has(code)), [], 'codes missing from the section');
  assert.deepEqual([...listed].filter((code) => !(code in errorCodes)), [], 'codes the section lists that src/errors.ts no longer has');
});
