// The first module of every app thread: sets dsm up, then runs the program's
// module (the main program or a worker's file) as Node would have.

import { createRequire } from 'node:module';
import { realpathSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { workerData } from 'node:worker_threads';
import { awaitAppThreadStart, markEntryReached, markProgramStarted, prewarmLocalCount } from '../channel/thread-config.js';
import { findMainPath, isTypeScript, moduleKindOf, throwMainNotFound } from '../util/module-kind.js';
import { preloadAppThreadAddons, setupAppThread } from './setup.js';
import { prewarmLocalThreads } from './worker.js';
import { hop, hopsOn } from '../util/hops.js';
import { runEvalWorker } from './eval-worker.js';
import { thrownByMainModule } from './uncaught-text.js';
// Last: the thread's boot word says it is about to start this module (see src/threads/boot-mark.ts).
import './boot-mark.js';

// First: from here on this thread may be terminated (see markEntryReached, src/threads/boot-mark.ts).
markEntryReached(workerData);
if (hopsOn) hop('t:entry evaluated');
// A remote worker: its node acquires the parent's writes while this thread boots; a
// warm thread: it waits until it is taken for a worker. Both wait at their start gate,
// with dsm's addons loaded.
preloadAppThreadAddons();
// dsm's own workerData: the setup below makes the builtin's export the program's.
const startData: unknown = workerData;
// The program's main thread started early on a cluster: its first local worker's thread boots while it waits.
prewarmLocalThreads(prewarmLocalCount(startData));
const start = awaitAppThreadStart(startData);
// null: a warm thread not taken, which ends here.
if (start !== null) {
  const { config, port } = start;
  if (hopsOn) hop('t:start gate passed');
  const threadIdSeen = config.threadIdSeen >= 0 ? config.threadIdSeen : (await import('node:worker_threads')).threadId;
  setupAppThread({ ...config, threadIdSeen }, port);
  if (hopsOn) hop('t:set up');
  markProgramStarted(startData);

  if (config.evalCode) {
    await runEvalWorker(config.entry, config.argv);
  } else if (config.entry.startsWith('data:')) {
    // A worker made from a data: URL (an ES module's text): Node gives it no script in its argv.
    process.argv = [process.execPath, ...config.argv];
    await import(config.entry);
  } else {
    // Found as Node finds a worker's file (its extension may be left out), or Node's own error for a missing one.
    const found = findMainPath(config.entry);
    if (found === false) throwMainNotFound(config.entry);
    const entry = realpathSync(found);
    process.argv = [process.execPath, config.entry, ...config.argv];
    if (isTypeScript(entry)) {
      // Loader hooks are per thread: each thread whose entry is TypeScript registers tsx.
      const { register } = await import('tsx/esm/api');
      register();
      const cjs = await import('tsx/cjs/api');
      cjs.register();
    }
    if (moduleKindOf(entry) === 'commonjs' && !isTypeScript(entry)) {
      // Loaded as the main module so `require.main === module` holds, as under node.
      const require = createRequire(pathToFileURL(`${dirname(entry)}/`));
      const Module = require('node:module') as { _load(request: string, parent: unknown, isMain: boolean): unknown };
      try {
        Module._load(entry, null, true);
      } catch (error) {
        // Under node an uncaught exception, not a rejection: its report points at the program's line.
        thrownByMainModule(error);
        throw error;
      }
    } else {
      if (hopsOn) hop('t:user module');
      await import(pathToFileURL(entry).href);
    }
  }
}
