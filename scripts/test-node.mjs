// Runs part of the test suite under another Node release (npm run test:node -- 24 [paths...]): the machine's
// Node may be older than the one users run (this repository's CI machine has Node 20; Node 24 is the LTS most
// users have), and what dsm mirrors of Node (uncaught output, postMessage's errors, DOMException) changes between
// releases.
//
// Steps: installs node@<major> from the npm registry into node_modules/.cache/dsm/node-<major>/ (once; its
// headers come with it), copies this checkout's sources (git ls-files: no node_modules, build or dist) to
// node_modules/.cache/dsm/tree-<major>/, installs and builds there with that Node first on the PATH and npm's
// node-gyp pointed at its headers (the native addons are built per Node ABI, so this tree's build/ cannot be
// shared), then runs `node scripts/test.mjs <paths>` there. Default paths: the files where Node's behaviour is
// mirrored (see testNodePathsDefault). A file that fails runs once more (below); exit code: the tests'.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
/** The test files whose subject is Node's behaviour as a program sees it. */
const testNodePathsDefault = ['unit', 'runtime.test', 'fidelity', 'messages', 'users'];

const [majorText, ...paths] = process.argv.slice(2);
if (majorText === undefined || !/^\d+$/.test(majorText) || Number(majorText) < 20) {
  process.stderr.write('usage: node scripts/test-node.mjs <node major, e.g. 24> [test path substrings...]\n');
  process.exit(2);
}
const major = Number(majorText);
const cache = join(root, 'node_modules', '.cache', 'dsm');
const nodeHome = join(cache, `node-${major}`);
const tree = join(cache, `tree-${major}`);

function step(text) {
  process.stdout.write(`# test-node ${major}: ${text}\n`);
}

/** The directory of the installed Node (bin/node, include/node), or null. */
function installedNode() {
  const modules = join(nodeHome, 'node_modules', 'node', 'node_modules');
  if (!existsSync(modules)) return null;
  const platform = readdirSync(modules).find((name) => name.startsWith('node-') && existsSync(join(modules, name, 'bin', 'node')));
  return platform === undefined ? null : join(modules, platform);
}

let nodeDir = installedNode();
if (nodeDir === null) {
  step(`installing node@${major} from the npm registry`);
  mkdirSync(nodeHome, { recursive: true });
  execFileSync('npm', ['install', '--prefix', nodeHome, '--no-audit', '--no-fund', '--no-save', `node@${major}`], { stdio: 'inherit' });
  nodeDir = installedNode();
  if (nodeDir === null) throw new Error(`node@${major} installed, but no bin/node under ${nodeHome}`);
}
const nodeBin = join(nodeDir, 'bin');
const version = execFileSync(join(nodeBin, 'node'), ['--version'], { encoding: 'utf8' }).trim();
if (!version.startsWith(`v${major}.`)) throw new Error(`node@${major} is ${version}`);

step(`copying the sources to ${tree}`);
rmSync(tree, { recursive: true, force: true });
mkdirSync(tree, { recursive: true });
const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter((file) => file !== '');
for (const file of files) {
  if (!existsSync(join(root, file))) continue;
  mkdirSync(dirname(join(tree, file)), { recursive: true });
  cpSync(join(root, file), join(tree, file));
}

const env = { ...process.env, PATH: `${nodeBin}:${process.env.PATH ?? ''}`, npm_config_nodedir: nodeDir };
delete env.npm_config_prefix;
step(`npm install under ${version}`);
const install = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: tree, env, stdio: 'inherit' });
if (install.status !== 0) process.exit(install.status ?? 1);

/** Runs scripts/test.mjs on `testPaths` in the copy, its output passed through as it comes; its exit code and the files it names as failed. */
function runTests(testPaths) {
  return new Promise((resolve) => {
    const child = spawn(join(nodeBin, 'node'), ['scripts/test.mjs', ...testPaths], { cwd: tree, env, stdio: ['ignore', 'pipe', 'inherit'] });
    // The summary ("# failed files: ...") is the output's last lines.
    let tail = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      tail = (tail + chunk).slice(-65536);
    });
    child.on('close', (code) => {
      const failed = /^# failed files: (.*)$/m.exec(tail)?.[1]?.trim().split(/\s+/) ?? [];
      resolve({ status: code ?? 1, failed });
    });
  });
}

const testPaths = paths.length > 0 ? paths : testNodePathsDefault;
step(`npm test -- ${testPaths.join(' ')} under ${version}`);
const first = await runTests(testPaths);
if (first.status === 0 || first.failed.length === 0) process.exit(first.status);
// The files compare dsm with plain node, and plain node itself is sometimes racy in a fixture (a 'message' and an
// 'exit' in one turn): a failed file runs once more, and the leg fails only if it fails again. Both runs are shown.
step(`${first.failed.length} file(s) failed under ${version}; running them once more: ${first.failed.join(' ')}`);
const second = await runTests(first.failed);
step(second.status === 0 ? `passed on the second run: ${first.failed.join(' ')} (a flaky test: see the first run's output above)` : 'failed again');
process.exit(second.status);
