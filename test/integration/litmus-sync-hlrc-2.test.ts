// Synchronization litmus on 4 nodes, one share (see litmus-sync.ts).
import { litmusSync, litmusSyncCount } from './litmus-sync.js';

litmusSync('hlrc', 9, litmusSyncCount, true);
