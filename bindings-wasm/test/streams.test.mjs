// The stream protocols as JS objects over in-memory connections: a Gnutella 0.6 leaf and
// ultrapeer, and two BitTorrent sessions trading a torrent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamNet, overlay, bencode, utf8, hexBytes, codeOf } from './net.mjs';

const { GnutellaServent, TorrentSession } = overlay;

test('a leaf\'s search reaches its ultrapeer, which answers with its file and SHA-1 (Gnutella 0.6, ultrapeers)', () => {
  const net = new StreamNet();
  const upAddr = '127.0.0.1:6346';
  const up = new GnutellaServent({ role: 'ultrapeer', listen: upAddr }, 1);
  const leaf = new GnutellaServent({ role: 'leaf', listen: '127.0.0.1:6347' }, 2);
  const file = utf8('a song, in bytes');
  up.share(0, [{ index: 3, size: file.length, name: 'js song.ogg', sha1: overlay.sha1(file) }]);
  net.add(upAddr, up);
  net.add('127.0.0.1:6347', leaf);
  const conn = leaf.connect(0, upAddr);
  assert.ok(conn >= 0, 'our own dials have non-negative ids');
  const events = (a) => net.peers.get(a).events;
  net.until(() => events('127.0.0.1:6347').some((e) => e.type === 'connected' && e.role === 'ultrapeer')
    && events(upAddr).some((e) => e.type === 'connected' && e.role === 'leaf' && e.conn < 0));
  net.now += 5_000_000; // past the QRP table's send
  net.until(() => !net.step());
  const q = leaf.search(net.now, 'js song');
  net.until(() => events('127.0.0.1:6347').some((e) => e.type === 'hits' && e.query === q));
  const hit = events('127.0.0.1:6347').find((e) => e.type === 'hits' && e.query === q);
  assert.deepEqual(hit.results, [{ index: 3, size: file.length, name: 'js song.ogg', sha1: overlay.sha1(file) }]);
  assert.equal(leaf.status().peers.length, 1);
});

test('servent arguments are checked: names, sizes, indices, SHA-1s, connections', () => {
  const s = new GnutellaServent({ role: 'leaf', listen: '127.0.0.1:6347' }, 2);
  assert.equal(codeOf(() => s.share(0, [{ index: 1, size: 1, name: 'a/b' }])), 'InvalidArgument');
  assert.equal(codeOf(() => s.share(0, [{ index: 1, size: 2 ** 32, name: 'big' }])), 'InvalidArgument');
  assert.equal(codeOf(() => s.share(0, [{ index: 1, size: 1, name: 'a' }, { index: 1, size: 1, name: 'b' }])), 'InvalidArgument');
  assert.equal(codeOf(() => s.share(0, [{ index: 1, size: 1, name: 'a', sha1: 'xyz' }])), 'InvalidArgument');
  assert.equal(codeOf(() => s.search(0, 'anything')), 'NotConnected');
  assert.equal(codeOf(() => s.upload(0, 5, utf8('x'))), 'NoUpload');
  const inbound = s.accepted(0, '127.0.0.1:9999');
  assert.ok(inbound < 0, 'accepted connections have negative ids');
  s.closed(0, inbound);
  assert.equal(s.status().peers.length, 0);
  assert.equal(codeOf(() => new GnutellaServent({ role: 'boss', listen: '127.0.0.1:1' }, 1)), 'InvalidArgument');
  assert.equal(s.status().sharedFiles, 0);
});

/// A single-file torrent of `content` in pieces of `pieceLength` (BEP 3 metainfo).
function torrentOf(content, pieceLength) {
  const hashes = [];
  for (let at = 0; at < content.length; at += pieceLength) hashes.push(...hexBytes(overlay.sha1(content.subarray(at, at + pieceLength))));
  return bencode({ announce: 'http://127.0.0.1:1/announce', info: { length: content.length, name: 'js.bin', 'piece length': pieceLength, pieces: Uint8Array.from(hashes) } });
}

