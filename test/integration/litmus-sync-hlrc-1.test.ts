// Synchronization litmus on 4 nodes, one share (see litmus-sync.ts).
import { litmusSync } from './litmus-sync.js';

litmusSync('hlrc', 0, 9);
