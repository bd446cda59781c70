import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertFits, deserializeMessage, deserializeValue, heldRangesOf, holdsNodeLocalMemory, rangeTokenOwners, serializeMessage, serializeValue, transferListOf, type BufferRanges } from '../../src/channel/clone.js';
import { frameBytesMax, remoteMessageBytesMax } from '../../src/constants.js';
import { deserializeThrown, serializeThrown } from '../../src/channel/thrown.js';
import { MessageChannel } from 'node:worker_threads';

// A fake region: buffers registered by offset, as the app side does with real dsm memory.
function fakeRanges(): BufferRanges & { add(offset: number, buffer: SharedArrayBuffer): void } {
  const byBuffer = new Map<SharedArrayBuffer, number>();
  const byOffset = new Map<number, SharedArrayBuffer>();
  return {
    add(offset, buffer) { byBuffer.set(buffer, offset); byOffset.set(offset, buffer); },
    rangeOf(buffer) { const offset = byBuffer.get(buffer); return offset === undefined ? null : { offset, byteLength: buffer.byteLength }; },
    bufferAt(offset, byteLength) { const buffer = byOffset.get(offset)!; assert.equal(buffer.byteLength, byteLength); return buffer; },
  };
}

test('dsm buffers and views travel by range and come back as the same memory', () => {
  const ranges = fakeRanges();
  const sab = new SharedArrayBuffer(64);
  ranges.add(4096, sab);
  const value = { sab, list: [sab, new Int32Array(sab, 8, 4)], map: new Map([['k', new DataView(sab, 2, 3)]]), n: 5, s: 'x', plain: new Uint8Array([1, 2, 3]) };
  const back = deserializeValue(serializeValue(value, ranges), ranges) as typeof value;
  assert.equal(back.sab, sab);
  assert.equal(back.list[0], sab);
  const view = back.list[1] as Int32Array;
  assert.ok(view instanceof Int32Array);
  assert.equal(view.buffer, sab);
  assert.equal(view.byteOffset, 8);
  assert.equal(view.length, 4);
  const dataView = back.map.get('k')!;
  assert.ok(dataView instanceof DataView);
  assert.equal(dataView.byteOffset, 2);
  assert.equal(dataView.byteLength, 3);
  assert.equal(back.n, 5);
  assert.deepEqual(back.plain, new Uint8Array([1, 2, 3]));
  assert.notEqual(back.plain, value.plain);
});

test('cycles and shared references survive', () => {
  const ranges = fakeRanges();
  const sab = new SharedArrayBuffer(8);
  ranges.add(0, sab);
  const node: Record<string, unknown> = { sab };
  node.self = node;
  const back = deserializeValue(serializeValue([node, node], ranges), ranges) as Array<Record<string, unknown>>;
  assert.equal(back[0], back[1]);
  assert.equal(back[0]!.self, back[0]);
  assert.equal(back[0]!.sab, sab);
});

test('a SharedArrayBuffer that is not dsm memory is a clear error', () => {
  const ranges = fakeRanges();
  assert.throws(() => serializeValue({ sab: new SharedArrayBuffer(8) }, ranges), { code: 'DSM_ERR_NOT_DSM_MEMORY' });
  assert.throws(() => serializeValue(new Int32Array(new SharedArrayBuffer(8)), ranges), { code: 'DSM_ERR_NOT_DSM_MEMORY' });
});

