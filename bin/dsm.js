#!/usr/bin/env node
// The `dsm` command: loads the bundled CLI from dist/bundle/ (scripts/bundle.mjs).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/bundle/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("dsm: DSM_ERR_ADDON: dsm is not built; run 'npm install' (or 'npm run build') in the dsm folder\n");
  process.exit(2);
}
// Node's source maps stay off (they cost every process ~17 ms of CPU at start): a stack trace dsm prints
// names its own frames in src/ through dist/bundle/*.js.map when it prints it (src/util/source-frames.ts).
const { main } = await import(cli.href);
await main(process.argv.slice(2));
