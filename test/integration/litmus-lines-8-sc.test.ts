// Atomics by line ownership, litmus on 8 node(s) (see litmus-lines.ts).
import { litmusLines } from './litmus-lines.js';

litmusLines(8, ['sc']);
