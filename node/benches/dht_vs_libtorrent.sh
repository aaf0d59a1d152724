#!/bin/sh
# Benchmark (not a test): KRPC queries per second one DHT node answers, and per CPU-second,
# for our node (`overlay dht start`, release build) and libtorrent 2.1's DHT node (all its
# rate limits lifted), measured side by side in one run with the same load generator
# (`krpc-load`, release build: 64 source ports, 8 queries outstanding on each, one thread).
# On a 2-core machine the generator takes one core and the node under test the other.
#
#   sh node/benches/dht_vs_libtorrent.sh [ping|find_node] [seconds]
#
# Needs `cargo build --release -p overlay-node` (both binaries) and
# node/tests/interop/install.sh. Runs in a
# private network namespace with only loopback up.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
QUERY=${1:-ping}
SECONDS_=${2:-5}
exec timeout 120 unshare -n sh -c '
set -eu
ip link set lo up
ROOT=$1 QUERY=$2 SECS=$3
I=$ROOT/node/tests/interop
cpu() { awk "{print \$14+\$15}" /proc/$1/stat; }
measure() { # name pid port
    C0=$(cpu $2)
    R=$($ROOT/target/release/krpc-load --target 127.0.0.1:$3 --query $QUERY --seconds $SECS)
    C1=$(cpu $2)
    python3 -c "
import json, os, sys
r = json.loads(sys.argv[2]); cpu = (int(sys.argv[4]) - int(sys.argv[3])) / os.sysconf(\"SC_CLK_TCK\")
print(json.dumps({\"node\": sys.argv[1], \"query\": sys.argv[5], \"replies_per_s\": round(r[\"replies\"] / r[\"seconds\"]),
                  \"cpu_cores\": round(cpu / r[\"seconds\"], 2), \"replies_per_cpu_s\": round(r[\"replies\"] / cpu) if cpu else None}))
" "$1" "$R" "$C0" "$C1" "$QUERY"
}
python3 $I/libtorrent_dht.py --port 7000 --bench > /tmp/bench_lt.$$ &
LT=$!
$ROOT/target/release/overlay dht start --bind 127.0.0.1:7001 > /tmp/bench_ov.$$ 2>&1 &
OV=$!
i=0; until grep -q ready /tmp/bench_lt.$$ 2>/dev/null && grep -q listening /tmp/bench_ov.$$; do
    i=$((i+1)); [ $i -lt 200 ] || { echo "a node did not start" >&2; exit 1; }; sleep 0.05; done
A=$(measure libtorrent $LT 7000)
B=$(measure overlay $OV 7001)
kill $LT $OV; wait 2>/dev/null || true
rm -f /tmp/bench_lt.$$ /tmp/bench_ov.$$
echo "$A"; echo "$B"
python3 -c "
import json, sys
a, b = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(json.dumps({\"ratio_replies_per_cpu_s\": round(b[\"replies_per_cpu_s\"] / a[\"replies_per_cpu_s\"], 2),
                  \"ratio_replies_per_s\": round(b[\"replies_per_s\"] / a[\"replies_per_s\"], 2)}))
" "$A" "$B"
' sh "$ROOT" "$QUERY" "$SECONDS_"
