#!/usr/bin/env python3
"""Check that aria2c's DHT finds a peer that some DHT node announced.

Run through aria2_find_peer.sh (which provides the network namespace).
Steps:
  1. write a trackerless torrent (no `announce` key) for a fixed 64 KiB file,
     so the info hash is always the same (print it with --print-infohash);
  2. listen on TCP 127.0.0.1:PEER_PORT: the "peer" the DHT was told about;
  3. start aria2c with DHT on, bootstrapping only from 127.0.0.1:ENTRY;
  4. pass when aria2c dials PEER_PORT and sends a BitTorrent handshake
     (1-byte 19, "BitTorrent protocol", 8 reserved bytes, 20-byte info hash,
     20-byte peer id) carrying the torrent's info hash.
Prints one JSON line: {"ok":bool,"info_hash":..,"dial_s":..,"handshake_s":..,...}
and exits 0 only on success.

Somebody must have announced INFO_HASH with port PEER_PORT so that the DHT
node at ENTRY (or the nodes it leads to) answers aria2's get_peers with it.
--announce-with-libtorrent PORT does that here: it starts libtorrent_dht.py at
PORT bootstrapped from ENTRY and announces the info hash from it.
"""

import argparse
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
from interop_bencode import bencode  # noqa: E402

PIECE_LEN = 16 * 1024
FILE_NAME = "overlay-dht-interop.bin"


def file_content():
    # 64 KiB of deterministic bytes: a SHA-1 chain, so the info hash is fixed
    out, h = [], b"overlay"
    while sum(map(len, out)) < 4 * PIECE_LEN:
        h = hashlib.sha1(h).digest()
        out.append(h)
    return b"".join(out)[:4 * PIECE_LEN]


def make_torrent(nodes=None):
    """Returns (torrent bytes, info hash bytes). nodes: optional [(host, port)]
    for the BEP 5 `nodes` key (DHT bootstrap hints in the torrent)."""
    data = file_content()
    pieces = b"".join(hashlib.sha1(data[i:i + PIECE_LEN]).digest()
                      for i in range(0, len(data), PIECE_LEN))
    info = {"name": FILE_NAME, "length": len(data), "piece length": PIECE_LEN,
            "pieces": pieces}
    meta = {"info": info, "created by": "overlay interop test"}
    if nodes:
        meta["nodes"] = [[h, p] for h, p in nodes]
    return bencode(meta), hashlib.sha1(bencode(info)).digest()


def aria2_dht_dat(nodes):
    """aria2's IPv4 routing-table file (format version 3, see aria2's
    DHTRoutingTableSerializer.cc) holding `nodes` [(ip, port)]. Starting aria2
    with it makes its first get_peers lookup go out at once; with an empty
    table that lookup finds no node and aria2 retries only 5 s later."""
    out = bytes([0xA1, 0xA2, 0x02, 0, 0, 0, 0, 0x03])  # magic, format id, version 3
    out += struct.pack(">Q", int(time.time()))  # save time
    out += bytes(8) + os.urandom(20) + bytes(4)  # reserved, our node id, reserved
    out += struct.pack(">I", len(nodes)) + bytes(4)
    for ip, port in nodes:
        compact = socket.inet_aton(ip) + struct.pack(">H", port)
        # 1-byte compact length, 7 reserved, compact peer info padded to 24,
        # node id (any: aria2 takes the id from the node's first reply), 4 reserved
        node_id = hashlib.sha1(b"entry %s:%d" % (ip.encode(), port)).digest()
        out += bytes([6]) + bytes(7) + compact + bytes(18) + node_id + bytes(4)
    return out


def wait_handshake(srv, ih, deadline, t0):
    """Accept connections on srv until one sends a plain 68-byte handshake.
    aria2 first dials with an MSE/PE (encrypted) handshake: 96+ random bytes;
    we close that connection and aria2 dials again ~1 s later in plaintext."""
    dials = []
    while time.monotonic() < deadline:
        srv.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            break
        d = {"at_s": round(time.monotonic() - t0, 3), "from": "%s:%d" % peer}
        dials.append(d)
        buf = b""
        conn.settimeout(max(0.01, min(5, deadline - time.monotonic())))
        try:
            while len(buf) < 68:
                chunk = conn.recv(68 - len(buf))
                if not chunk:
                    break
                buf += chunk
        except socket.timeout:
            pass
        conn.close()
        if len(buf) == 68 and buf[0] == 19 and buf[1:20] == b"BitTorrent protocol":
            d["kind"] = "plain"
            res = {"dials": dials, "dial_s": dials[0]["at_s"], "handshake_s": d["at_s"],
                   "reserved": buf[20:28].hex(), "handshake_info_hash": buf[28:48].hex(),
                   "peer_id": buf[48:68].decode("latin-1"), "ok": buf[28:48] == ih}
            if not res["ok"]:
                res["error"] = "handshake carries another info hash"
            return res
        d["kind"] = "mse" if len(buf) >= 68 else "short(%d bytes)" % len(buf)
    return {"dials": dials, "ok": False,
            "error": "no plain BitTorrent handshake on the peer port in time"}


