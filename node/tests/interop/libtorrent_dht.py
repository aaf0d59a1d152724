#!/usr/bin/env python3
"""A libtorrent (2.x) Mainline DHT node driven by JSON lines, for interop tests.

Usage:
    python3 libtorrent_dht.py --port P [--bootstrap 127.0.0.1:Q ...] [--log-packets FILE]
    python3 libtorrent_dht.py --port P --bench [--duration S]

Run it ONLY inside a private network namespace with just loopback up
(`unshare -n sh -c 'ip link set lo up; ...'`): the settings below remove all of
libtorrent's protections against abuse, which is what a loopback test needs.

Protocol (command mode): one JSON object per line on stdin, exactly one JSON
line answered on stdout per command (flushed). On start it prints
    {"ready": true, "port": P, "node_id": "<hex>", "bootstrapped": [...]}
after pinging every --bootstrap node (up to 5 s each; the ones that answered
are listed). Commands:
    {"cmd":"add_node","addr":"127.0.0.1:Q"[,"timeout":5]}
        -> {"ok":true,"id":"<hex id the node answered with>","rtt_ms":n}
           or {"ok":false,"error":"..."}: libtorrent sends one query to the node
           (`get_peers` for a random id in its own bucket, or `ping` when that
           bucket is full); ok = it answered and is now in the routing table.
    {"cmd":"announce","ih":"<40 hex>","port":N[,"seed":false,"implied_port":false,"timeout":20]}
        -> {"ok":bool,"nodes":k,"acked_by":["127.0.0.1:Q",...],"errors":[...],
            "self_acked":bool}: runs a get_peers lookup, then sends announce_peer
           (with the tokens it got) to the k closest nodes that returned a
           token; answers when all k answered (or errored) or on timeout.
           acked_by lists the OTHER nodes that acknowledged; ok = acked_by is
           not empty. (On loopback libtorrent also announces to itself: k counts
           itself and self_acked tells; see Node.own_addr.)
    {"cmd":"get_peers","ih":"<hex>"[,"timeout":20]}
        -> {"peers":["127.0.0.1:N",...],"done":bool}  (done: lookup finished
           before the timeout; peers collected from every reply with `values`)
    {"cmd":"put","value":"<utf-8 string>"[,"timeout":20]}
        -> {"target":"<hex sha1 of the bencoded string>","num_success":n,
            "stored_at":["127.0.0.1:Q",...]}  (num_success: libtorrent's count,
           itself included; stored_at: the other nodes that acknowledged `put`)
    {"cmd":"get","target":"<hex>"[,"timeout":20]}
        -> {"value":"<string>"} or {"value":null}
    {"cmd":"routing_table"[,"timeout":5]}
        -> {"nodes":[{"id":hex,"addr":"127.0.0.1:N"},...],
            "buckets":[{"num_nodes":n,"num_replacements":r},...]}
           (nodes: libtorrent's live (confirmed) routing-table entries)
    {"cmd":"stats"} -> {"stats":{"dht_messages_in":n,...}}  (session counters)
    {"cmd":"quit"} -> {"ok":true}, then exits 0. EOF on stdin also exits 0.
Any malformed command gets {"error":"..."}.

--log-packets FILE writes one JSON line per DHT packet libtorrent received or
sent: {"t":secs,"dir":"in"|"out","addr":"ip:port","msg":{...}} where byte
strings are shown as text when printable ASCII, else as "hex:<hex>". (Packets
libtorrent's DoS blocker drops are not seen; with the settings here none are.)

--bench: serve only (stdin is ignored), every DHT rate limit lifted, no alerts
(so --log-packets has no effect).
Prints {"ready":...} and, when it gets SIGTERM/SIGINT or --duration elapses,
one {"stats":{...}} line with the DHT message counters, then exits 0.
"""

import argparse
import hashlib
import json
import os
import select
import signal
import sys
import time

import libtorrent as lt

# bencode helpers shared with the other interop scripts (same directory)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_bencode import bdecode, to_json  # noqa: E402


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host.strip("[]"), int(port)


def fmt_ep(ep):
    return "%s:%d" % (ep[0], ep[1])


# ---------------------------------------------------------------------------
# session settings

UNLIMITED = 100_000_000  # dos_blocker compares count >= limit*10 in an int: stay < 2^31/10


