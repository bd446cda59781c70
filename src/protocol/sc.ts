// Sequential consistency: single writer / multiple readers, write-invalidate,
// a fixed distributed manager per page (Li & Hudak 1989).
// Not yet implemented: the constructor says so rather than running wrongly.

import { DsmError } from '../errors.js';
import type { Engine, EngineOptions } from './engine.js';

export class ScEngine implements Engine {
  readonly nodeId: number;
  readonly protocol = 'sc' as const;
  constructor(options: EngineOptions) {
    this.nodeId = options.nodeId;
    throw new DsmError('DSM_ERR_PROTOCOL', "protocol 'sc' is not implemented yet; use 'hlrc'");
  }
  start(): void {}
  onFault(): void {}
  onSync(): void {}
  onMessage(): void {}
  onTick(): void {}
  homeOf(page: number): number { return page; }
  counters(): never { throw new Error('unreachable'); }
  tableSizes(): Record<string, number> { return {}; }
}
