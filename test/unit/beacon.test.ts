// The heartbeat thread (src/transport/beacon.ts): two nodes' beacons hear each other over UDP on loopback;
// beats made with another secret, or meant for another node, are not heard.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Beacon } from '../../src/transport/beacon.js';
import { Listener } from '../../src/transport/mesh.js';

async function until(condition: () => boolean, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  while (!condition() && Date.now() < deadline) await new Promise((done) => setTimeout(done, 50));
  return condition();
}

test('beacons of one cluster hear each other; a beacon with another secret is not heard', async () => {
  // The beacon binds the mesh listener's port number in UDP; take three free ones.
  const listeners = await Promise.all([0, 1, 2].map(() => Listener.listen('127.0.0.1', 0)));
  const [a, b, c] = listeners.map((listener) => listener.address);
  const secret = 'x'.repeat(8) + 'Secret-For-The-Beacon-Test-0123456789';
  const beaconA = new Beacon({ nodeId: 0, host: '127.0.0.1', port: a!.port, intervalMs: 100, secret, clusterId: 'test', peers: new Map([[1, b!], [2, c!]]) });
  const beaconB = new Beacon({ nodeId: 1, host: '127.0.0.1', port: b!.port, intervalMs: 100, secret, clusterId: 'test', peers: new Map([[0, a!]]) });
  // Node 2 claims to be of the cluster but holds another secret.
  const beaconC = new Beacon({ nodeId: 2, host: '127.0.0.1', port: c!.port, intervalMs: 100, secret: `${secret}-other`, clusterId: 'test', peers: new Map([[0, a!]]) });
  try {
    assert.ok(await until(() => beaconA.heardAtMs(1) !== null && beaconB.heardAtMs(0) !== null, 30_000), "a and b hear each other");
    const heard = beaconA.heardAtMs(1)!;
    assert.ok(Math.abs(Date.now() - heard) < 10_000, 'the time is a recent Date.now()');
    assert.ok(await until(() => beaconA.heardAtMs(1)! > heard, 10_000), 'beats keep coming');
    assert.equal(beaconA.heardAtMs(2), null, 'a beat made with another secret is not heard');
    assert.equal(beaconC.heardAtMs(0), null, 'nor is one made for the cluster by an outsider heard by it');
  } finally {
    for (const beacon of [beaconA, beaconB, beaconC]) beacon.close();
    for (const listener of listeners) listener.close();
  }
});
