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

/** Why a body fails the scan, or null when msgpackr may decode it. */
export function scanMsgpack(body: Uint8Array): string | null {
  const byteCount = body.byteLength;
  const view = new DataView(body.buffer, body.byteOffset, byteCount);
  // Values still owed by the containers opened so far (the top-level value included).
  let owedCount = 1;
  // Open containers, innermost last: how many values each still owes.
  const open: number[] = [];
  let offset = 0;
  while (owedCount > 0) {
    if (offset >= byteCount) return `truncated: ${owedCount} more value(s) declared at byte ${offset} of ${byteCount}`;
    const byte = body[offset]!;
    offset += 1;
    owedCount -= 1;
    if (open.length > 0) open[open.length - 1]! -= 1;
    let skipBytes = 0;
    let childCount = 0;
    if (byte <= 0x7f || byte >= 0xe0 || byte === 0xc0 || byte === 0xc2 || byte === 0xc3) {
      // fixint, nil, booleans: the byte is the value
    } else if (byte <= 0x8f) childCount = 2 * (byte & 0x0f);
    else if (byte <= 0x9f) childCount = byte & 0x0f;
    else if (byte <= 0xbf) skipBytes = byte & 0x1f;
    else {
      const lengthAt = (width: 1 | 2 | 4): number | null => {
        if (offset + width > byteCount) return null;
        const value = width === 1 ? view.getUint8(offset) : width === 2 ? view.getUint16(offset) : view.getUint32(offset);
        offset += width;
        return value;
      };
      let length: number | null = 0;
      switch (byte) {
        case 0xc4: case 0xd9: length = lengthAt(1); skipBytes = length ?? 0; break;
        case 0xc5: case 0xda: length = lengthAt(2); skipBytes = length ?? 0; break;
        case 0xc6: case 0xdb: length = lengthAt(4); skipBytes = length ?? 0; break;
        // ext: length, then a type byte, then the data
        case 0xc7: length = lengthAt(1); skipBytes = (length ?? 0) + 1; break;
        case 0xc8: length = lengthAt(2); skipBytes = (length ?? 0) + 1; break;
        case 0xc9: length = lengthAt(4); skipBytes = (length ?? 0) + 1; break;
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
        case 0xdc: length = lengthAt(2); childCount = length ?? 0; break;
        case 0xdd: length = lengthAt(4); childCount = length ?? 0; break;
        case 0xde: length = lengthAt(2); childCount = 2 * (length ?? 0); break;
        case 0xdf: length = lengthAt(4); childCount = 2 * (length ?? 0); break;
        default: return `byte 0x${byte.toString(16)} at ${offset - 1} is not msgpack`;
      }
      if (length === null) return `truncated length field at byte ${offset}`;
    }
    if (skipBytes > byteCount - offset) return `a value at byte ${offset} declares ${skipBytes} bytes but ${byteCount - offset} remain`;
    offset += skipBytes;
    if (childCount > 0) {
      if (owedCount + childCount > byteCount - offset) {
        return `a container at byte ${offset} declares ${childCount} values but only ${byteCount - offset} bytes remain`;
      }
      owedCount += childCount;
      open.push(childCount);
      if (open.length > msgpackDepthMax) return `nesting deeper than ${msgpackDepthMax}`;
    }
    while (open.length > 0 && open[open.length - 1] === 0) open.pop();
  }
  if (offset !== byteCount) return `${byteCount - offset} bytes after the message`;
  return null;
}
