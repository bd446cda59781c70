// Loading dsm's native addons (build/Release/*.node), with an error that says
// why one does not load and what to do: not built, or built for another Node
// (its NODE_MODULE_VERSION differs: npm built it against another Node's
// headers, as when npm's nodedir names the system Node's and the program runs
// on another).

import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DsmError } from '../errors.js';
import { packageRoot } from '../package-info.js';

/** Loads build/Release/<file>; `what` names the addon in the error. */
export function loadAddon<T>(file: string, what: string): T {
  const require = createRequire(import.meta.url);
  const path = join(packageRoot, 'build', 'Release', file);
  try {
    return require(path) as T;
  } catch (error) {
    const reason = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ').trim();
    const otherNode = /NODE_MODULE_VERSION/.test(reason);
    const advice = otherNode
      ? `it was built for another Node than this one (${process.version}): rebuild it with this node first on the PATH: 'npm run build:native' ` +
        `(if npm builds against another Node's headers, point npm_config_nodedir at this Node's, the directory holding include/node)`
      : `run 'npm run build:native' (needs g++, make, python3)`;
    throw new DsmError('DSM_ERR_ADDON', `${what} does not load (${path}): ${reason}; ${advice}`, { cause: error });
  }
}
