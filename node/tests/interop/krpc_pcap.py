#!/usr/bin/env python3
"""Decode the KRPC (BitTorrent DHT) messages in a pcap taken on loopback.

Usage: python3 krpc_pcap.py CAPTURE.pcap [--names 6881=libtorrent,6990=aria2] [--json]

Capture with (inside the test's network namespace, as root):
    tcpdump -i lo -Z root -U -w CAPTURE.pcap udp      # stop with SIGINT
Prints one line per UDP datagram that bdecodes to a dict:
    t=<s since first packet> <src port> -> <dst port>  <y> <q or reply/error> {decoded}
With --json: JSON lines {"t","src","dst","msg"} (bytes: text if printable, else "hex:...").
Handles classic pcap (tcpdump's default) with Ethernet (Linux `lo`) or raw-IP link types.
"""

import argparse
import json
import os
import struct
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_bencode import bdecode, to_json  # noqa: E402


def packets(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic in (0xA1B2C3D4, 0xA1B23C4D):
        end = "<"
    elif magic in (0xD4C3B2A1, 0x4D3CB2A1):
        end = ">"
    else:
        raise SystemExit("not a classic pcap file (use tcpdump -w, not pcapng)")
    nano = magic in (0xA1B23C4D, 0x4D3CB2A1)
    linktype = struct.unpack(end + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(end + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + caplen]
        off += caplen
        ts = sec + frac / (1e9 if nano else 1e6)
        if linktype == 1:  # Ethernet (Linux loopback)
            ethertype = struct.unpack("!H", frame[12:14])[0]
            ip = frame[14:]
        elif linktype in (101, 228):  # raw IPv4
            ethertype, ip = 0x0800, frame
        elif linktype == 113:  # Linux cooked
            ethertype, ip = struct.unpack("!H", frame[14:16])[0], frame[16:]
        else:
            raise SystemExit("unsupported link type %d" % linktype)
        if ethertype != 0x0800 or len(ip) < 20 or ip[9] != 17:
            continue  # IPv4 + UDP only
        ihl = (ip[0] & 15) * 4
        udp = ip[ihl:]
        sport, dport, ulen = struct.unpack("!HHH", udp[:6])
        yield ts, sport, dport, udp[8:ulen]


def summary(msg):
    y = msg.get(b"y", b"?").decode("latin-1")
    if y == "q":
        return "q " + msg.get(b"q", b"?").decode("latin-1")
    return {"r": "reply", "e": "error"}.get(y, y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("pcap")
    ap.add_argument("--names", default="", help="port=name,... to label endpoints")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    names = dict(kv.split("=", 1) for kv in args.names.split(",") if kv)
    t0 = None
    for ts, sport, dport, payload in packets(args.pcap):
        try:
            msg = bdecode(payload)
        except Exception:
            continue
        if not isinstance(msg, dict):
            continue
        t0 = ts if t0 is None else t0
        src = names.get(str(sport), str(sport))
        dst = names.get(str(dport), str(dport))
        if args.json:
            print(json.dumps({"t": round(ts - t0, 4), "src": src, "dst": dst,
                              "msg": to_json(msg)}))
        else:
            print("t=%8.3f %s -> %s  %s %s" % (ts - t0, src, dst, summary(msg),
                                              json.dumps(to_json(msg))))


if __name__ == "__main__":
    main()
