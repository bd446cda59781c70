#!/usr/bin/env node
// The `dsm` command: loads the compiled CLI from dist/.
import { existsSync } from 'node:fs';

const cli = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write("dsm: DSM_ERR_ADDON: dsm is not built; run 'npm install' (or 'npm run build') in the dsm folder\n");
  process.exit(2);
}
const { main } = await import(cli.href);
await main(process.argv.slice(2));
