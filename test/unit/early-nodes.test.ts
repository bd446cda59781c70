import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { earlyNodeCount } from '../../src/cluster/early-nodes.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

test('the early start is taken only for a plain local run of several nodes, read as the CLI reads it', () => {
  const cores = availableParallelism();
  assert.equal(earlyNodeCount(['run', '--nodes', '2', 'app.js'], {}), 2);
  assert.equal(earlyNodeCount(['run', '--nodes=2', '--stats', '--protocol', 'sc', 'app.js', '--nodes', '5'], {}), 2, 'options after the program are its own');
  assert.equal(earlyNodeCount(['run', '--nodes', '3', '--nodes', '2', 'app.js'], {}), 2, 'the last --nodes counts, as with commander');
  assert.equal(earlyNodeCount(['run', 'app.js'], {}), 0, 'one node by default');
  assert.equal(earlyNodeCount(['run', '--nodes', '1', 'app.js'], {}), 0);
  assert.equal(earlyNodeCount(['run', '--nodes', String(cores + 2), 'app.js'], {}), 0, 'no more early children than cores');
  for (const other of [['--tag-output'], ['--race'], ['--listen', '0.0.0.0:7000'], ['--help'], ['-h'], ['--secret', 'x'], ['--unknown'], ['--nodes', 'two'], ['--nodes']]) {
    assert.equal(earlyNodeCount(['run', '--nodes', '2', ...other, 'app.js'], {}), 0, `${other.join(' ')}: the CLI decides alone`);
  }
  assert.equal(earlyNodeCount(['node', '--join', '127.0.0.1:1'], {}), 0);
  assert.equal(earlyNodeCount(['bench', 'matmul', '--nodes', '2'], {}), 0);
  assert.equal(earlyNodeCount(['run', '--nodes', '2', 'app.js'], { SLURM_JOB_ID: '7' }), 0, 'a launcher starts the nodes');
  assert.equal(earlyNodeCount(['run', '--nodes', '2', 'app.js'], { OMPI_COMM_WORLD_SIZE: '2' }), 0);
});

test('children started early and never adopted end with the CLI: a usage error leaves no process behind', async () => {
  // --protocol bogus passes the scan (it takes a value) and fails the CLI's check after the children started.
  const mark = `early-${process.pid}-${Date.now()}`;
  const result = spawnSync(process.execPath, [`${root}bin/dsm.js`, 'run', '--nodes', '2', '--protocol', 'bogus', `${root}examples/sum.js`], {
    encoding: 'utf8', timeout: 30_000, env: { ...process.env, DSM_TEST_EARLY_MARK: mark },
  });
  assert.equal(result.status, 2, result.stderr);
  assert.equal(result.stderr.split('\n').filter((line) => line.startsWith('dsm:')).length, 1, `one line: ${result.stderr}`);
  // The children read EOF once the CLI is gone, and exit: within a few seconds on a loaded machine.
  const marked = (): number[] => readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`DSM_TEST_EARLY_MARK=${mark}`); } catch { return false; }
  });
  for (let waited = 0; marked().length > 0 && waited < 10_000; waited += 100) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.deepEqual(marked(), [], 'no early child left running');
});

test('a child started early that reads a malformed settings line ends with one line naming it; EOF first ends it quietly', () => {
  const child = `${root}dist/bundle/node-main.js`;
  const env = { ...process.env, DSM_EARLY_START: '1', DSM_NODE_ID: '1' };
  const bad = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 30_000, env, input: 'garbage\n' });
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /^dsm: DSM_ERR_INVALID_OPTION: the first line on stdin is not the settings \(\{ env, secret \}\)[^\n]*\n$/);
  const discarded = spawnSync(process.execPath, [child], { encoding: 'utf8', timeout: 30_000, env, input: '' });
  assert.equal(discarded.status, 0, discarded.stderr);
  assert.equal(discarded.stderr, '');
});
