#!/usr/bin/env node
// The `dsm` command: loads the bundled CLI from dist/bundle/ (scripts/bundle.mjs).
import { existsSync } from 'node:fs';

const cli = new URL('../dist/bundle/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("dsm: DSM_ERR_ADDON: dsm is not built; run 'npm install' (or 'npm run build') in the dsm folder\n");
  process.exit(2);
}
// dsm's own stack frames name src/ (dist/bundle/*.js.map); the program's threads keep node's default.
process.setSourceMapsEnabled(true);
const { main } = await import(cli.href);
await main(process.argv.slice(2));