def session_settings(port, bench):
    cat = lt.alert.category_t
    return {
        # TCP + UDP (uTP and DHT share the UDP socket) on loopback only
        "listen_interfaces": "127.0.0.1:%d" % port,
        "enable_dht": True,
        # no local service discovery / port mapping / default routers
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        # every node is 127.0.0.1: without these, libtorrent keeps one node per
        # IP (per /24 for v4) in its routing table and in each lookup
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        # per-IP DoS blocker: default 5 msg/s (counted over 10 s) then the IP
        # is ignored for dht_block_timeout (300 s): fatal when all peers are 127.0.0.1
        "dht_block_ratelimit": UNLIMITED,
        "dht_block_timeout": 1,
        # outgoing DHT bytes/s (default 8000); when the quota is spent libtorrent
        # silently DROPS incoming queries (node::incoming -> has_quota())
        "dht_upload_rate_limit": 1_000_000_000,
        # default False already; made explicit: when True libtorrent ignores
        # replies (and errors queries) whose node id fails BEP 42 for the source
        # IP. BEP 42 exempts local addresses and so does libtorrent's verify_id
        # (is_local(127.0.0.1) -> valid), so any id works on loopback either way.
        "dht_enforce_node_id": False,
        # answer queries (do not act as a BEP 43 read-only node)
        "dht_read_only": False,
        # a query for a private test DHT must not be dropped as "dark internet";
        # irrelevant for 127.0.0.1 but harmless
        "dht_ignore_dark_internet": False,
        # up to 100 peers per get_peers reply (the default), many items stored
        "dht_max_peers_reply": 100,
        "dht_max_torrents": 100_000,
        "dht_max_dht_items": 100_000,
        "dht_max_peers": 100_000,
        # deterministic, non-obfuscated lookups
        "dht_privacy_lookups": False,
        # more UDP socket buffer for load tests (0 = OS default)
        "recv_socket_buffer_size": 4 * 1024 * 1024 if bench else 0,
        "send_socket_buffer_size": 4 * 1024 * 1024 if bench else 0,
        # alerts: the DHT ones (+ dht_log for traversal completion and packet
        # logging) in command mode; nothing but stats in bench mode
        "alert_mask": int(cat.stats_notification | cat.error_notification) if bench else int(
            cat.dht_notification | cat.dht_operation_notification | cat.dht_log_notification
            | cat.stats_notification | cat.error_notification | cat.status_notification),
        "alert_queue_size": 1_000_000,
        # nothing for a DHT-only node to connect to
        "enable_outgoing_utp": False,
        "enable_incoming_utp": False,
    }


# ---------------------------------------------------------------------------


