#!/usr/bin/env python3
"""A libtorrent 2.x BitTorrent client on loopback, for the torrent interop tests.

    libtorrent_torrent.py --torrent T.torrent --dir DIR --port P [--peer HOST:PORT]... [--seconds N]
                          [--exit-when-finished] [--dht-bootstrap HOST:PORT]

Seeds what DIR holds (checked first) and downloads the rest from the peers the torrent's
trackers return (and any --peer, and the DHT's with --dht-bootstrap). Prints JSON lines on stdout:
    {"ready": true, "port": P, "info_hash": HEX}   once listening
    {"finished": true, "seconds": S}                when every piece is in and checked
    {"progress": F, "peers": N, "state": S, "errors": [...]}   every 5 s
    {"stopped": true, "uploaded": N, "downloaded": N, "peers": N}   after --seconds
Runs for --seconds (default 120), or until killed. TCP only (no uTP), no DHT, LSD,
UPnP or NAT-PMP; the settings ../shared/ENVIRONMENT.md gives for loopback.
"""
import argparse
import json
import time

import libtorrent as lt


def say(**kv):
    print(json.dumps(kv), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--torrent", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--peer", action="append", default=[])
    ap.add_argument("--seconds", type=float, default=120)
    ap.add_argument("--exit-when-finished", action="store_true")
    ap.add_argument("--dht-bootstrap", help="HOST:PORT: find peers through the DHT too")
    a = ap.parse_args()

    dht = {}
    if a.dht_bootstrap:
        # libtorrent_dht.py explains each: every node is 127.0.0.1 here.
        dht = {"enable_dht": True, "dht_bootstrap_nodes": a.dht_bootstrap,
               "dht_restrict_routing_ips": False, "dht_restrict_search_ips": False,
               "dht_block_ratelimit": 1_000_000, "dht_block_timeout": 1,
               "dht_upload_rate_limit": 1_000_000_000}
    ses = lt.session({
        "listen_interfaces": f"127.0.0.1:{a.port}",
        "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "allow_multiple_connections_per_ip": True,
        "min_reconnect_time": 1,
        "enable_outgoing_utp": False, "enable_incoming_utp": False,
        "announce_to_all_trackers": True, "announce_to_all_tiers": True,
        "alert_mask": lt.alert.category_t.error_notification,
        **dht,
    })
    info = lt.torrent_info(a.torrent)
    params = lt.add_torrent_params()
    params.ti = info
    params.save_path = a.dir
    h = ses.add_torrent(params)
    say(ready=True, port=a.port, info_hash=str(info.info_hash()))
    for p in a.peer:
        host, port = p.rsplit(":", 1)
        h.connect_peer((host, int(port)))
    start = time.time()
    finished = False
    peers = set()
    last = 0
    while time.time() - start < a.seconds:
        s = h.status()
        if time.time() - last >= 5:
            last = time.time()
            errors = [al.message() for al in ses.pop_alerts() if "error" in type(al).__name__]
            say(progress=round(s.progress, 3), peers=s.num_peers, state=str(s.state), errors=errors[:5])
        if not finished and s.is_seeding and s.state == lt.torrent_status.seeding:
            finished = True
            say(finished=True, seconds=round(time.time() - start, 3))
            if a.exit_when_finished:
                break
        for p in h.get_peer_info():
            peers.add(p.ip)
        time.sleep(0.1)
    s = h.status()
    say(stopped=True, uploaded=s.total_payload_upload, downloaded=s.total_payload_download,
        peers=len(peers), finished=finished)


if __name__ == "__main__":
    main()
