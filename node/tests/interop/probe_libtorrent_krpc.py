#!/usr/bin/env python3
"""Probe what libtorrent sends to, and accepts from, a freshly added DHT node.

Run inside a private network namespace, as root:
    timeout 200 unshare -n sh -c 'ip link set lo up; python3 probe_libtorrent_krpc.py --watch 30'

For each variant of a minimal mock KRPC node (on its own UDP port) it starts a
fresh libtorrent_dht.py, makes it `add_node` the mock, then checks whether the
mock ended up in libtorrent's routing table. Variants change one thing in the
mock's responses (its `v`, `ip`, the transaction id, the source port, error
replies...). Then, with a plain mock, it watches for --watch seconds which
queries libtorrent sends on its own and with which keys.
Prints JSON lines.
"""

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
from interop_bencode import bdecode, bencode, to_json  # noqa: E402


class Mock(threading.Thread):
    """Answers every query with {"id": ..., "nodes": "", "token": ...} (and
    a valid reply for ping); `variant` alters the answers."""

    def __init__(self, port, variant):
        super().__init__(daemon=True)
        self.port, self.variant = port, variant
        self.id = bytes(range(1, 21))  # not BEP 42 valid for any public IP
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", port))
        self.other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.other.bind(("127.0.0.1", port + 1000))
        self.received = []
        self.start()

    def run(self):
        while True:
            data, addr = self.sock.recvfrom(65535)
            try:
                m = bdecode(data)
            except Exception:
                continue
            self.received.append((time.monotonic(), m))
            if m.get(b"y") != b"q":
                continue
            v = self.variant
            r = {b"id": self.id}
            q = m.get(b"q")
            if q in (b"get_peers", b"find_node", b"get"):
                r[b"nodes"] = b""
                if q != b"find_node":
                    r[b"token"] = b"tok1"
            resp = {b"t": m.get(b"t", b""), b"y": b"r", b"r": r}
            if v == "plain":
                pass
            elif v == "with_ip":
                resp[b"ip"] = socket.inet_aton(addr[0]) + addr[1].to_bytes(2, "big")
            elif v == "v_unknown":
                resp[b"v"] = b"ZZ\x09\x09"
            elif v == "v_int":
                resp[b"v"] = 7
            elif v == "v_libtorrent":
                resp[b"v"] = b"LT\x02\x11"
            elif v == "ro_in_reply":
                resp[b"ro"] = 1
            elif v == "error":
                resp = {b"t": m.get(b"t", b""), b"y": b"e", b"e": [202, b"Server Error"]}
            elif v == "wrong_tid":
                resp[b"t"] = b"zz"
            elif v == "other_port":
                self.other.sendto(bencode(resp), addr)
                continue
            elif v == "short_id":
                r[b"id"] = self.id[:19]
            elif v == "silent":
                continue
            self.sock.sendto(bencode(resp), addr)


class Lt:
    def __init__(self, port):
        self.p = subprocess.Popen([sys.executable, os.path.join(HERE, "libtorrent_dht.py"),
                                   "--port", str(port)],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = json.loads(self.p.stdout.readline())

    def __call__(self, **c):
        self.p.stdin.write(json.dumps(c) + "\n")
        self.p.stdin.flush()
        return json.loads(self.p.stdout.readline())

    def close(self):
        self(cmd="quit")
        self.p.wait(5)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--watch", type=float, default=30)
    args = ap.parse_args()
    variants = ["plain", "with_ip", "v_unknown", "v_int", "v_libtorrent", "ro_in_reply",
                "short_id", "error", "wrong_tid", "other_port", "silent"]
    port = 43000
    for i, v in enumerate(variants):
        lt_port, mock_port = port + 2 * i, port + 2 * i + 1
        mock = Mock(mock_port, v)
        lt = Lt(lt_port)
        r = lt(cmd="add_node", addr="127.0.0.1:%d" % mock_port, timeout=2)
        time.sleep(0.2)
        rt = lt(cmd="routing_table")
        in_table = any(n["addr"] == "127.0.0.1:%d" % mock_port for n in rt["nodes"])
        first = mock.received[0][1] if mock.received else None
        print(json.dumps({"variant": v, "add_node": r, "in_routing_table": in_table,
                          "first_query": to_json(first)}), flush=True)
        lt.close()

    # what does libtorrent send to a plain, answering node over time?
    mock = Mock(port + 100, "with_ip")
    lt = Lt(port + 101)
    lt(cmd="add_node", addr="127.0.0.1:%d" % (port + 100))
    t0 = time.monotonic()
    time.sleep(args.watch)
    summary = {}
    for t, m in mock.received:
        q = (m.get(b"q") or b"?").decode()
        keys = sorted(k.decode() for k in m) + ["a." + k.decode() for k in sorted(m.get(b"a", {}))]
        s = summary.setdefault(q, {"count": 0, "keys": set(), "first_s": round(t - t0, 2)})
        s["count"] += 1
        s["keys"].update(keys)
    for q, s in summary.items():
        s["keys"] = sorted(s["keys"])
    print(json.dumps({"watched_s": args.watch, "queries_from_libtorrent": summary}), flush=True)
    print(json.dumps({"all_queries": [[round(t - t0, 2), to_json(m)] for t, m in mock.received]}))
    lt.close()


if __name__ == "__main__":
    main()
