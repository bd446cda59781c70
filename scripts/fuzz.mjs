// npm run fuzz -- --inputs N [--seed S] [--only I]: the transport fuzzer (test/fuzz), TypeScript loaded by tsx.
import { spawnSync } from 'node:child_process';

const result = spawnSync(process.execPath, ['--import', 'tsx', 'test/fuzz/cli.ts', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