test('two sessions trade a 5-piece torrent and the leecher\'s bytes equal the seed\'s (BEP 3)', () => {
  const content = Uint8Array.from({ length: 4 * 32768 + 1000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);
  const torrent = torrentOf(content, 32768);
  const info = overlay.torrentInfo(torrent);
  assert.equal(info.pieceCount, 5);
  assert.equal(info.totalLength, content.length);
  const peerId = (tag) => Array.from(utf8(`-OV0001-${tag}`.padEnd(20, '0')), (b) => b.toString(16).padStart(2, '0')).join('');
  const seed = new TorrentSession(torrent, { peerId: peerId('seed') }, 1);
  const leech = new TorrentSession(torrent, { peerId: peerId('leech') }, 2);
  for (let p = 0; p < 5; p++) seed.havePiece(0, p);
  const got = new Uint8Array(content.length);
  const reads = [];
  const net = new StreamNet();
  net.add('127.0.0.1:6881', seed, {
    handler: (e) => { if (e.type === 'read') reads.push(e); },
    after: (node, now) => {
      const r = reads.shift();
      if (!r) return false;
      const at = r.block.piece * 32768 + r.block.begin;
      node.sendBlock(now, r.conn, r.block, content.subarray(at, at + r.block.length));
      return true;
    },
  });
  net.add('127.0.0.1:6882', leech, {
    handler: (e, node, now) => {
      if (e.type === 'write') got.set(e.data, e.piece * 32768 + e.begin);
      if (e.type === 'verify') {
        const piece = got.subarray(e.piece * 32768, e.piece * 32768 + 32768);
        node.pieceChecked(now, e.piece, overlay.sha1(piece) === e.hash);
      }
    },
  });
  leech.addPeer(0, '127.0.0.1:6881');
  net.until(() => leech.status(net.now).complete);
  assert.deepEqual(got, content);
  assert.equal(seed.status(net.now).uploaded, content.length);
});

test('session arguments are checked: torrents, peer ids, blocks, reads', () => {
  const torrent = torrentOf(new Uint8Array(40000), 32768);
  const config = { peerId: '00'.repeat(20) };
  assert.equal(codeOf(() => overlay.torrentInfo(utf8('d4:spam4:eggse'))), 'InvalidArgument');
  assert.equal(codeOf(() => new TorrentSession(torrent, { peerId: 'short' }, 1)), 'InvalidArgument');
  const s = new TorrentSession(torrent, config, 1);
  assert.equal(codeOf(() => s.havePiece(0, 9)), 'InvalidArgument');
  for (const piece of [2 ** 32 + 3, -1, NaN, undefined]) assert.equal(codeOf(() => s.havePiece(0, piece)), 'InvalidArgument');
  assert.equal(codeOf(() => s.pieceChecked(0, 0, 'true')), 'InvalidArgument');
  assert.equal(codeOf(() => new TorrentSession(torrent, { peerId: '00'.repeat(20), maxConnection: 4 }, 1)), 'InvalidArgument');
  assert.equal(codeOf(() => s.pieceChecked(0, 0, true)), 'NotAwaitingCheck');
  assert.equal(codeOf(() => s.sendBlock(0, 3, { piece: 0, begin: 0, length: 16384 }, new Uint8Array(16384))), 'UnknownConnection');
  assert.equal(codeOf(() => s.received(0, 0, new Uint8Array(TorrentSession.maxRead + 1))), 'InvalidArgument');
  assert.equal(codeOf(() => s.addPeer(0, 'nowhere')), 'InvalidArgument');
  assert.equal(s.status(0).have, 0);
});

test('bridge frames round-trip for both families, and malformed ones throw InvalidArgument', () => {
  for (const to of ['127.0.0.1:7000', '[::1]:65535']) {
    const frame = overlay.bridgeFrame(to, utf8('d1:y1:qe'));
    assert.equal(frame[0], to.startsWith('[') ? 18 : 6);
    const back = overlay.bridgeUnframe(frame);
    assert.equal(back.from, to);
    assert.deepEqual(back.datagram, utf8('d1:y1:qe'));
  }
  assert.equal(codeOf(() => overlay.bridgeUnframe(new Uint8Array([7, 1, 2]))), 'InvalidArgument');
  assert.equal(codeOf(() => overlay.bridgeFrame('no', utf8('x'))), 'InvalidArgument');
});