def announce_with_libtorrent(port, entry, ih, peer_port, timeout):
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "libtorrent_dht.py"),
                          "--port", str(port), "--bootstrap", "127.0.0.1:%d" % entry],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    ready = json.loads(p.stdout.readline())
    if not ready.get("bootstrapped"):
        raise SystemExit("announcer could not bootstrap from %d: %s" % (entry, ready))
    p.stdin.write(json.dumps({"cmd": "announce", "ih": ih.hex(), "port": peer_port,
                              "timeout": timeout}) + "\n")
    p.stdin.flush()
    r = json.loads(p.stdout.readline())
    if not r.get("ok"):
        raise SystemExit("announce failed: %s" % r)
    return p, r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--entry", type=int, help="DHT entry point port on 127.0.0.1")
    ap.add_argument("--peer-port", type=int, default=6890,
                    help="TCP port announced for the info hash (we listen there)")
    ap.add_argument("--dht-port", type=int, default=6990, help="aria2's DHT UDP port")
    ap.add_argument("--listen-port", type=int, default=6991, help="aria2's BitTorrent TCP port")
    ap.add_argument("--announce-with-libtorrent", type=int, metavar="PORT",
                    help="start a libtorrent node at PORT, bootstrapped from --entry, "
                         "that announces the info hash with --peer-port")
    ap.add_argument("--torrent", action="store_true",
                    help="give aria2 the .torrent file instead of a magnet link "
                         "(aria2 then tries new peers only every 10 s instead of 2 s)")
    ap.add_argument("--nodes-key", action="store_true",
                    help="with --torrent: bootstrap aria2 from the torrent's `nodes` key "
                         "instead of --dht-entry-point")
    ap.add_argument("--fresh-dht", action="store_true",
                    help="start aria2 with an empty routing table (only --dht-entry-point): "
                         "its first lookup then waits for a 5 s retry")
    ap.add_argument("--timeout", type=float, default=30, help="seconds to wait for the dial")
    ap.add_argument("--keep", metavar="DIR",
                    help="work in DIR and keep it (aria2.log etc.; kept anyway on failure)")
    ap.add_argument("--print-infohash", action="store_true")
    args = ap.parse_args()

    torrent, ih = make_torrent([("127.0.0.1", args.entry)] if args.nodes_key else None)
    if args.print_infohash:
        print(ih.hex())
        return
    if args.entry is None:
        ap.error("--entry is required")
    if args.nodes_key and not args.torrent:
        ap.error("--nodes-key needs --torrent")

    work = args.keep or tempfile.mkdtemp(prefix="aria2-dht-")
    os.makedirs(os.path.join(work, "dl"), exist_ok=True)
    tpath = os.path.join(work, "test.torrent")
    with open(tpath, "wb") as f:
        f.write(torrent)
    dht_dat = os.path.join(work, "dht.dat")
    if os.path.exists(dht_dat):
        os.remove(dht_dat)
    if not args.fresh_dht:
        with open(dht_dat, "wb") as f:
            f.write(aria2_dht_dat([("127.0.0.1", args.entry)]))

    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.peer_port))
    srv.listen(8)

    announcer = None
    result = {"info_hash": ih.hex(), "peer_port": args.peer_port, "entry": args.entry,
              "mode": "torrent" if args.torrent else "magnet",
              "routing_table": "fresh" if args.fresh_dht else "dht.dat with entry"}
    if args.announce_with_libtorrent:
        announcer, r = announce_with_libtorrent(args.announce_with_libtorrent, args.entry,
                                                ih, args.peer_port, 25)
        result["announce"] = r

    cmd = [
        "aria2c",
        "--enable-dht=true", "--enable-dht6=false",
        "--dht-listen-port=%d" % args.dht_port,
        "--dht-file-path=%s" % dht_dat,
        # give up on silent DHT nodes sooner (default 10 s)
        "--dht-message-timeout=3",
        "--listen-port=%d" % args.listen_port,
        "--bt-enable-lpd=false", "--enable-peer-exchange=false",
        # the address aria2 reports for itself
        "--bt-external-ip=127.0.0.1",
        "--seed-time=0", "--bt-stop-timeout=0",
        "--dir=%s" % os.path.join(work, "dl"),
        "--allow-overwrite=true", "--auto-file-renaming=false",
        "--disable-ipv6=true", "--summary-interval=0", "--console-log-level=warn",
        "--log=%s" % os.path.join(work, "aria2.log"), "--log-level=debug",
    ]
    if not args.nodes_key:
        cmd.append("--dht-entry-point=127.0.0.1:%d" % args.entry)
    cmd.append(tpath if args.torrent else "magnet:?xt=urn:btih:" + ih.hex())

    t0 = time.monotonic()
    aria = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        result.update(wait_handshake(srv, ih, t0 + args.timeout, t0))
    finally:
        aria.terminate()
        try:
            aria.wait(5)
        except subprocess.TimeoutExpired:
            aria.kill()
        if announcer:
            announcer.stdin.write('{"cmd":"quit"}\n')
            announcer.stdin.close()
            announcer.wait(5)
    if args.keep or not result.get("ok"):
        result["work_dir"] = work  # aria2.log (debug level) is there
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result), flush=True)
    sys.exit(0 if result.get("ok") else 1)


if __name__ == "__main__":
    main()
