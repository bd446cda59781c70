// User-written programs (./users-runs.ts) on 3 nodes under hlrc: same output and exit code as under node.
import { userProgramTests } from './users-runs.js';

userProgramTests(['--nodes', '3', '--protocol', 'hlrc']);
