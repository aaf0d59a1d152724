#!/usr/bin/env python3
"""Rough KRPC load generator: how many queries/s does a DHT node answer?

    python3 bench_blaster.py --target 127.0.0.1:PORT [--ports 1000] [--window 4]
                             [--seconds 5] [--query ping|find_node] [--procs 1]

Opens --ports UDP sockets (distinct source ports) per process; each keeps
--window queries outstanding (closed loop: a reply, or a 0.5 s silence on the
socket, triggers the next query). Prints one JSON line: replies/s overall and
the spread of replies over source ports (a per-port or per-IP limit shows as
ports with far fewer replies, or a rate that collapses after a few seconds:
see "per_second"). Python is the bottleneck well before a fast node is: use it
to compare configurations and to see throttling, and use the Rust load
generator for absolute numbers.
Run inside the test's network namespace (loopback only).
"""

import argparse
import json
import multiprocessing
import os
import select
import socket
import time


def query(kind, tid, node_id):
    # "ro":1 (BEP 43): the node must not add our source ports to its routing
    # table (libtorrent would, and then query them)
    t = tid.to_bytes(4, "big")
    if kind == "ping":
        return b"d1:ad2:id20:" + node_id + b"e1:q4:ping2:roi1e1:t4:" + t + b"1:y1:qe"
    target = os.urandom(20)
    return (b"d1:ad2:id20:" + node_id + b"6:target20:" + target +
            b"e1:q9:find_node2:roi1e1:t4:" + t + b"1:y1:qe")


def worker(args, idx, out):
    host, port = args.target.rsplit(":", 1)
    dst = (host, int(port))
    node_id = os.urandom(20)
    ep = select.epoll()
    socks = {}
    for _ in range(args.ports):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    replies = {fd: 0 for fd in socks}
    last_rx = {fd: 0.0 for fd in socks}
    per_second = []
    tid = idx << 24
    sent = 0
    t0 = time.monotonic()
    for fd, s in socks.items():
        for _ in range(args.window):
            tid += 1
            s.sendto(query(args.query, tid, node_id), dst)
            sent += 1
        last_rx[fd] = t0
    end = t0 + args.seconds
    next_sec, count_sec = t0 + 1, 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now >= next_sec:
            per_second.append(count_sec)
            count_sec, next_sec = 0, next_sec + 1
            # refill sockets that lost their window (dropped packets)
            for fd, s in socks.items():
                if now - last_rx[fd] > 0.5:
                    for _ in range(args.window):
                        tid += 1
                        s.sendto(query(args.query, tid, node_id), dst)
                        sent += 1
                    last_rx[fd] = now
        for fd, _ in ep.poll(0.05):
            s = socks[fd]
            while True:
                try:
                    data = s.recv(2048)
                except BlockingIOError:
                    break
                if b"1:y1:r" not in data:
                    continue  # a query from the node (it pings new contacts)
                replies[fd] += 1
                count_sec += 1
                last_rx[fd] = now
                tid += 1
                try:
                    s.sendto(query(args.query, tid, node_id), dst)
                    sent += 1
                except BlockingIOError:
                    pass
    out.put({"replies": list(replies.values()), "sent": sent, "per_second": per_second,
             "elapsed": time.monotonic() - t0})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--ports", type=int, default=1000)
    ap.add_argument("--window", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--query", choices=["ping", "find_node"], default="ping")
    ap.add_argument("--procs", type=int, default=1)
    args = ap.parse_args()
    q = multiprocessing.Queue()
    ps = [multiprocessing.Process(target=worker, args=(args, i, q)) for i in range(args.procs)]
    for p in ps:
        p.start()
    res = [q.get() for _ in ps]
    for p in ps:
        p.join()
    replies = sorted(r for x in res for r in x["replies"])
    total = sum(replies)
    elapsed = max(x["elapsed"] for x in res)
    per_second = [sum(x) for x in zip(*(r["per_second"] for r in res))]
    print(json.dumps({
        "query": args.query, "source_ports": len(replies), "seconds": round(elapsed, 2),
        "sent": sum(x["sent"] for x in res), "replies": total,
        "replies_per_s": round(total / elapsed),
        "per_second": per_second,
        "replies_per_port": {"min": replies[0], "median": replies[len(replies) // 2],
                             "max": replies[-1]},
        "ports_without_reply": sum(1 for r in replies if r == 0),
    }))


if __name__ == "__main__":
    main()
