// dsm's processes start without node's source maps (parsing them cost every node process ~17 ms of CPU at
// start, for stack traces printed only when something fails); a stack trace dsm prints names its own
// frames in src/ all the same, through the maps beside the bundle (src/util/source-frames.ts), read then.

import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';
import { mappedStack } from '../../src/util/source-frames.js';

test('frames in a bundle with a map are named by their source; other frames are left as they are', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dsm-frames-'));
  try {
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'thrower.ts'), '// line 1\n\nexport function thrower(): never {\n  throw new Error("where");\n}\n');
    const out = join(dir, 'bundle', 'thrower.js');
    buildSync({ entryPoints: [join(dir, 'src', 'thrower.ts')], outfile: out, bundle: true, format: 'esm', sourcemap: 'linked', sourcesContent: false, banner: { js: '// a\n// b' }, logLevel: 'silent' });
    const lines = readFileSync(out, 'utf8').split('\n');
    const line = lines.findIndex((text) => text.includes('new Error')) + 1;
    const column = lines[line - 1]!.indexOf('new Error') + 1;
    assert.ok(line > 4, 'the bundle moved the line');
    const stack = [
      'Error: where',
      `    at thrower (${pathToFileURL(out).href}:${line}:${column})`,
      `    at ${out}:${line}:${column}`,
      '    at Object.<anonymous> (/elsewhere/program.js:3:1)',
      '    at node:internal/main/run_main_module:28:49',
    ].join('\n');
    const source = join(dir, 'src', 'thrower.ts');
    assert.equal(mappedStack(stack, join(dir, 'bundle')), [
      'Error: where',
      `    at thrower (${source}:4:9)`,
      `    at ${source}:4:9`,
      '    at Object.<anonymous> (/elsewhere/program.js:3:1)',
      '    at node:internal/main/run_main_module:28:49',
    ].join('\n'));
    // Outside the given folder, or without a map, a frame stays as it was.
    assert.equal(mappedStack(stack, join(dir, 'src')), stack);
    const unmapped = join(dir, 'bundle', 'unmapped.js');
    writeFileSync(unmapped, readFileSync(out));
    assert.equal(mappedStack(`    at ${unmapped}:${line}:${column}`, join(dir, 'bundle')), `    at ${unmapped}:${line}:${column}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('dsm does not turn on node\'s source maps at start (bin/dsm.js, a child node\'s first module)', () => {
  assert.doesNotMatch(readFileSync('bin/dsm.js', 'utf8'), /setSourceMapsEnabled\(true\)/);
  assert.doesNotMatch(readFileSync('scripts/bundle.mjs', 'utf8'), /setSourceMapsEnabled\(true\)/);
});
