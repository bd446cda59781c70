export { ChunkAuthority, NodeHeap, smallBlockBytesMin, type Allocation, type PageRange } from './heap.js';
