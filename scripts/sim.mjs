// `npm run sim -- --seeds N [--seed S] [--protocol hlrc|sc] [--first F]`: many seeds of the protocol simulation.
import { spawnSync } from 'node:child_process';
const result = spawnSync(process.execPath, ['--import', 'tsx', 'test/sim/run.ts', ...process.argv.slice(2)], { stdio: 'inherit' });
process.exit(result.status ?? 1);