test('a WebAssembly shared Memory is named in its error, and found (bounded) where a worker\'s placement looks', () => {
  const ranges = fakeRanges();
  const dsm = new SharedArrayBuffer(8);
  ranges.add(0, dsm);
  const { Memory } = (globalThis as unknown as { WebAssembly: { Memory: new (descriptor: object) => object } }).WebAssembly;
  const Growable = SharedArrayBuffer as unknown as new (byteLength: number, options: { maxByteLength: number }) => SharedArrayBuffer;
  const memory = new Memory({ initial: 1, maximum: 1, shared: true });
  assert.throws(() => serializeValue({ memory }, ranges), { code: 'DSM_ERR_NOT_DSM_MEMORY', message: /WebAssembly shared Memory/ });
  assert.equal(holdsNodeLocalMemory({ a: [1, 'x', new Map([['m', memory]])] }, ranges, 100), true);
  assert.equal(holdsNodeLocalMemory(new Set([new Int32Array(new Growable(8, { maxByteLength: 16 }))]), ranges, 100), true);
  assert.equal(holdsNodeLocalMemory({ dsm, view: new Int32Array(dsm), plain: new Uint8Array(4), memory: new Memory({ initial: 1 }) }, ranges, 100), false);
  const cycle: Record<string, unknown> = { dsm };
  cycle.self = cycle;
  assert.equal(holdsNodeLocalMemory(cycle, ranges, 100), false);
  // Past the bound the answer is false: the worker is placed as any other (and the clone names the memory).
  const deep = Array.from({ length: 200 }, (_, index) => ({ index }));
  assert.equal(holdsNodeLocalMemory([memory, ...deep], ranges, 100), false);
  assert.equal(holdsNodeLocalMemory([memory, ...deep], ranges, 1000), true);
});

test('a message that is one large typed array, DataView or ArrayBuffer, its buffer whole, travels as its contents; anything else as a clone', () => {
  const ranges = fakeRanges();
  const size = 128 * 1024;
  const kinds = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array, DataView] as const;
  for (const kind of kinds) {
    const original = new (kind as unknown as new (buffer: ArrayBuffer) => ArrayBufferView)(new Uint8Array(size).map((_, i) => i & 0xff).buffer);
    const message = serializeMessage(original, ranges);
    assert.notEqual(message.form, undefined, kind.name);
    assert.deepEqual(transferListOf(message.bytes), [message.bytes.buffer], `${kind.name}: the bytes are their buffer whole`);
    const back = deserializeMessage(message, ranges) as ArrayBufferView;
    assert.equal(Object.getPrototypeOf(back), kind.prototype, kind.name);
    assert.equal(back.buffer, message.bytes.buffer, `${kind.name}: over the bytes themselves`);
    assert.deepEqual(Buffer.from(back.buffer), Buffer.from(original.buffer as ArrayBuffer));
  }
  const bare = new Uint8Array(size).fill(3).buffer;
  const bareBack = deserializeMessage(serializeMessage(bare, ranges), ranges);
  assert.ok(bareBack instanceof ArrayBuffer);
  assert.deepEqual(Buffer.from(bareBack), Buffer.from(bare));
  // The snapshot: changing the original after posting changes nothing that travels.
  const original = new Uint8Array(size).fill(1);
  const message = serializeMessage(original, ranges);
  original.fill(2);
  assert.deepEqual([...new Set(deserializeMessage(message, ranges) as Uint8Array)], [1]);
  // Bytes that are a view of a larger buffer (not transferred): copied, still right.
  const padded = new Uint8Array(message.bytes.byteLength + 8);
  padded.set(message.bytes, 8);
  const fromView = deserializeMessage({ bytes: padded.subarray(8), form: message.form! }, ranges) as Uint8Array;
  assert.equal(fromView.buffer.byteLength, size, 'the structured clone\'s shape: a buffer of the array\'s length');
  assert.deepEqual([...new Set(fromView)], [1]);
  // Everything else is a structured clone, with its shape.
  const sab = new SharedArrayBuffer(size);
  ranges.add(8192, sab);
  const large = new Uint8Array(size * 2);
  const resizable = new (ArrayBuffer as unknown as new (n: number, o: object) => ArrayBuffer)(size, { maxByteLength: size * 2 });
  for (const [what, value] of [
    ['a small array', new Uint8Array(16)],
    ['a part of a buffer', large.subarray(size)],
    ['a view at an offset', new Uint8Array(large.buffer, 8, size)],
    ['a Buffer', Buffer.alloc(size)],
    ['dsm memory', new Uint8Array(sab)],
    ['a resizable buffer', resizable],
    ['an object holding an array', { data: new Uint8Array(size) }],
  ] as const) {
    const cloned = serializeMessage(value, ranges);
    assert.equal(cloned.form, undefined, what);
    const back = deserializeMessage(cloned, ranges);
    if (what === 'dsm memory') assert.equal((back as Uint8Array).buffer, sab);
    if (what === 'a part of a buffer' || what === 'a view at an offset') assert.equal((back as Uint8Array).byteLength, size);
  }
  assert.throws(() => deserializeMessage({ bytes: new Uint8Array(8), form: 99 }, ranges), /unknown form 99/);
  assert.throws(() => deserializeMessage({ bytes: new Uint8Array(6), form: 8 }, ranges), /not a whole number of Float64Array elements/);
});

