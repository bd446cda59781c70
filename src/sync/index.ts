export { Barrier } from './barrier.js';
export { Condition } from './condition.js';
export { Mutex } from './mutex.js';
