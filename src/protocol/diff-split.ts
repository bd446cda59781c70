// A release may carry more diffs for one home than a frame holds. The home
// applies a diffs message page by page, so pieces of one message are
// equivalent to it: the engine sends an oversized diffs message as pieces,
// each within diffsMessageBytesMax (a single diff is at most a few pages).

import { diffsMessageBytesMax } from '../constants.js';
import type { ProtocolMessage } from './messages.js';

type DiffsMessage = Extract<ProtocolMessage, { type: 'diffs' }>;

/** Bytes a diff is counted for in a diffs message: its own and its page number's share of the header. */
const diffOverheadBytes = 16;

/** Pieces of a diffs message, each within `bytesMax` (the message itself when it fits). */
export function splitDiffs(message: DiffsMessage, bytesMax = diffsMessageBytesMax): DiffsMessage[] {
  let total = 0;
  for (const diff of message.diffs) total += diff.byteLength + diffOverheadBytes;
  if (total <= bytesMax) return [message];
  const pieces: DiffsMessage[] = [];
  // Every piece keeps the message's other fields (a forwarded message's `origin`).
  let piece: DiffsMessage = { ...message, pages: [], diffs: [] };
  let bytes = 0;
  for (let index = 0; index < message.pages.length; index++) {
    const diff = message.diffs[index]!;
    if (bytes + diff.byteLength + diffOverheadBytes > bytesMax && piece.pages.length > 0) {
      pieces.push(piece);
      piece = { ...message, pages: [], diffs: [] };
      bytes = 0;
    }
    piece.pages.push(message.pages[index]!);
    piece.diffs.push(diff);
    bytes += diff.byteLength + diffOverheadBytes;
  }
  if (piece.pages.length > 0) pieces.push(piece);
  return pieces;
}

/** `send`, with every diffs message over the limit sent as its pieces (the engine's send goes through this). */
export function sendingSplitDiffs(send: (toNode: number, message: ProtocolMessage) => void): (toNode: number, message: ProtocolMessage) => void {
  return (toNode, message) => {
    if (message.type !== 'diffs') {
      send(toNode, message);
      return;
    }
    for (const piece of splitDiffs(message)) send(toNode, piece);
  };
}
