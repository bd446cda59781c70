// One node is a cluster of one (issue 11): node 0 with no peer, over a mesh of
// one that has no socket and refuses every send (nothing of a cluster of one
// is at another node).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { soloCluster } from '../../src/cluster/index.js';
import { SoloMesh } from '../../src/transport/solo-mesh.js';
import { MeshNetwork } from '../../src/runtime/envelope.js';
import { NodeObserver } from '../../src/runtime/observe.js';

test('a cluster of one: node 0 of 1, this process, over a mesh of one', () => {
  const handle = soloCluster({ heartbeatTimeoutMs: 3000, handleSignals: false });
  assert.equal(handle.nodeId, 0);
  assert.equal(handle.nodeCount, 1);
  assert.equal(handle.peers.length, 1);
  assert.equal(handle.peers[0]!.pid, process.pid);
  assert.equal(handle.heartbeatTimeoutMs, 3000);
  assert.ok(handle.mesh instanceof SoloMesh);
});

test('the mesh of one has no peer, queues nothing and refuses a send as an invariant failure', () => {
  const mesh = new SoloMesh();
  assert.deepEqual(mesh.peerIds, []);
  assert.equal(mesh.queuedBytes(1), 0);
  mesh.holdMessages();
  const received: unknown[] = [];
  const network = new MeshNetwork(mesh, new NodeObserver(0));
  network.listen((from, routed) => received.push([from, routed]));
  assert.throws(() => network.send(1, { type: 'rtTraceStart', originUs: 0 }), (error: Error & { code?: string }) => error.code === 'DSM_ERR_INTERNAL' && /a cluster of one sends nothing/.test(error.message));
  assert.deepEqual(received, []);
  mesh.close();
});
