// The native addons take their limits, protections, page state bits, error codes and exit codes
// from src/constants.ts and src/errors.ts through native/generated/dsm_constants.h
// (scripts/native-constants.mjs writes it). These tests fail when the two sides drift.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import * as constants from '../../src/constants.js';
import * as errors from '../../src/errors.js';
// @ts-expect-error: a build script in plain JavaScript, without declarations
import * as generator from '../../scripts/native-constants.mjs';

interface NativeConstant { name: string; type: string; cpp?: string }
const gen = generator as {
  root: string;
  headerPath: string;
  nativeConstants: NativeConstant[];
  cppName(entry: NativeConstant): string;
  readConstants(source: string): Map<string, number>;
  renderFromSources(): string;
};
const nativeSources = readdirSync(join(gen.root, 'native')).filter((name) => /\.(cc|cpp|h)$/.test(name)).sort()
  .map((name) => ({ path: `native/${name}`, text: readFileSync(join(gen.root, 'native', name), 'utf8') }));

test('the committed native/generated/dsm_constants.h is what src/constants.ts and src/errors.ts generate', () => {
  const committed = readFileSync(gen.headerPath, 'utf8');
  assert.equal(committed, gen.renderFromSources(),
    'native/generated/dsm_constants.h is stale: run `npm run build:native` (or node scripts/native-constants.mjs) and commit it');
});

test('the generator reads every native constant with the value the TypeScript module has', () => {
  const read = gen.readConstants(readFileSync(join(gen.root, 'src', 'constants.ts'), 'utf8'));
  const module = constants as unknown as Record<string, unknown>;
  for (const entry of gen.nativeConstants) {
    assert.equal(read.get(entry.name), module[entry.name], `${entry.name}: generated ${read.get(entry.name)}, module ${String(module[entry.name])}`);
  }
  const header = readFileSync(gen.headerPath, 'utf8');
  for (const code of Object.keys(errors.errorCodes)) assert.match(header, new RegExp(`#define ${code} "${code}"\\n`));
  assert.match(header, new RegExp(`kExitCodeNodeDied = ${errors.exitCodeNodeDied};`));
});

test('the addons define none of the generated constants themselves, and spell no code or exit code as a literal', () => {
  for (const { path, text } of nativeSources) {
    const generated = [...gen.nativeConstants.map((entry) => gen.cppName(entry)), 'kExitCode\\w+'];
    const uses = new RegExp(`DSM_ERR_|\\b(${generated.join('|')})\\b`).test(text);
    if (uses) assert.match(text, /#include "generated\/dsm_constants\.h"/, `${path} includes the generated header`);
    for (const entry of gen.nativeConstants) {
      const name = gen.cppName(entry);
      assert.doesNotMatch(text, new RegExp(`constexpr[^;=]*\\b${name}\\s*=`), `${path} defines ${name} itself; it comes from src/constants.ts (${entry.name})`);
    }
    const literal = [...text.matchAll(/"(?:[^"\\\n]|\\.)*"/g)].find((m) => /DSM_ERR_/.test(m[0]));
    assert.equal(literal, undefined, `${path} spells an error code in a string literal (${literal?.[0]}): use the header's macro`);
    const code = text.replace(/\/\/[^\n]*/g, '');  // comments cite man pages: _exit(2)
    const exit = /_?exit\(\s*\d+\s*\)|EndProcess\([^,]+,\s*\d+\s*\)/.exec(code);
    assert.equal(exit, null, `${path} exits with a literal code (${exit?.[0]}): use kExitCode* from the header`);
  }
});

test('protections are defined once, in src/constants.ts', async () => {
  const memory = await import('../../src/protocol/memory.js');
  const native = await import('../../src/memory/native.js');
  assert.deepEqual([memory.protNone, memory.protRead, memory.protReadWrite], [constants.protNone, constants.protRead, constants.protReadWrite]);
  assert.deepEqual([native.protNone, native.protRead, native.protReadWrite], [constants.protNone, constants.protRead, constants.protReadWrite]);
  for (const path of ['src/protocol/memory.ts', 'src/memory/native.ts']) {
    assert.doesNotMatch(readFileSync(join(gen.root, path), 'utf8'), /export const prot(None|Read|ReadWrite)\b/, `${path} defines a protection itself`);
  }
});