test('a message or workerData larger than remoteMessageBytesMax is DSM_ERR_MESSAGE_TOO_LARGE in the posting thread', () => {
  const ranges = fakeRanges();
  const tooLarge = (error: unknown) => (error as { code?: string }).code === 'DSM_ERR_MESSAGE_TOO_LARGE' && /remoteMessageBytesMax/.test((error as Error).message);
  // A typed array that is its buffer whole is measured before any copy (its pages are never touched here).
  assert.throws(() => serializeMessage(new Uint8Array(remoteMessageBytesMax + 1), ranges), tooLarge);
  assert.throws(() => assertFits(remoteMessageBytesMax + 1, 'workerData'), /workerData of/);
  assert.equal(assertFits(remoteMessageBytesMax, 'a message'), remoteMessageBytesMax);
  // Larger than a frame is not too large: such a message travels in parts (src/runtime/message-parts.ts).
  assert.equal(serializeMessage(new Uint8Array(frameBytesMax + 1), ranges).bytes.byteLength, frameBytesMax + 1);
});

test('a transferList moves a whole typed array\'s buffer with no copy, and detaches every buffer it names, as Node does', () => {
  const ranges = fakeRanges();
  const size = 128 * 1024;
  const array = new Uint8Array(size).fill(5);
  const buffer = array.buffer;
  const moved = serializeMessage(array, ranges, [buffer]);
  assert.equal(moved.bytes.buffer, buffer, 'the program\'s own buffer goes (the channel\'s transfer detaches it)');
  assert.deepEqual([...new Set(deserializeMessage({ bytes: moved.bytes.slice(), form: moved.form! }, ranges) as Uint8Array)], [5]);
  // In a clone: the buffers are copied into it, then detached.
  const inside = new Uint8Array(size).fill(6);
  const other = new ArrayBuffer(64);
  const cloned = serializeMessage({ inside }, ranges, [inside.buffer, other]);
  assert.equal(cloned.form, undefined);
  assert.equal(inside.byteLength, 0, 'detached');
  assert.equal(other.byteLength, 0, 'detached, though not in the message');
  assert.deepEqual([...new Set((deserializeMessage(cloned, ranges) as { inside: Uint8Array }).inside)], [6]);
  // A snapshot is still taken when the message's buffer is not in the list.
  const kept = new Uint8Array(size).fill(7);
  const snapshot = serializeMessage(kept, ranges, [new ArrayBuffer(8)]);
  assert.notEqual(snapshot.bytes.buffer, kept.buffer);
  assert.equal(kept.byteLength, size, 'not transferred: left as it was');
});

test('a MessagePort cannot cross nodes: a DsmError that says so, not V8\'s "Unserializable host object"', () => {
  const { port1, port2 } = new MessageChannel();
  try {
    assert.throws(() => serializeValue({ role: 'a', port: port1 }, fakeRanges()), (error: unknown) => {
      assert.equal((error as { code?: unknown }).code, 'DSM_ERR_NOT_DSM_MEMORY');
      assert.match((error as Error).message, /a MessagePort cannot cross nodes/);
      return true;
    });
  } finally {
    port1.close();
    port2.close();
  }
});

