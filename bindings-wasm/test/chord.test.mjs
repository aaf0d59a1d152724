// Chord (Stoica et al., SIGCOMM 2001) peers as JS objects: a ring in one Node process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatagramNet, overlay, utf8, text, codeOf, errorOf } from './net.mjs';

const { ChordNode } = overlay;
const addr = (i) => `127.0.0.1:${7000 + i}`;
const fast = { stabilizeIntervalMs: 200, fixFingersIntervalMs: 100, checkPredecessorIntervalMs: 200 };

function ring(n) {
  const net = new DatagramNet();
  net.add(addr(0), new ChordNode(addr(0), 1, fast));
  net.command(addr(0), (c, now) => c.create(now));
  for (let i = 1; i < n; i++) {
    net.add(addr(i), new ChordNode(addr(i), 100 + i, fast));
    const q = net.command(addr(i), (c, now) => c.join(now, addr(0)));
    net.until(() => net.event(addr(i), 'joined', q));
  }
  return net;
}

// Section 4: the successor of a key is the first node whose id equals or follows it.
function successorOf(net, keyHex) {
  const ids = [...net.peers.values()].map((p) => p.node.status().node).sort((a, b) => (a.id < b.id ? -1 : 1));
  return ids.find((n) => n.id >= keyHex) ?? ids[0];
}

test('a ring of 8 JS peers stabilizes into one cycle of successors (Chord section 4.6)', () => {
  const net = ring(8);
  const sorted = [...net.peers.keys()].map((a) => net.peers.get(a).node.status()).sort((x, y) => (x.node.id < y.node.id ? -1 : 1));
  net.until(() => sorted.every((s, i) => {
    const now = net.peers.get(s.node.addr).node.status();
    return now.successors[0]?.id === sorted[(i + 1) % sorted.length].node.id
      && now.predecessor?.id === sorted[(i + sorted.length - 1) % sorted.length].node.id;
  }));
});

test('lookups from every peer find the key\'s successor, and puts are read from other peers (Chord section 4.2)', () => {
  const net = ring(8);
  net.run(5e6);
  for (let k = 0; k < 16; k++) {
    const key = utf8(`key-${k}`);
    const from = addr(k % 8);
    const q = net.command(from, (c, now) => c.lookup(now, key));
    net.until(() => net.event(from, 'lookupDone', q) || net.event(from, 'failed', q));
    const done = net.event(from, 'lookupDone', q);
    assert.ok(done, `lookup of key-${k} finished`);
    assert.equal(done.key, ChordNode.keyId(key));
    assert.equal(done.owner.id, successorOf(net, done.key).id);
    const put = net.command(from, (c, now) => c.put(now, key, utf8(`value-${k}`)));
    net.until(() => net.event(from, 'putDone', put));
    const reader = addr((k + 3) % 8);
    const get = net.command(reader, (c, now) => c.get(now, key));
    net.until(() => net.event(reader, 'getDone', get));
    assert.equal(text(net.event(reader, 'getDone', get).value), `value-${k}`);
  }
  const missing = net.command(addr(1), (c, now) => c.get(now, utf8('never stored')));
  net.until(() => net.event(addr(1), 'getDone', missing));
  assert.equal(net.event(addr(1), 'getDone', missing).value, null);
});

test('a graceful leave hands the keys to the successor (Chord section 4.4)', () => {
  const net = ring(5);
  net.run(5e6);
  for (let k = 0; k < 20; k++) {
    const q = net.command(addr(0), (c, now) => c.put(now, utf8(`k${k}`), utf8(`v${k}`)));
    net.until(() => net.event(addr(0), 'putDone', q));
  }
  const leaver = addr(2);
  net.command(leaver, (c, now) => c.leave(now));
  net.until(() => net.event(leaver, 'left'));
  net.peers.delete(leaver);
  net.dropTo.add(leaver);
  net.run(3e6);
  for (let k = 0; k < 20; k++) {
    const q = net.command(addr(4), (c, now) => c.get(now, utf8(`k${k}`)));
    net.until(() => net.event(addr(4), 'getDone', q) || net.event(addr(4), 'failed', q));
    assert.equal(text(net.event(addr(4), 'getDone', q).value), `v${k}`);
  }
});

