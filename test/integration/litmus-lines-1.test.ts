// Atomics by line ownership, litmus on 1 node(s) (see litmus-lines.ts).
import { litmusLines } from './litmus-lines.js';

litmusLines(1, ['hlrc', 'sc']);
