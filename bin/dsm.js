#!/usr/bin/env node
// The `dsm` command: loads the bundled CLI from dist/bundle/ (scripts/bundle.mjs).
import { existsSync } from 'node:fs';
import module from 'node:module';

// Node 22.1+: the compiled code of the modules this process loads is kept on disk and reused by the next run (see
// compileCacheLine in scripts/bundle.mjs); Node 20 has no such cache.
module.enableCompileCache?.();

const cli = new URL('../dist/bundle/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("dsm: DSM_ERR_ADDON: dsm is not built; run 'npm install' (or 'npm run build') in the dsm folder\n");
  process.exit(2);
}
// Node's source maps stay off (they cost every process ~17 ms of CPU at start): a stack trace dsm prints
// names its own frames in src/ through dist/bundle/*.js.map when it prints it (src/util/source-frames.ts).
// The other nodes of a local run start first, while this process loads the CLI (src/cluster/early-nodes.ts).
const argv = process.argv.slice(2);
const early = (await import(new URL('../dist/bundle/early-nodes.js', import.meta.url).href)).startEarlyNodes(argv);
const { main } = await import(cli.href);
try {
  await main(argv, early);
} finally {
  early?.discard();
}
