// The Mainline DHT (Kademlia as BEP 5 speaks it) as JS objects: a DHT in one Node process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DatagramNet, overlay, utf8, text, codeOf } from './net.mjs';

const { DhtNode } = overlay;
const addr = (i) => `127.0.0.1:${8000 + i}`;
const N = 16;

function dht() {
  const net = new DatagramNet();
  for (let i = 0; i < N; i++) net.add(addr(i), new DhtNode(addr(i), 1000 + i));
  for (let i = 1; i < N; i++) {
    const q = net.command(addr(i), (d, now) => d.bootstrap(now, [addr(0)]));
    net.until(() => net.event(addr(i), 'bootstrapped', q));
  }
  net.run(2e6);
  return net;
}

const xor = (a, b) => BigInt(`0x${a}`) ^ BigInt(`0x${b}`);

test('find_node converges on the K closest nodes by XOR distance (Kademlia section 2.3, BEP 5)', () => {
  const net = dht();
  const ids = [...net.peers.values()].map((p) => p.node.status().node);
  for (const target of ['0'.repeat(40), 'f'.repeat(40), ids[7].id]) {
    const q = net.command(addr(3), (d, now) => d.findNode(now, target));
    net.until(() => net.event(addr(3), 'nodes', q));
    const found = net.event(addr(3), 'nodes', q).nodes;
    const truth = ids.filter((n) => n.id !== net.peers.get(addr(3)).node.status().node.id)
      .sort((a, b) => (xor(a.id, target) < xor(b.id, target) ? -1 : 1));
    assert.deepEqual(found.slice(0, 4).map((n) => n.id), truth.slice(0, 4).map((n) => n.id));
  }
});

test('a BEP 44 immutable put is read by another node, and an announce is found by get_peers (BEP 5)', () => {
  const net = dht();
  const value = utf8('12:hello, world');
  const put = net.command(addr(3), (d, now) => d.put(now, value));
  assert.equal(put.target, overlay.sha1(value));
  net.until(() => net.event(addr(3), 'stored', put.query));
  assert.ok(net.event(addr(3), 'stored', put.query).stored > 0);
  const get = net.command(addr(11), (d, now) => d.get(now, put.target));
  net.until(() => net.event(addr(11), 'item', get));
  assert.equal(text(net.event(addr(11), 'item', get).value), '12:hello, world');

  const infoHash = 'ab'.repeat(20);
  const ann = net.command(addr(5), (d, now) => d.announce(now, infoHash, 6881));
  net.until(() => net.event(addr(5), 'announced', ann));
  const peers = net.command(addr(9), (d, now) => d.getPeers(now, infoHash));
  net.until(() => net.event(addr(9), 'peers', peers));
  assert.deepEqual(net.event(addr(9), 'peers', peers).peers, ['127.0.0.1:6881']);
  const buckets = net.peers.get(addr(9)).node.buckets();
  assert.equal(buckets.reduce((n, b) => n + b.nodes.length, 0), net.peers.get(addr(9)).node.status().tableNodes);
});

test('refused commands throw Errors with a code and change nothing', () => {
  const d = new DhtNode(addr(0), 1);
  assert.equal(codeOf(() => d.findNode(0, 'abc')), 'InvalidArgument');
  assert.equal(codeOf(() => d.getPeers(0, 'zz'.repeat(20))), 'InvalidArgument');
  assert.equal(codeOf(() => d.bootstrap(0, [])), 'NoNodes');
  assert.equal(codeOf(() => d.bootstrap(0, ['nowhere'])), 'InvalidArgument');
  assert.equal(codeOf(() => d.put(0, utf8('not bencode'))), 'BadItem');
  assert.equal(codeOf(() => d.put(0, utf8(`1001:${'x'.repeat(1001)}`))), 'BadItem');
  assert.equal(codeOf(() => new DhtNode(addr(0), 1, { k: 'eight' })), 'InvalidArgument');
  assert.equal(codeOf(() => new DhtNode(addr(0), 1, { requestTimeoutMs: 0 })), 'InvalidArgument');
  assert.equal(codeOf(() => d.bootstrap(0, [1])), 'InvalidArgument');
  for (const port of [70000, -1, 0.5, NaN]) assert.equal(codeOf(() => d.announce(0, 'ab'.repeat(20), port)), 'InvalidArgument');
  assert.equal(d.status().lookups, 0);
  const q = d.bootstrap(0, [addr(1)]);
  assert.equal(typeof q, 'number', 'the node still takes commands after its refusals');
});

test('malformed datagrams are dropped and counted, never thrown', () => {
  const d = new DhtNode(addr(0), 1);
  for (let i = 0; i < 1000; i++) {
    d.handleDatagram(i, addr(1), Uint8Array.from({ length: i % 80 }, (_, j) => (i * 13 + j) & 0xff));
    while (d.pollOutput(i).type !== 'wait');
  }
  const s = d.status();
  assert.equal(s.received, 1000);
  assert.ok(s.malformed >= 990, `counted ${s.malformed}`);
});
