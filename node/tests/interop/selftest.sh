#!/bin/sh
# Self-test of libtorrent_dht.py: three libtorrent DHT nodes on loopback in a
# private network namespace. Node B and C bootstrap from A; then
#   A announces an info hash, C finds the peer with get_peers (served by B),
#   A puts an immutable item, C gets it back (served by B),
# and every node's routing table lists the other two.
# Usage (as root, libtorrent installed by install.sh): sh selftest.sh   (exit 0 = pass)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
exec timeout 120 unshare -n sh -c '
ip link set lo up
exec python3 - "$0"' "$HERE/libtorrent_dht.py" <<'PY'
import json, subprocess, sys, time

script = sys.argv[1]
t_start = time.monotonic()


class Peer:
    def __init__(self, name, port, bootstrap=()):
        args = [sys.executable, script, "--port", str(port)]
        for b in bootstrap:
            args += ["--bootstrap", b]
        self.name = name
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.ready = self.read()
        print(name, "ready", self.ready, flush=True)

    def read(self):
        line = self.p.stdout.readline()
        if not line:
            raise SystemExit("%s exited" % self.name)
        return json.loads(line)

    def __call__(self, **cmd):
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        r = self.read()
        print("%s %s -> %s" % (self.name, json.dumps(cmd), json.dumps(r)), flush=True)
        return r


def check(cond, what):
    if not cond:
        raise SystemExit("FAIL: " + what)


a = Peer("A", 42001)
b = Peer("B", 42002, ["127.0.0.1:42001"])
c = Peer("C", 42003, ["127.0.0.1:42001"])
check(b.ready["bootstrapped"] and c.ready["bootstrapped"], "bootstrap from A")
# A learned B and C from their queries but has not confirmed them yet;
# make every node know every other one for a deterministic start
check(a(cmd="add_node", addr="127.0.0.1:42002")["ok"], "A add B")
check(a(cmd="add_node", addr="127.0.0.1:42003")["ok"], "A add C")
check(b(cmd="add_node", addr="127.0.0.1:42003")["ok"], "B add C")

ih = "0123456789abcdef0123456789abcdef01234567"
r = a(cmd="announce", ih=ih, port=6881, timeout=15)
check(sorted(r["acked_by"]) == ["127.0.0.1:42002", "127.0.0.1:42003"], "announce stored on B and C")
r = c(cmd="get_peers", ih=ih, timeout=15)
check("127.0.0.1:6881" in r["peers"], "C finds A's announced peer")
r = b(cmd="get_peers", ih="ff" * 20, timeout=15)
check(r["peers"] == [] and r["done"], "unknown info hash has no peers")

r = a(cmd="put", value="hello from A")
check(sorted(r["stored_at"]) == ["127.0.0.1:42002", "127.0.0.1:42003"], "put stored on B and C")
r2 = c(cmd="get", target=r["target"], timeout=15)
check(r2["value"] == "hello from A", "C gets A's item")
r3 = c(cmd="get", target="00" * 20, timeout=15)
check(r3["value"] is None, "missing item is null")

for p in (a, b, c):
    rt = p(cmd="routing_table")
    check(len(rt["nodes"]) == 2, "%s routing table has the 2 others" % p.name)
st = b(cmd="stats")["stats"]
check(st["dht_announce_peer_in"] >= 1 and st["dht_put_in"] >= 1, "B counters")

for p in (a, b, c):
    check(p(cmd="quit") == {"ok": True}, "quit")
    check(p.p.wait(5) == 0, "exit status 0")
print("PASS selftest in %.1f s" % (time.monotonic() - t_start))
PY