test('a MessagePort with a PortCodec travels as its relay id and comes back as the port the receiver makes for it', () => {
  const ranges = fakeRanges();
  const { port1, port2 } = new MessageChannel();
  const made = new MessageChannel();
  try {
    const ids = new Map([[port1, '0.0.7'], [port2, '0.0.8']]);
    const bytes = serializeValue({ first: port1, again: port1, second: [port2], text: 'x' }, ranges, { idOf: (port) => ids.get(port)! });
    const seen: string[] = [];
    const value = deserializeValue(bytes, ranges, { portAt: (id) => { seen.push(id); return id === '0.0.7' ? made.port1 : made.port2; } }) as Record<string, unknown>;
    // One port named twice is one object, as a structured clone keeps identity.
    assert.deepEqual(seen, ['0.0.7', '0.0.8']);
    assert.equal(value.first, made.port1);
    assert.equal(value.again, made.port1);
    assert.deepEqual(value.second, [made.port2]);
    assert.equal(value.text, 'x');
    // The codec may refuse a port (not in the transferList): its error, as thrown.
    assert.throws(() => serializeValue(port1, ranges, { idOf: () => { throw new DOMException('not listed', 'DataCloneError'); } }), { name: 'DataCloneError' });
    // A relay id where the receiver takes no ports is a frame error, not a crash.
    assert.throws(() => deserializeValue(bytes, ranges), { code: 'DSM_ERR_FRAME' });
    // Through serializeMessage too.
    const message = serializeMessage({ port: port2 }, ranges, [], { idOf: (port) => ids.get(port)! });
    assert.equal((deserializeMessage(message, ranges, { portAt: () => made.port2 }) as { port: unknown }).port, made.port2);
  } finally {
    for (const port of [port1, port2, made.port1, made.port2]) port.close();
  }
});

test('what a worker threw comes back as under node: its built-in class, fields, errors and cause, or the value itself', () => {
  const fields = new RangeError('out of range') as RangeError & { code?: string; extra?: unknown };
  fields.code = 'E_X';
  fields.extra = { a: [1, 2] };
  const back = deserializeThrown(serializeThrown(fields, fakeRanges()), fakeRanges()) as typeof fields;
  assert.ok(back instanceof RangeError);
  assert.equal(Object.prototype.toString.call(back), '[object Error]');
  assert.equal(back.message, 'out of range');
  assert.equal(back.code, 'E_X');
  assert.deepEqual(back.extra, { a: [1, 2] });
  assert.deepEqual(Object.keys(back), ['code', 'extra']);
  assert.equal(back.stack, fields.stack);
  const aggregate = deserializeThrown(serializeThrown(new AggregateError([new TypeError('b')], 'agg', { cause: new SyntaxError('c') }), fakeRanges()), fakeRanges()) as AggregateError;
  // Node's own serialization knows no AggregateError: an Error with its name, errors and cause.
  assert.equal(aggregate.constructor, Error);
  assert.equal(aggregate.name, 'AggregateError');
  assert.ok(aggregate.errors[0] instanceof TypeError);
  assert.ok(aggregate.cause instanceof SyntaxError);
  class TaskError extends Error { override name = 'TaskError'; handler = (): void => {}; }
  const custom = deserializeThrown(serializeThrown(new TaskError('t'), fakeRanges()), fakeRanges()) as Error;
  assert.equal(custom.constructor, Error);
  assert.equal(custom.name, 'TaskError');
  assert.equal((custom as unknown as { handler?: unknown }).handler, undefined, 'functions are left out');
  assert.equal(deserializeThrown(serializeThrown(42, fakeRanges()), fakeRanges()), 42);
  assert.deepEqual(deserializeThrown(serializeThrown({ reason: 'x' }, fakeRanges()), fakeRanges()), { reason: 'x' });
  // A symbol arrives as node's worker gives it: the registered symbol of its description (a string until session 46).
  assert.equal(deserializeThrown(serializeThrown(Symbol('s'), fakeRanges()), fakeRanges()), Symbol.for('s'));
  assert.equal(deserializeThrown(serializeThrown(Symbol(), fakeRanges()), fakeRanges()), Symbol.for(''));
  assert.equal(deserializeThrown(serializeThrown(Symbol.for('r'), fakeRanges()), fakeRanges()), Symbol.for('r'));
  // A value that cannot be cloned, as its text.
  const named = function named(): void {};
  assert.equal(deserializeThrown(serializeThrown(named, fakeRanges()), fakeRanges()), String(named));
});

