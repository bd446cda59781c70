// A guard run before msgpackr decodes a body that came from the network.
//
// msgpackr trusts the lengths a body declares: a 5-byte body that says "an
// array of 32M elements" makes it allocate that array (hundreds of MB and
// about a second per frame) before it notices the bytes are missing. This scan
// walks the body's structure once, without allocating, and refuses it unless
// every declared length fits in the bytes that remain: each element still
// owed needs at least one byte, each string, binary or extension its declared
// length. So whatever passes costs msgpackr at most a small multiple of the
// body's size to decode.

import { msgpackDepthMax } from '../constants.js';

/** How many values each open container still owes, innermost last (one scan at a time: scans never nest). */
const openStack = new Float64Array(msgpackDepthMax + 1);

/**
 * Why a body fails the scan, or null when msgpackr may decode it. Runs on
 * every message received, so it reads bytes directly (no DataView, no
 * closures, no allocation): a small control message costs well under a microsecond.
 */
export function scanMsgpack(body: Uint8Array): string | null {
  const byteCount = body.byteLength;
  // Values still owed by the containers opened so far (the top-level value included).
  let owedCount = 1;
  // Open containers (openStack[0 .. depth)): how many values each still owes.
  let depth = 0;
  let offset = 0;
  while (owedCount > 0) {
    if (offset >= byteCount) return `truncated: ${owedCount} more value(s) declared at byte ${offset} of ${byteCount}`;
    const byte = body[offset]!;
    offset += 1;
    owedCount -= 1;
    if (depth > 0) openStack[depth - 1]! -= 1;
    let skipBytes = 0;
    let childCount = 0;
    if (byte <= 0x7f || byte >= 0xe0 || byte === 0xc0 || byte === 0xc2 || byte === 0xc3) {
      // fixint, nil, booleans: the byte is the value
    } else if (byte <= 0x8f) childCount = 2 * (byte & 0x0f);
    else if (byte <= 0x9f) childCount = byte & 0x0f;
    else if (byte <= 0xbf) skipBytes = byte & 0x1f;
    else {
      // The width of the length field that follows the byte (0: none), and what the length counts.
      let width = 0;
      let extra = 0;
      let counts: 'bytes' | 'values' | 'pairs' = 'bytes';
      switch (byte) {
        case 0xc4: case 0xd9: width = 1; break;
        case 0xc5: case 0xda: width = 2; break;
        case 0xc6: case 0xdb: width = 4; break;
        // ext: length, then a type byte, then the data
        case 0xc7: width = 1; extra = 1; break;
        case 0xc8: width = 2; extra = 1; break;
        case 0xc9: width = 4; extra = 1; break;
        case 0xca: skipBytes = 4; break;
        case 0xcb: skipBytes = 8; break;
        case 0xcc: case 0xd0: skipBytes = 1; break;
        case 0xcd: case 0xd1: skipBytes = 2; break;
        case 0xce: case 0xd2: skipBytes = 4; break;
        case 0xcf: case 0xd3: skipBytes = 8; break;
        case 0xd4: skipBytes = 2; break;
        case 0xd5: skipBytes = 3; break;
        case 0xd6: skipBytes = 5; break;
        case 0xd7: skipBytes = 9; break;
        case 0xd8: skipBytes = 17; break;
        case 0xdc: width = 2; counts = 'values'; break;
        case 0xdd: width = 4; counts = 'values'; break;
        case 0xde: width = 2; counts = 'pairs'; break;
        case 0xdf: width = 4; counts = 'pairs'; break;
        default: return `byte 0x${byte.toString(16)} at ${offset - 1} is not msgpack`;
      }
      if (width > 0) {
        if (offset + width > byteCount) return `truncated length field at byte ${offset}`;
        // Big-endian, unsigned (a 32-bit length may exceed 2^31: no bitwise OR on the top byte).
        const length = width === 1 ? body[offset]!
          : width === 2 ? (body[offset]! << 8) | body[offset + 1]!
            : body[offset]! * 0x1000000 + ((body[offset + 1]! << 16) | (body[offset + 2]! << 8) | body[offset + 3]!);
        offset += width;
        if (counts === 'bytes') skipBytes = length + extra;
        else childCount = counts === 'values' ? length : 2 * length;
      }
    }
    if (skipBytes > byteCount - offset) return `a value at byte ${offset} declares ${skipBytes} bytes but ${byteCount - offset} remain`;
    offset += skipBytes;
    if (childCount > 0) {
      if (owedCount + childCount > byteCount - offset) {
        return `a container at byte ${offset} declares ${childCount} values but only ${byteCount - offset} bytes remain`;
      }
      owedCount += childCount;
      if (depth >= msgpackDepthMax) return `nesting deeper than ${msgpackDepthMax}`;
      openStack[depth] = childCount;
      depth += 1;
    }
    while (depth > 0 && openStack[depth - 1] === 0) depth -= 1;
  }
  if (offset !== byteCount) return `${byteCount - offset} bytes after the message`;
  return null;
}
