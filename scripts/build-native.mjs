// Builds the native addons with node-gyp, after writing native/generated/dsm_constants.h from
// src/constants.ts and src/errors.ts (scripts/native-constants.mjs). On failure, names the missing
// tool and the command to retry; on success it says one line, not node-gyp's wall of output.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeHeader } from './native-constants.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
if (process.platform !== 'linux' || !['x64', 'arm64'].includes(process.arch)) {
  console.error(`dsm: DSM_ERR_PLATFORM: dsm needs Linux on x64 or arm64; this is ${process.platform}/${process.arch}`);
  process.exit(2);
}
for (const tool of ['g++', 'make', 'python3']) {
  const probe = spawnSync(tool, ['--version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    console.error(`dsm: DSM_ERR_ADDON: '${tool}' is not installed; install it (e.g. apt-get install ${tool === 'g++' ? 'g++' : tool}) and retry with: npm run build:native`);
    process.exit(2);
  }
}
try {
  writeHeader();
} catch (error) {
  console.error(`dsm: DSM_ERR_ADDON: generating native/generated/dsm_constants.h failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
let gyp;
try {
  const require = createRequire(import.meta.url);
  // The npm running this script (npm_execpath) may not sit next to this node: a Node installed
  // from the npm registry (`npm install node@24`) has no npm of its own.
  const npmRoots = [dirname(process.execPath) + '/../lib/node_modules/npm'];
  if (process.env.npm_execpath) npmRoots.push(join(dirname(process.env.npm_execpath), '..'));
  gyp = require.resolve('node-gyp/bin/node-gyp.js', { paths: [root, ...npmRoots] });
} catch {
  gyp = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
}
// Quiet on success (node-gyp says some 30 lines); all of it on failure, or always with DSM_BUILD_VERBOSE=1.
const verbose = process.env.DSM_BUILD_VERBOSE === '1';
const result = spawnSync(process.execPath, [gyp, 'rebuild'], {
  cwd: root, stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'], encoding: 'utf8', maxBuffer: 64 * 1024 * 1024,
});
if (result.status !== 0) {
  if (!verbose) process.stderr.write(`${result.stdout ?? ''}${result.stderr ?? ''}`);
  console.error('dsm: DSM_ERR_ADDON: building the native addon failed (see the compiler output above); fix it and retry with: npm run build:native');
  process.exit(2);
}
// Built against the headers npm named (its nodedir): they must be this Node's, or the addon will not load.
const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(join(root, 'build', 'Release', 'dsm_mmu.node'))})`], { encoding: 'utf8' });
if (probe.status !== 0) {
  const reason = (probe.stderr ?? '').split('\n').find((line) => /NODE_MODULE_VERSION|Error/.test(line)) ?? `exit ${probe.status}`;
  console.error(`dsm: DSM_ERR_ADDON: the addon was built but does not load in this node (${process.version}): ${reason.trim()}`);
  console.error('dsm: npm built it against another Node\'s headers: point npm_config_nodedir at this Node\'s (the directory holding include/node) and retry with: npm run build:native');
  process.exit(2);
}
console.log('dsm: native addon built (build/Release/dsm_mmu.node)');
