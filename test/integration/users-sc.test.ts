// User-written programs (./users-runs.ts) on 2 nodes under sc: same output and exit code as under node.
import { userProgramTests } from './users-runs.js';

userProgramTests(['--nodes', '2', '--protocol', 'sc']);