test('a typed array or DataView in a clone comes back with a buffer of its own, as under node, the large ones too', () => {
  const ranges = fakeRanges();
  const record = new Uint8Array(14);
  new DataView(record.buffer).setFloat64(6, 2.5, true);
  const value = { stats: new Float64Array([1, 2, 3]), odd: new Int8Array([5, 6, 7]), record, view: new DataView(new ArrayBuffer(6)), big: new Uint8Array(65536) };
  value.view.setInt16(4, -3);
  const back = deserializeValue(serializeValue(value, ranges), ranges) as typeof value;
  for (const view of [back.stats, back.odd, back.record, back.view, back.big]) {
    assert.equal(view.byteOffset, 0);
    assert.equal(view.buffer.byteLength, view.byteLength);
  }
  assert.deepEqual(Array.from(new Float64Array(back.stats.buffer)), [1, 2, 3]);
  assert.deepEqual(back.odd, new Int8Array([5, 6, 7]));
  assert.equal(new DataView(back.record.buffer).getFloat64(6, true), 2.5);
  assert.equal(new DataView(back.view.buffer).getInt16(4), -3);
  // 64 KiB and more too (session 18; they were views of the clone's bytes): `new Float64Array(big.buffer)` reads the array.
  assert.equal(back.big.length, 65536);
});

test('a Buffer in a clone comes back as a Uint8Array, as under node, holding its bytes only (small: its own buffer)', () => {
  const ranges = fakeRanges();
  const large = Buffer.alloc(70_000, 7);
  const back = deserializeValue(serializeValue({ small: Buffer.from('hello'), large }, ranges), ranges) as { small: Uint8Array; large: Uint8Array };
  assert.equal(Object.getPrototypeOf(back.small), Uint8Array.prototype);
  assert.equal(Object.getPrototypeOf(back.large), Uint8Array.prototype);
  assert.equal(back.small.byteOffset, 0);
  assert.equal(Buffer.from(back.small.buffer).toString(), 'hello');
  assert.equal(back.large.length, 70_000);
  assert.equal(back.large[69_999], 7);
});

test('what a thread reads once (a remote worker\'s workerData) gives every typed array a buffer of its own, the large ones too', () => {
  const ranges = fakeRanges();
  const table = new Float64Array(20_000).map((_, i) => i);
  const back = deserializeValue(serializeValue({ table, label: 'x' }, ranges), ranges) as { table: Float64Array };
  assert.equal(back.table.byteOffset, 0);
  assert.equal(back.table.buffer.byteLength, table.byteLength);
  assert.equal(new Float64Array(back.table.buffer)[19_999], 19_999);
});

test('a small plain message travels as JSON text and comes back as the structured clone would; anything else by the clone', () => {
  const ranges = fakeRanges();
  const roundTrip = (value: unknown) => {
    const message = serializeMessage(value, ranges);
    return { back: deserializeMessage(message, ranges), json: message.form !== undefined };
  };
  const simple: unknown[] = [
    { index: 7, text: 'burst' }, 'a string \u{1F600} \uD800 lone', 0, 1e21, -5.5, true, null, [1, 'two', [3, { four: 4 }], null],
    { nested: { deeper: { list: [false, 'x'] } }, __proto__x: 1 }, JSON.parse('{"__proto__": {"a": 1}, "7": "seven", "b": 2}'), [],
  ];
  for (const value of simple) {
    const { back, json } = roundTrip(value);
    assert.ok(json, `${JSON.stringify(value)} goes as JSON`);
    assert.deepStrictEqual(back, structuredClone(value));
    if (typeof value === 'object' && value !== null) assert.deepEqual(Object.keys(back as object), Object.keys(structuredClone(value) as object), 'keys in the clone\'s order');
  }
  const shared = { s: 1 };
  const cyclic: Record<string, unknown> = { a: 1 };
  cyclic.self = cyclic;
  const withExtra = Object.assign([1, 2], { extra: true });
  const others: unknown[] = [
    { n: NaN }, { z: -0 }, { i: Infinity }, { u: undefined }, undefined, [1, , 3], withExtra, Object.create(null), new Date(5), 10n,
    { twice: [shared, shared] }, cyclic, { big: Array.from({ length: 100 }, (_, k) => k) }, { deep: { a: { b: { c: { d: 1 } } } } }, new Map([[1, 2]]),
  ];
  for (const value of others) {
    const { back, json } = roundTrip(value);
    assert.ok(!json, 'goes by the structured clone');
    assert.deepStrictEqual(back, structuredClone(value));
  }
  const twice = roundTrip({ twice: [shared, shared] }).back as { twice: object[] };
  assert.equal(twice.twice[0], twice.twice[1], 'a shared object stays one object');
  // A getter runs once, as the clone's.
  let reads = 0;
  const withGetter = { get value() { reads += 1; return reads; } };
  assert.deepEqual(roundTrip(withGetter).back, { value: 1 });
  assert.equal(reads, 1);
  // Also when what follows it is not JSON's (the structured clone serves the message): the getter is not called twice.
  let laterReads = 0;
  const getterThenDate = { get value() { laterReads += 1; return laterReads; }, when: new Date(5) };
  assert.deepEqual(roundTrip(getterThenDate).back, { value: 1, when: new Date(5) });
  assert.equal(laterReads, 1);
  // Not cloneable: DataCloneError in the poster, as under Node.
  assert.throws(() => serializeMessage({ f: () => 1 }, ranges), { name: 'DataCloneError' });
  assert.throws(() => serializeMessage(new Proxy({}, {}), ranges), { name: 'DataCloneError' });
});

