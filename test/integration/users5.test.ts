// Round 4 of user programs (test/fixtures/users5): the patterns worker libraries (piscina, tinypool, workerpool,
// threads, synckit, make-synchronous) use underneath, in plain worker_threads code, no library and no dsm API:
// under dsm they print what plain node prints and exit with its code.
import { userProgramTests, type UserProgram } from './users-runs.js';

const directory = 'test/fixtures/users5';

const programs: Record<string, UserProgram> = {
  syncEval: { file: 'sync-eval.mjs', what: 'make-synchronous: an eval worker importing the module that made it (module syntax in eval code), Atomics.wait and receiveMessageOnPort on an unref\'d port; eval code of each shape Node detects', status: 0 },
  poolDestroy: { file: 'pool-destroy.mjs', what: 'tinypool\'s pool life: workers unref\'d when idle, destroy() awaiting each one\'s \'exit\' (events.once) while terminating it unref\'d', status: 0 },
};
const all = Object.values(programs);

userProgramTests(['--nodes', '3', '--protocol', 'hlrc'], all, directory);
userProgramTests(['--nodes', '2', '--protocol', 'sc'], [programs.poolDestroy!], directory);
userProgramTests(['--nodes', '1'], [programs.syncEval!], directory);
