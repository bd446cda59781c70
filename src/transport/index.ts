// dsm's transport: how node processes talk.
//
// Wire: length-prefixed frames over TCP with Nagle off (frame.ts):
//   [u32 magic 'DSM1'][u8 wire version][u8 kind][u16 0][u32 body bytes][u32 payload bytes][msgpack body][raw payload]
// A message is a plain object with a string `type`; one optional `payload:
// Uint8Array` (a page, a diff) travels after the body as its own buffer and
// arrives as a subarray of the received chunk (codec.ts).
//
// API:
//   Listener.listen(host, port): Promise<Listener>        'socket' events; DSM_ERR_PORT_IN_USE on EADDRINUSE
//   connectPeer({ host, port, hello, secret, retryCountMax? }): Promise<Connection>
//                                                          bounded retries, then DSM_ERR_UNREACHABLE
//   dialWithRetry(address, policy): Promise<Socket>        the one retry loop (count or deadline) over retriedDialCodes
//   formatAddress(host, port)                              host:port, [v6]:port
//   Beacon: heartbeats from a worker thread of their own (beacon.ts); the Mesh runs one
//   acceptPeer(socket, { hello, secret }): Promise<Connection>
//   handshake(socket, { hello, secret, role, peerLabel }): Promise<Connection>   (the primitive under both)
//     Refusals reject on BOTH sides with DSM_ERR_SECRET, DSM_ERR_VERSION,
//     DSM_ERR_CONFIG_MISMATCH (naming the field), DSM_ERR_FRAME, DSM_ERR_HANDSHAKE (timeout).
//   Connection: send(message): boolean   always queues (never throws); false = the queue holds
//                                        sendQueueBytesMax or more (the producer waits for 'drain'),
//                                        or the connection is closed (its loss was reported)
//               queuedBytes
//               sendHeartbeat(), close(), peer: Hello, peerLabel, streamless (read without Node's streams:
//               plain TCP; frame-reader.ts), receiver (an owner's direct callback, instead of 'message' events)
//               events 'message' (msg), 'heartbeat', 'drain', 'error' (DsmError: DSM_ERR_FRAME naming the peer,
//               DSM_ERR_NODE_DIED), 'close'
//   new Mesh({ nodeId, listener, addresses: Map<nodeId, {host, port}>, hello, secret,
//              heartbeatIntervalMs?, heartbeatTimeoutMs? })
//     start(): Promise<void>  dials every lower id, accepts every higher id; resolves when all are connected
//     send(nodeId, msg): boolean, queuedBytes(nodeId), queuingPeerIds (a superset of the peers with queued bytes), peerIds, close()
//     holdMessages(), deliverTo(receiver): held messages, then every message, to receiver (no 'message' events)
//     events 'message' (from, msg; until deliverTo), 'drain' (nodeId), 'peer-lost' (nodeId, DsmError naming node and host), 'refused' (DsmError)

export { type WireMessage } from './codec.js';
export { Connection, type Hello, handshake } from './connection.js';
export { FrameDecoder, FrameError, frameKinds, wireVersion } from './frame.js';
export { type DialPolicy, dialWithRetry, formatAddress, retriedDialCodes } from './dial.js';
export { Beacon } from './beacon.js';
export { Listener, Mesh, type MeshOptions, type PeerAddress, acceptPeer, connectPeer } from './mesh.js';
