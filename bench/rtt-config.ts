import { pageBytes } from '../src/constants.js';
import type { Hello } from '../src/transport/connection.js';
import { wireVersion } from '../src/transport/frame.js';

export const rttSecret = 'rtt-bench';
export const rttHello: Hello = { clusterId: 'rtt-bench', dsmVersion: '0', wireVersion, coherence: 'hlrc', pageBytes, regionBytes: 1 << 30, nodeId: 0 };
