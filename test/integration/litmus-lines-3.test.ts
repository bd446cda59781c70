// Atomics by line ownership, litmus on 3 node(s) (see litmus-lines.ts).
import { litmusLines } from './litmus-lines.js';

litmusLines(3, ['hlrc', 'sc']);
