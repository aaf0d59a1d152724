// In-memory networks for the Node tests: many peers in one process, a virtual clock, and
// the sans-IO pump (drain pollOutput after every input, wake at the earliest deadline).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
export const overlay = require('../pkg/node/overlay_wasm.js');

/// Datagram peers (Chord, the DHT) exchanging datagrams through a queue, in virtual time.
export class DatagramNet {
  constructor({ latencyUs = 1000 } = {}) {
    this.now = 0;
    this.latencyUs = latencyUs;
    this.peers = new Map(); // addr -> { node, wake, events }
    this.queue = []; // { at, from, to, datagram }
    this.dropTo = new Set(); // addresses that vanished
  }

  add(addr, node) {
    const peer = { node, wake: 0, events: [] };
    this.peers.set(addr, peer);
    this.drain(addr);
    return peer;
  }

  /// Runs `f(node, now)` on a peer (a command), then drains it.
  command(addr, f) {
    const result = f(this.peers.get(addr).node, this.now);
    this.drain(addr);
    return result;
  }

  drain(addr) {
    const peer = this.peers.get(addr);
    for (let i = 0; i < 100000; i++) {
      const out = peer.node.pollOutput(this.now);
      if (out.type === 'transmit') {
        if (!this.dropTo.has(out.to)) {
          this.queue.push({ at: this.now + this.latencyUs, from: addr, to: out.to, datagram: out.datagram });
        }
      } else if (out.type === 'event') {
        peer.events.push(out.event);
      } else {
        peer.wake = out.untilUs ?? Infinity;
        return;
      }
    }
    throw new Error(`${addr} never drained to wait`);
  }

  /// Advances virtual time by `us`, delivering datagrams and firing timers in order.
  run(us) {
    const end = this.now + us;
    for (;;) {
      let next = end;
      for (const d of this.queue) next = Math.min(next, d.at);
      for (const p of this.peers.values()) next = Math.min(next, p.wake);
      this.now = Math.max(this.now, next);
      const due = this.queue.filter((d) => d.at <= this.now);
      this.queue = this.queue.filter((d) => d.at > this.now);
      for (const d of due) {
        const peer = this.peers.get(d.to);
        if (!peer) continue;
        peer.node.handleDatagram(this.now, d.from, d.datagram);
        this.drain(d.to);
      }
      for (const [addr, p] of this.peers) if (p.wake <= this.now) this.drain(addr);
      if (this.now >= end && due.length === 0) return;
    }
  }

  /// Runs until `pred()` holds (checked every 10 ms of virtual time), at most `limitUs`.
  until(pred, limitUs = 60e6) {
    const start = this.now;
    while (!pred()) {
      if (this.now - start > limitUs) throw new Error('condition not reached in virtual time');
      this.run(10_000);
    }
  }

  /// The first event of `addr` with `type` (and query id `query`, if given), or undefined.
  event(addr, type, query) {
    return this.peers.get(addr).events.find((e) => e.type === type && (query === undefined || e.query === query));
  }
}

/// Stream peers (Gnutella, BitTorrent): connections are pairs of ids, bytes are delivered
/// at once and in order, outputs of every peer are drained until all wait.
export class StreamNet {
  constructor() {
    this.now = 0;
    this.peers = new Map(); // addr -> { node, events, handler }
    this.links = new Map(); // `${addr}/${conn}` -> { addr, conn } (the other end)
    this.inbox = []; // { addr, kind, conn, bytes }
  }

  /// `handler(event, node, now)` sees every event as it is polled; `after(node, now)`
  /// runs once the peer has drained to wait (for what must wait for that, such as a
  /// torrent's `sendBlock`), and returns whether it did something.
  add(addr, node, { handler = () => {}, after = () => false } = {}) {
    this.peers.set(addr, { node, events: [], handler, after });
  }

  step() {
    let busy = false;
    for (const [addr, p] of this.peers) {
      for (let i = 0; i < 100000; i++) {
        const out = p.node.pollOutput(this.now);
        if (out.type === 'wait') break;
        busy = true;
        if (out.type === 'connect') {
          const remote = this.peers.get(out.to);
          if (!remote) {
            this.inbox.push({ addr, kind: 'closed', conn: out.conn });
            continue;
          }
          const theirs = remote.node.accepted(this.now, addr);
          this.links.set(`${addr}/${out.conn}`, { addr: out.to, conn: theirs });
          this.links.set(`${out.to}/${theirs}`, { addr, conn: out.conn });
          this.inbox.push({ addr, kind: 'connected', conn: out.conn });
        } else if (out.type === 'transmit') {
          const other = this.links.get(`${addr}/${out.conn}`);
          if (other) this.inbox.push({ addr: other.addr, kind: 'received', conn: other.conn, bytes: out.bytes });
        } else if (out.type === 'close') {
          const other = this.links.get(`${addr}/${out.conn}`);
          this.links.delete(`${addr}/${out.conn}`);
          if (other) {
            this.links.delete(`${other.addr}/${other.conn}`);
            this.inbox.push({ addr: other.addr, kind: 'closed', conn: other.conn });
          }
        } else {
          p.events.push(out.event);
          p.handler(out.event, p.node, this.now);
        }
      }
      if (p.after(p.node, this.now)) busy = true;
    }
    const inbox = this.inbox;
    this.inbox = [];
    for (const m of inbox) {
      busy = true;
      const node = this.peers.get(m.addr).node;
      if (m.kind === 'connected') node.connected(this.now, m.conn);
      else if (m.kind === 'closed') node.closed(this.now, m.conn);
      else {
        for (let at = 0; at < m.bytes.length; at += 16384) {
          node.received(this.now, m.conn, m.bytes.subarray(at, at + 16384));
        }
      }
    }
    return busy;
  }

  /// Steps until `pred()` holds, advancing the clock 1 ms per idle round.
  until(pred, rounds = 200000) {
    for (let i = 0; i < rounds; i++) {
      if (pred()) return;
      if (!this.step()) this.now += 1000;
    }
    throw new Error('condition not reached');
  }
}

/// Bencode for building test torrents (strings, integers, lists, dicts with sorted keys).
export function bencode(v) {
  const enc = new TextEncoder();
  const parts = [];
  const walk = (x) => {
    if (typeof x === 'number') parts.push(enc.encode(`i${x}e`));
    else if (typeof x === 'string' || x instanceof Uint8Array) {
      const b = typeof x === 'string' ? enc.encode(x) : x;
      parts.push(enc.encode(`${b.length}:`), b);
    } else if (Array.isArray(x)) {
      parts.push(enc.encode('l')); x.forEach(walk); parts.push(enc.encode('e'));
    } else {
      parts.push(enc.encode('d'));
      for (const k of Object.keys(x).sort()) { walk(k); walk(x[k]); }
      parts.push(enc.encode('e'));
    }
  };
  walk(v);
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

export const utf8 = (s) => new TextEncoder().encode(s);
export const text = (b) => new TextDecoder().decode(b);
export const hexBytes = (h) => Uint8Array.from(h.match(/../g), (x) => parseInt(x, 16));

/// The error `f` throws, which must be a JS Error (fails if it throws none).
export function errorOf(f) {
  try { f(); } catch (e) {
    if (!(e instanceof Error)) throw new Error(`threw a non-Error: ${e}`);
    return e;
  }
  throw new Error('did not throw');
}

/// The code of the error `f` throws.
export const codeOf = (f) => errorOf(f).code;