test('refused commands throw Errors with a code and change nothing', () => {
  const c = new ChordNode(addr(0), 1);
  assert.equal(codeOf(() => c.put(0, utf8('k'), utf8('v'))), 'NotMember');
  assert.equal(codeOf(() => c.join(0, 'not an address')), 'InvalidArgument');
  assert.equal(codeOf(() => c.lookup(-1, utf8('k'))), 'InvalidArgument');
  assert.equal(codeOf(() => c.lookup(0.5, utf8('k'))), 'InvalidArgument');
  assert.equal(codeOf(() => new ChordNode('127.0.0.1', 1)), 'InvalidArgument');
  assert.equal(codeOf(() => new ChordNode(addr(0), 1, { successors: 'many' })), 'InvalidArgument');
  assert.match(errorOf(() => new ChordNode(addr(0), 1, { successors: 'many' })).message, /successors/);
  assert.equal(codeOf(() => new ChordNode(addr(0), 1, { stabiliseIntervalMs: 100 })), 'InvalidArgument');
  assert.equal(codeOf(() => new ChordNode(addr(0), 1, { stabilizeIntervalMs: 0 })), 'InvalidArgument');
  for (const seed of [NaN, -1, 0.5, 2 ** 54]) assert.equal(codeOf(() => new ChordNode(addr(0), seed)), 'InvalidArgument');
  assert.equal(codeOf(() => c.lookup(2 ** 53 + 2, utf8('k'))), 'InvalidArgument');
  assert.equal(c.status().phase, 'idle');
  c.create(0);
  assert.equal(codeOf(() => c.create(0)), 'AlreadyMember');
  assert.equal(codeOf(() => c.join(0, addr(1))), 'AlreadyMember');
  assert.equal(codeOf(() => c.put(0, utf8('k'), new Uint8Array(100_000))), 'ValueTooLarge');
  assert.equal(c.status().phase, 'member');
  assert.equal(c.status().keys, 0);
  assert.equal(c.pollOutput(0).type, 'wait', 'the node still answers after its refusals');
});

test('node ids are SHA-256 of the address\'s canonical bytes, as the node itself says (Chord section 4.1)', () => {
  for (const a of ['127.0.0.1:7000', '[::1]:7000']) {
    assert.equal(ChordNode.nodeId(a), new ChordNode(a, 1).status().node.id);
  }
  assert.equal(ChordNode.nodeId('127.0.0.1:7000'), ChordNode.keyId(Uint8Array.of(127, 0, 0, 1, 0x1b, 0x58)));
});

test('malformed datagrams are dropped and counted, never thrown', () => {
  const c = new ChordNode(addr(0), 1);
  c.create(0);
  for (let i = 0; i < 1000; i++) {
    const junk = Uint8Array.from({ length: i % 64 }, (_, j) => (i * 31 + j * 7) & 0xff);
    c.handleDatagram(1000 + i, addr(9), junk);
    while (c.pollOutput(1000 + i).type !== 'wait');
  }
  const s = c.status();
  assert.equal(s.received, 1000);
  assert.ok(s.malformed + s.wrongVersion >= 990, `dropped ${s.malformed} + ${s.wrongVersion}`);
  assert.equal(ChordNode.describe(utf8('junk')), undefined);
});

test('the clock never goes back: an earlier nowUs is taken as the latest', () => {
  const c = new ChordNode(addr(0), 1);
  c.create(5_000_000);
  const first = c.pollOutput(1);
  assert.equal(first.type, 'wait');
  assert.ok(first.untilUs > 5_000_000);
});
