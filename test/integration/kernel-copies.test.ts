// Programs that hand dsm memory to the kernel or the thread pool (fs, sockets,
// zlib, crypto, stdout) behave as under plain node, and a main thread that
// reuses its output buffer right after write() prints what node prints.
// Output goes to a pipe and to a file; 1 node and 3 nodes, both protocols.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

interface Output { status: number | null; stdout: string; stderr: string }

/** Runs `node args` with stdout (and stderr) to pipes, or to files. */
function run(args: string[], to: 'pipe' | 'file'): Output {
  if (to === 'pipe') {
    const result = spawnSync(process.execPath, args, { encoding: 'latin1', timeout: 120_000 });
    assert.equal(result.error, undefined, String(result.error));
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }
  const dir = mkdtempSync(join(tmpdir(), 'dsm-out-'));
  try {
    const out = openSync(join(dir, 'out'), 'w');
    const err = openSync(join(dir, 'err'), 'w');
    const result = spawnSync(process.execPath, args, { stdio: ['ignore', out, err], timeout: 120_000 });
    closeSync(out);
    closeSync(err);
    assert.equal(result.error, undefined, String(result.error));
    return { status: result.status, stdout: readFileSync(join(dir, 'out'), 'latin1'), stderr: readFileSync(join(dir, 'err'), 'latin1') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const modes = [
  { name: '1 node', args: [] },
  { name: 'hlrc, 3 nodes', args: ['--nodes', '3', '--region-bytes', '256m'] },
  { name: 'sc, 3 nodes', args: ['--nodes', '3', '--protocol', 'sc', '--region-bytes', '256m'] },
];

for (const to of ['pipe', 'file'] as const) {
  const reuse = 'test/fixtures/programs/stdout-reuse.mjs';
  const plainReuse = run([reuse], to);
  for (const mode of modes.slice(0, 2)) {
    test(`${mode.name}, stdout to a ${to}: a main thread reusing its output buffer prints what node prints`, () => {
      const onDsm = run(['bin/dsm.js', 'run', ...mode.args, reuse], to);
      assert.equal(onDsm.status, 0, onDsm.stderr);
      assert.equal(onDsm.stdout, plainReuse.stdout);
      assert.equal(onDsm.stderr, plainReuse.stderr);
    });
  }
  const apis = 'test/fixtures/programs/kernel-apis.mjs';
  const plainApis = run([apis], to);
  for (const mode of modes) {
    test(`${mode.name}, stdout to a ${to}: fs, sockets, zlib, crypto and stdout on dsm memory work as under node`, () => {
      assert.equal(plainApis.status, 0, plainApis.stderr);
      assert.doesNotMatch(plainApis.stdout, /FAIL|threw/);
      const onDsm = run(['bin/dsm.js', 'run', ...mode.args, apis], to);
      assert.equal(onDsm.stderr, '');
      assert.equal(onDsm.status, 0);
      assert.equal(onDsm.stdout, plainApis.stdout);
    });
  }
}
