// Type-checked (tsc --strict --noEmit) against the generated declarations: the outputs are
// tagged unions that narrow on `type`, bytes are Uint8Array, absent values are null, and
// commands return numbers. A declaration that drifted from this shape fails the check.
import init, {
  ChordNode,
  DhtNode,
  GnutellaServent,
  TorrentSession,
  bridgeFrame,
  bridgeUnframe,
  torrentInfo,
  type ChordEvent,
  type DhtEvent,
} from '../../pkg/web/overlay_wasm.js';

export async function usage(): Promise<void> {
  await init();
  const chord = new ChordNode('127.0.0.1:7000', 1, { stabilizeIntervalMs: 200 });
  const query: number = chord.join(0, '127.0.0.1:7001');
  const out = chord.pollOutput(0);
  if (out.type === 'transmit') {
    const bytes: Uint8Array = out.datagram;
    const frame: Uint8Array = bridgeFrame(out.to, bytes);
    const back = bridgeUnframe(frame);
    const from: string = back.from;
    void from;
  } else if (out.type === 'event') {
    const e: ChordEvent = out.event;
    if (e.type === 'getDone') {
      const value: Uint8Array | null = e.value;
      const hops: number = e.hops;
      void value, hops;
    } else if (e.type === 'failed') {
      const reason: 'unreachable' | 'storeFull' | 'busy' | 'left' = e.reason;
      void reason;
    }
  } else {
    const until: number | null = out.untilUs;
    void until;
  }
  const status = chord.status();
  const predecessor: string | null = status.predecessor === null ? null : status.predecessor.id;
  const described = ChordNode.describe(new Uint8Array());
  const key: string | null | undefined = described?.key;
  void query, predecessor, key;

  const dht = new DhtNode('127.0.0.1:6881', 2, { restrictIps: false });
  const put = dht.put(0, new TextEncoder().encode('5:hello'));
  const target: string = put.target;
  const d = dht.pollOutput(0);
  if (d.type === 'event') {
    const e: DhtEvent = d.event;
    if (e.type === 'peers') {
      const peers: string[] = e.peers;
      void peers;
    }
  }
  for (const bucket of dht.buckets()) {
    const index: number = bucket.index;
    const ids: string[] = bucket.nodes.map((n) => n.id);
    void index, ids;
  }

  const servent = new GnutellaServent({ role: 'leaf', listen: '127.0.0.1:6346' }, 3);
  servent.share(0, [{ index: 1, size: 10, name: 'a.txt' }]);
  const g = servent.pollOutput(0);
  if (g.type === 'connect') {
    const conn: number = g.conn;
    servent.connected(0, conn);
  }

  const torrent = new Uint8Array();
  const info = torrentInfo(torrent);
  const session = new TorrentSession(torrent, { peerId: '00'.repeat(20) }, 4);
  const t = session.pollOutput(0);
  if (t.type === 'event' && t.event.type === 'read') {
    session.sendBlock(0, t.event.conn, t.event.block, new Uint8Array(t.event.block.length));
  }
  const max: number = TorrentSession.maxRead;
  void target, info.pieceCount, max;
}