class Node:
    def __init__(self, port, log_packets=None, bench=False):
        self.port = port
        # libtorrent on loopback queries ITSELF: other nodes return its own
        # endpoint in `nodes` and its lookups do not filter it out. Results
        # below list the other nodes separately.
        self.own_addr = "127.0.0.1:%d" % port
        self.ses = lt.session(session_settings(port, bench))
        self.pkt_log = open(log_packets, "a", buffering=1) if log_packets else None
        self.t0 = time.monotonic()
        # every decoded DHT packet goes through here: (dir, (ip, port), msg dict)
        self.pkt_listeners = []
        self.log_listeners = []  # dht_log_alert messages
        self.alert_listeners = []  # every alert

    # -- alert pumping -----------------------------------------------------

    def pump(self, wait_s):
        """Wait up to wait_s for alerts and dispatch them all."""
        if wait_s > 0:
            self.ses.wait_for_alert(max(1, int(wait_s * 1000)))
        for a in self.ses.pop_alerts():
            if isinstance(a, lt.dht_pkt_alert):
                self._on_pkt(a)
            elif isinstance(a, lt.dht_log_alert):
                msg = a.log_message()
                for f in list(self.log_listeners):
                    f(msg)
            for f in list(self.alert_listeners):
                f(a)

    def _on_pkt(self, a):
        # message() is "<== [ip:port] ..." (incoming) or "==> [ip:port] ..." (outgoing)
        m = a.message()
        direction = "in" if m.startswith("<==") else "out"
        addr = parse_addr(m[m.index("[") + 1:m.index("]")])
        raw = bytes(a.pkt_buf)
        try:
            msg = bdecode(raw)
            if not isinstance(msg, dict):
                raise ValueError("not a dict")
        except Exception:
            msg = None
        if self.pkt_log:
            rec = {"t": round(time.monotonic() - self.t0, 4), "dir": direction,
                   "addr": fmt_ep(addr)}
            rec["msg"] = to_json(msg) if msg is not None else {"undecodable": "hex:" + raw.hex()}
            self.pkt_log.write(json.dumps(rec) + "\n")
        if msg is not None:
            for f in list(self.pkt_listeners):
                f(direction, addr, msg)

    def wait_until(self, pred, timeout):
        """Pump alerts until pred() is true or timeout; returns pred()."""
        deadline = time.monotonic() + timeout
        while not pred():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.05))
        return True

    # -- helpers -------------------------------------------------------------

    def node_id(self, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            st = lt.write_session_params(self.ses.session_state()).get(b"dht state", {})
            ids = st.get(b"node-id") or []
            if ids:
                return ids[0][:20].hex()
            self.pump(0.05)
        raise RuntimeError("DHT did not start")

    def query_and_wait(self, addr, start, pred_out, timeout):
        """Call start(), match the outgoing query to addr selected by
        pred_out(msg), wait for the response with the same transaction id.
        Returns the response dict (y=r or y=e) or None."""
        state = {"tids": set(), "resp": None}

        def on_pkt(direction, ep, msg):
            if ep != addr:
                return
            if direction == "out" and msg.get(b"y") == b"q" and pred_out(msg):
                state["tids"].add(msg.get(b"t"))
            elif direction == "in" and msg.get(b"y") in (b"r", b"e") \
                    and msg.get(b"t") in state["tids"]:
                state["resp"] = msg

        self.pkt_listeners.append(on_pkt)
        try:
            start()
            self.wait_until(lambda: state["resp"] is not None, timeout)
        finally:
            self.pkt_listeners.remove(on_pkt)
        return state["resp"]

    # -- commands ------------------------------------------------------------

    def cmd_add_node(self, c):
        addr = parse_addr(c["addr"])
        t = time.monotonic()
        resp = self.query_and_wait(addr, lambda: self.ses.add_dht_node(addr),
                                   lambda m: True, float(c.get("timeout", 5)))
        if resp is None:
            return {"ok": False, "error": "no response from %s" % fmt_ep(addr)}
        if resp.get(b"y") == b"e":
            return {"ok": False, "error": "error response", "e": to_json(resp.get(b"e"))}
        rtt = round((time.monotonic() - t) * 1000, 1)
        rid = resp.get(b"r", {}).get(b"id", b"")
        # libtorrent may still reject the reply (e.g. an id that is not 20 bytes):
        # ok only when the node made it into the routing table
        listed = any(n["addr"] == fmt_ep(addr) for n in self.cmd_routing_table({})["nodes"])
        out = {"ok": listed, "id": rid.hex() if isinstance(rid, bytes) else None, "rtt_ms": rtt}
        if not listed:
            out["error"] = "answered but not added to the routing table"
        return out

    def _lookup(self, target_hex, kind, start, timeout):
        """Run a traversal started by start() whose dht_log 'NEW target' line
        names target_hex and whose COMPLETED line has type `kind`; returns True
        if it completed within timeout. Traversal ids come from the log lines
        '[id] NEW target: <hex> ...' and '[id] COMPLETED distance: d type: <kind>'."""
        st = {"ids": set(), "done": False}

        def on_log(msg):
            # e.g. "DHT traversal: [3] NEW target: 7abd... k: 8"
            if "] NEW target: " in msg and target_hex in msg:
                st["ids"].add(msg.split("[", 1)[1].split("]", 1)[0])
            elif "] COMPLETED " in msg and msg.rstrip().endswith("type: " + kind):
                if msg.split("[", 1)[1].split("]", 1)[0] in st["ids"]:
                    st["done"] = True

        self.log_listeners.append(on_log)
        try:
            start()
            ok = self.wait_until(lambda: st["done"], timeout)
        finally:
            self.log_listeners.remove(on_log)
        return ok

    def cmd_announce(self, c):
        ih_hex = c["ih"].lower()
        ih = bytes.fromhex(ih_hex)
        timeout = float(c.get("timeout", 20))
        flags = 0
        if c.get("seed"):
            flags |= 1  # dht::announce::seed
        if c.get("implied_port"):
            flags |= 2  # dht::announce::implied_port
        st = {"nodes": None, "sent": {}, "acked": [], "errors": []}

        def on_log(msg):
            # "DHT node: sending announce_peer [ ih: <hex>  p: N nodes: K ]"
            if "sending announce_peer" in msg and ih_hex in msg:
                st["nodes"] = int(msg.rsplit("nodes:", 1)[1].split()[0])

        def on_pkt(direction, ep, msg):
            if direction == "out" and msg.get(b"q") == b"announce_peer" \
                    and msg.get(b"a", {}).get(b"info_hash") == ih:
                st["sent"][(ep, msg.get(b"t"))] = True
            elif direction == "in" and msg.get(b"y") in (b"r", b"e") \
                    and (ep, msg.get(b"t")) in st["sent"]:
                del st["sent"][(ep, msg.get(b"t"))]
                if msg.get(b"y") == b"r":
                    st["acked"].append(fmt_ep(ep))
                else:
                    st["errors"].append(fmt_ep(ep))

        def finished():
            return st["nodes"] is not None \
                and len(st["acked"]) + len(st["errors"]) >= st["nodes"]

        self.log_listeners.append(on_log)
        self.pkt_listeners.append(on_pkt)
        try:
            self.ses.dht_announce(lt.sha1_hash(ih), int(c.get("port", 0)), flags)
            self.wait_until(finished, timeout)
        finally:
            self.log_listeners.remove(on_log)
            self.pkt_listeners.remove(on_pkt)
        others = [a for a in st["acked"] if a != self.own_addr]
        out = {"ok": bool(others), "nodes": st["nodes"] or 0, "acked_by": others,
               "errors": st["errors"], "self_acked": self.own_addr in st["acked"]}
        if st["nodes"] is None:
            out["error"] = "lookup did not finish"
        elif st["nodes"] == 0:
            out["error"] = "no node returned a token"
        return out

    def cmd_get_peers(self, c):
        ih_hex = c["ih"].lower()
        ih = lt.sha1_hash(bytes.fromhex(ih_hex))
        peers = []

        def on_alert(a):
            if isinstance(a, lt.dht_get_peers_reply_alert) and str(a.info_hash) == ih_hex:
                for p in a.peers():
                    s = fmt_ep(p)
                    if s not in peers:
                        peers.append(s)

        self.alert_listeners.append(on_alert)
        try:
            done = self._lookup(ih_hex, "get_peers", lambda: self.ses.dht_get_peers(ih),
                                float(c.get("timeout", 20)))
            self.pump(0)  # reply alerts queued together with the COMPLETED log line
        finally:
            self.alert_listeners.remove(on_alert)
        return {"peers": peers, "done": done}

    def cmd_put(self, c):
        value = c["value"].encode()
        st = {"alert": None}
        target = hashlib.sha1(b"%d:%s" % (len(value), value)).hexdigest()
        sent, stored = set(), []

        def on_alert(a):
            if isinstance(a, lt.dht_put_alert) and str(a.target) == target:
                st["alert"] = a

        def on_pkt(direction, ep, msg):
            if direction == "out" and msg.get(b"q") == b"put" \
                    and msg.get(b"a", {}).get(b"v") == value:
                sent.add((ep, msg.get(b"t")))
            elif direction == "in" and msg.get(b"y") == b"r" and (ep, msg.get(b"t")) in sent:
                stored.append(fmt_ep(ep))

        self.alert_listeners.append(on_alert)
        self.pkt_listeners.append(on_pkt)
        try:
            t = str(self.ses.dht_put_immutable_item(value))
            assert t == target, (t, target)
            self.wait_until(lambda: st["alert"] is not None, float(c.get("timeout", 20)))
            self.pump(0)
        finally:
            self.alert_listeners.remove(on_alert)
            self.pkt_listeners.remove(on_pkt)
        # num_success: libtorrent's count (includes this node itself, see own_addr);
        # stored_at: the other nodes that acknowledged the put query
        out = {"target": target, "num_success": st["alert"].num_success if st["alert"] else 0,
               "stored_at": [a for a in stored if a != self.own_addr]}
        if st["alert"] is None:
            out["error"] = "timeout"
        return out

    def cmd_get(self, c):
        target = c["target"].lower()
        st = {"alert": None}

        def on_alert(a):
            if isinstance(a, lt.dht_immutable_item_alert) and str(a.target) == target:
                st["alert"] = a

        self.alert_listeners.append(on_alert)
        try:
            self.ses.dht_get_immutable_item(lt.sha1_hash(bytes.fromhex(target)))
            self.wait_until(lambda: st["alert"] is not None, float(c.get("timeout", 20)))
        finally:
            self.alert_listeners.remove(on_alert)
        if st["alert"] is None:
            return {"value": None, "error": "timeout"}
        # the alert also fires when the lookup ends without finding the item,
        # with an empty entry (which Python shows as ""): an item was found iff
        # its bencoding hashes to the target
        item = st["alert"].item
        if hashlib.sha1(lt.bencode(item)).hexdigest() != target:
            return {"value": None}
        if isinstance(item, bytes):
            try:
                return {"value": item.decode()}
            except UnicodeDecodeError:
                return {"value": None, "hex": item.hex(), "error": "not utf-8"}
        return {"value": None, "error": "item is not a string", "item": to_json(item)}

    def cmd_routing_table(self, c):
        own = bytes.fromhex(self.node_id())
        st = {"live": None, "stats": None}

        def on_alert(a):
            if isinstance(a, lt.dht_live_nodes_alert):
                st["live"] = a
            elif isinstance(a, lt.dht_stats_alert):
                st["stats"] = a

        self.alert_listeners.append(on_alert)
        try:
            # dht_live_nodes(nid) lists the live nodes of the routing table of the
            # DHT node with that id (ours)
            self.ses.dht_live_nodes(lt.sha1_hash(own))
            self.ses.post_dht_stats()
            self.wait_until(lambda: st["live"] is not None and st["stats"] is not None,
                            float(c.get("timeout", 5)))
        finally:
            self.alert_listeners.remove(on_alert)
        nodes = []
        if st["live"] is not None:
            for n in st["live"].nodes:
                nodes.append({"id": str(n["nid"]), "addr": fmt_ep(n["endpoint"])})
        buckets = []
        if st["stats"] is not None:
            buckets = [{"num_nodes": b["num_nodes"], "num_replacements": b["num_replacements"]}
                       for b in st["stats"].routing_table]
        return {"nodes": nodes, "buckets": buckets}

    def stats(self, timeout=5):
        st = {"a": None}

        def on_alert(a):
            if isinstance(a, lt.session_stats_alert):
                st["a"] = a

        self.alert_listeners.append(on_alert)
        try:
            self.ses.post_session_stats()
            self.wait_until(lambda: st["a"] is not None, timeout)
        finally:
            self.alert_listeners.remove(on_alert)
        if st["a"] is None:
            return {}
        # the Python binding gives {"dht.dht_messages_in": n, ...}
        return {k[4:]: v for k, v in st["a"].values.items() if k.startswith("dht.")}

    def cmd_stats(self, c):
        return {"stats": self.stats()}


# ---------------------------------------------------------------------------


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def command_loop(node):
    buf = b""
    handlers = {
        "add_node": node.cmd_add_node, "announce": node.cmd_announce,
        "get_peers": node.cmd_get_peers, "put": node.cmd_put, "get": node.cmd_get,
        "routing_table": node.cmd_routing_table, "stats": node.cmd_stats,
    }
    while True:
        # keep draining alerts (and logging packets) while waiting for input
        r, _, _ = select.select([0], [], [], 0.05)
        node.pump(0)
        if not r:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            return  # EOF: the driving test went away
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                c = json.loads(line)
                name = c.get("cmd")
                if name == "quit":
                    emit({"ok": True})
                    return
                if name not in handlers:
                    emit({"error": "unknown cmd %r" % (name,)})
                    continue
                emit(handlers[name](c))
            except Exception as e:  # report and keep serving
                emit({"error": "%s: %s" % (type(e).__name__, e)})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--bootstrap", action="append", default=[], metavar="HOST:PORT")
    ap.add_argument("--log-packets", metavar="FILE")
    ap.add_argument("--bench", action="store_true", help="serve only, no limits, no alerts")
    ap.add_argument("--duration", type=float, help="--bench: exit after this many seconds")
    args = ap.parse_args()

    node = Node(args.port, args.log_packets, args.bench)
    nid = node.node_id()

    if args.bench:
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        emit({"ready": True, "port": args.port, "node_id": nid, "bench": True})
        deadline = time.monotonic() + args.duration if args.duration else None
        while not stop and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.1)
            node.ses.pop_alerts()
        emit({"stats": node.stats()})
        return

    ok = []
    for b in args.bootstrap:
        if node.cmd_add_node({"addr": b}).get("ok"):
            ok.append(b)
    emit({"ready": True, "port": args.port, "node_id": nid, "bootstrapped": ok})
    command_loop(node)


if __name__ == "__main__":
    main()