test('bare buffers cross wherever the structured clone reaches them: a class instance\'s field, an Object.create object, an array\'s holes and named properties, an Error\'s cause', () => {
  const ranges = fakeRanges();
  const sab = new SharedArrayBuffer(16);
  ranges.add(8192, sab);
  class Counter { buffer: SharedArrayBuffer; constructor(buffer: SharedArrayBuffer) { this.buffer = buffer; } get twice(): number { return 2; } }
  const derived = Object.assign(Object.create({ kind: 'defaults' }) as Record<string, unknown>, { buffer: sab, n: 1 });
  const holey: unknown[] = [sab, , 3];
  (holey as unknown as Record<string, unknown>).header = 'h';
  const named: unknown[] = [1, 2];
  (named as unknown as Record<string, unknown>).header = sab;
  const error = new RangeError('failed', { cause: { sab } });
  const back = deserializeValue(serializeValue({ counter: new Counter(sab), derived, holey, named, error }, ranges), ranges) as Record<string, unknown>;
  // As V8 clones them: the instance and the derived object as plain objects of their own properties.
  assert.deepEqual(Object.keys(back.counter as object), ['buffer']);
  assert.equal(Object.getPrototypeOf(back.counter), Object.prototype);
  assert.equal((back.counter as { buffer: unknown }).buffer, sab);
  assert.deepEqual(Object.keys(back.derived as object), ['buffer', 'n']);
  assert.equal((back.derived as { buffer: unknown }).buffer, sab);
  const holeyBack = back.holey as unknown[];
  assert.equal(holeyBack.length, 3);
  assert.equal(holeyBack[0], sab);
  assert.equal(1 in holeyBack, false, 'a hole stays a hole');
  assert.equal((holeyBack as unknown as Record<string, unknown>).header, 'h', 'a named property of an array copied for its elements stays');
  assert.equal((back.named as unknown as Record<string, unknown>).header, sab);
  const errorBack = back.error as RangeError & { cause: { sab: SharedArrayBuffer } };
  assert.ok(errorBack instanceof RangeError);
  assert.equal(errorBack.message, 'failed');
  assert.equal(errorBack.stack, error.stack);
  assert.equal(errorBack.cause.sab, sab);
  // Values with no buffer in them go to V8 as they are (no copy).
  const plainError = new Error('x', { cause: 1 });
  assert.equal((deserializeValue(serializeValue(plainError, ranges), ranges) as Error).cause, 1);
});

