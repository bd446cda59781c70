// Synchronization litmus on 4 nodes, one share (see litmus-sync.ts).
import { litmusSync, litmusSyncCount } from './litmus-sync.js';

litmusSync('sc', 0, litmusSyncCount);
