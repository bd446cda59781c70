/**
 * Messages larger than a frame, in parts (the workers lane).
 *
 * A frame carries at most frameBytesMax bytes, and a message to a thread on
 * another node (a postMessage's clone, a workerData) may be up to
 * remoteMessageBytesMax. The sending manager cuts such a message's bytes: each
 * leading remoteMessagePartBytes goes ahead in an `rtPart`, and the message
 * itself goes last with the rest of them. The lane is one connection, in order,
 * so the receiving manager joins the parts of a sender into one buffer (the
 * size each part names, allocated at the first) and, when the message comes,
 * hands it on with its bytes whole: nothing above this layer sees parts, and
 * the message's release and acquire are the one it always had.
 *
 * A peer is authenticated before it sends on a lane, so parts out of order are
 * a bug, not an attack; they end the run with DSM_ERR_FRAME naming what was
 * wrong, as any malformed message does.
 */
import { remoteMessageBytesMax, remoteMessagePartBytes } from '../constants.js';
import { DsmError, assert } from '../errors.js';
import type { WorkerLaneMessage } from './envelope.js';

type Part = Extract<WorkerLaneMessage, { type: 'rtPart' }>;

/** The field of a workers-lane message that holds its bytes (the one that may be cut), or null. */
function bytesFieldOf(message: WorkerLaneMessage): 'bytes' | 'workerData' | null {
  switch (message.type) {
    case 'rtSpawn': return 'workerData';
    case 'rtPost': case 'rtEvent': case 'rtBroadcast': case 'rtPortMessage': case 'rtThreadPost': case 'rtWorkerQueryDone': return 'bytes';
    default: return null;
  }
}

function bytesOf(message: WorkerLaneMessage): Uint8Array | undefined {
  switch (message.type) {
    case 'rtSpawn': return message.workerData;
    case 'rtPost': case 'rtEvent': case 'rtBroadcast': case 'rtPortMessage': case 'rtThreadPost': case 'rtWorkerQueryDone': return message.bytes;
    default: return undefined;
  }
}

/**
 * `message` as the parts that go ahead of it and the message to send last (the same object when it needs none;
 * else a copy whose bytes are the last part's). The parts are views of its bytes: no copy.
 */
export function cutMessage(message: WorkerLaneMessage): { parts: Part[]; last: WorkerLaneMessage } {
  const bytes = bytesOf(message);
  if (bytes === undefined || bytes.byteLength <= remoteMessagePartBytes) return { parts: [], last: message };
  assert(bytes.byteLength <= remoteMessageBytesMax, 'a message to another node is within remoteMessageBytesMax (checked where it was posted)');
  const total = bytes.byteLength;
  const parts: Part[] = [];
  let at = 0;
  // The last part travels in the message itself: at least one byte of it, at most remoteMessagePartBytes.
  while (total - at > remoteMessagePartBytes) {
    parts.push({ type: 'rtPart', total, bytes: bytes.subarray(at, at + remoteMessagePartBytes) });
    at += remoteMessagePartBytes;
  }
  const field = bytesFieldOf(message)!;
  return { parts, last: { ...message, [field]: bytes.subarray(at) } as WorkerLaneMessage };
}

/** A sender's message being joined. */
interface Joining { buffer: Uint8Array; filled: number }

/** The receiving side: per sending node, the parts of its next message. */
export class MessageJoiner {
  private readonly joining = new Map<number, Joining>();

  /** Takes a part from `from`. */
  addPart(from: number, part: Part): void {
    const { total, bytes } = part;
    if (!Number.isInteger(total) || total <= remoteMessagePartBytes || total > remoteMessageBytesMax) {
      throw new DsmError('DSM_ERR_FRAME', `node ${from} sent a message part naming a total of ${String(total)} bytes: a message in parts is more than ${remoteMessagePartBytes} and at most ${remoteMessageBytesMax} bytes (remoteMessageBytesMax)`);
    }
    let joining = this.joining.get(from);
    if (joining === undefined) {
      joining = { buffer: new Uint8Array(total), filled: 0 };
      this.joining.set(from, joining);
    } else if (joining.buffer.byteLength !== total) {
      throw new DsmError('DSM_ERR_FRAME', `node ${from} sent a part of a ${total}-byte message while one of ${joining.buffer.byteLength} bytes was not complete`);
    }
    if (bytes.byteLength === 0 || bytes.byteLength > total - joining.filled - 1) {
      throw new DsmError('DSM_ERR_FRAME', `node ${from} sent a part of ${bytes.byteLength} bytes where its ${total}-byte message had ${total - joining.filled} left, its last part to come in the message`);
    }
    joining.buffer.set(bytes, joining.filled);
    joining.filled += bytes.byteLength;
  }

  /** `message` with the parts of `from` that went ahead of it joined to its bytes (the same message when none did). */
  join(from: number, message: WorkerLaneMessage): WorkerLaneMessage {
    const joining = this.joining.get(from);
    if (joining === undefined) return message;
    this.joining.delete(from);
    const field = bytesFieldOf(message);
    const rest = bytesOf(message);
    const left = joining.buffer.byteLength - joining.filled;
    if (field === null || rest === undefined || rest.byteLength !== left) {
      throw new DsmError('DSM_ERR_FRAME', `node ${from} sent a '${message.type}' message${rest === undefined ? ' without bytes' : ` with ${rest.byteLength} bytes`} after parts that left ${left} of a message to come`);
    }
    joining.buffer.set(rest, joining.filled);
    return { ...message, [field]: joining.buffer } as WorkerLaneMessage;
  }

  /** Bytes held for messages not complete (observability, tests). */
  heldBytes(): number {
    let held = 0;
    for (const joining of this.joining.values()) held += joining.buffer.byteLength;
    return held;
  }
}