test('a KeyObject (secret, public, private), a SocketAddress and a BlockList cross nodes as copies of their state', async () => {
  const { createSecretKey, generateKeyPairSync, createHmac, sign, verify } = await import('node:crypto');
  const { BlockList, SocketAddress } = await import('node:net');
  const ranges = fakeRanges();
  const secret = createSecretKey(Buffer.from('a secret of sixteen+ bytes'));
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const blockList = new BlockList();
  blockList.addSubnet('10.0.0.0', 8);
  blockList.addAddress('192.168.1.7');
  blockList.addRange('172.16.0.10', '172.16.0.20');
  blockList.addSubnet('fe80::', 64, 'ipv6');
  const address = new SocketAddress({ address: '::1', port: 8080, family: 'ipv6', flowlabel: 7 });
  const value = { secret, publicKey, privateKey, blockList, address };
  assert.equal(holdsNodeLocalMemory(value, ranges, 100), false, 'a worker given them may start on another node');
  const back = deserializeValue(serializeValue(value, ranges), ranges) as typeof value;
  assert.ok(back.secret.equals(secret));
  assert.equal(createHmac('sha256', back.secret).update('x').digest('hex'), createHmac('sha256', secret).update('x').digest('hex'));
  assert.ok(back.publicKey.equals(publicKey));
  assert.equal(back.privateKey.type, 'private');
  assert.ok(verify(null, Buffer.from('m'), publicKey, sign(null, Buffer.from('m'), back.privateKey)));
  // The same rules (Node 24 lists them in an order of its own, which adding them again need not keep).
  assert.deepEqual([...back.blockList.rules].sort(), [...blockList.rules].sort());
  for (const [ip, family] of [['10.1.2.3', 'ipv4'], ['11.0.0.1', 'ipv4'], ['172.16.0.15', 'ipv4'], ['fe80::1', 'ipv6']] as const) {
    assert.equal(back.blockList.check(ip, family), blockList.check(ip, family), ip);
  }
  assert.deepEqual([back.address.address, back.address.port, back.address.family, back.address.flowlabel], ['::1', 8080, 'ipv6', 7]);
  assert.ok(back.address instanceof SocketAddress);
});

test('a clone lists the weighted buffers it carries after the value, which the receiver reads without decoding it; bytes without that list are DSM_ERR_FRAME', () => {
  const ranges = fakeRanges();
  const a = new SharedArrayBuffer(64), b = new SharedArrayBuffer(128);
  ranges.add(4096, a);
  ranges.add(8192, b);
  const tokens = [3 * rangeTokenOwners + 1, 7, 5 * rangeTokenOwners + 2];
  const given = [...tokens];
  const held: number[][] = [];
  const withTokens: BufferRanges = { ...ranges, onEscape: () => given.shift()!, onHold: (offset, byteLength, token) => { held.push([offset, byteLength, token]); } };
  const bytes = serializeValue({ a, again: new Int32Array(a, 8, 2), b }, withTokens);
  // Weight 0 (token 7: weight 0, owner 7) holds nothing to give back: not listed.
  assert.deepEqual(heldRangesOf(bytes, 'node 1'), [4096, 64, tokens[0], 8192, 128, tokens[2]]);
  const back = deserializeValue(bytes, withTokens) as { a: SharedArrayBuffer; b: SharedArrayBuffer };
  assert.equal(back.b, b);
  assert.deepEqual(held, [[4096, 64, tokens[0]], [4096, 64, 7], [8192, 128, tokens[2]]]);
  assert.deepEqual(heldRangesOf(serializeValue({ n: 1 }, ranges), 'node 1'), []);
  // A buffer alone, whose offset's first non-zero byte is an ArrayBufferView's tag ('V'): V8 peeks past a buffer
  // for one, so the trailer must not start with it (5767168 as a float64 is 00 00 00 00 00 00 56 41).
  const peeked = new SharedArrayBuffer(4096);
  ranges.add(5767168, peeked);
  const alone = { ...ranges, onEscape: () => 9 * rangeTokenOwners };
  const aloneBytes = serializeValue(peeked, alone);
  assert.equal(deserializeValue(aloneBytes, ranges), peeked);
  assert.deepEqual(heldRangesOf(aloneBytes, 'node 1'), [5767168, 4096, 9 * rangeTokenOwners]);
  const small = deserializeValue(serializeValue(new Uint8Array([1, 2]).buffer, ranges), ranges) as ArrayBuffer;
  assert.deepEqual(new Uint8Array(small), new Uint8Array([1, 2]));
  assert.throws(() => heldRangesOf(new Uint8Array(4), 'node 3'), (error: { code: string; message: string }) => error.code === 'DSM_ERR_FRAME' && /node 3/.test(error.message));
  const forged = new Uint8Array(bytes);
  new DataView(forged.buffer).setUint32(forged.byteLength - 8, 1e6, true);
  assert.throws(() => heldRangesOf(forged, 'node 2'), (error: { code: string; message: string }) => error.code === 'DSM_ERR_FRAME' && /1000000 held ranges/.test(error.message));
});
