#!/bin/sh
# How many KRPC queries/s does libtorrent's DHT answer here, and at what CPU cost?
#   bench_libtorrent.sh [bench_blaster.py options, e.g. --query find_node --seconds 5]
# Starts `libtorrent_dht.py --bench` (all DHT rate limits lifted) in a private
# network namespace, runs bench_blaster.py against it and prints the blaster's
# JSON line plus libtorrent's CPU time during the run, from which
# "queries/s per core" = replies / cpu_seconds.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
exec timeout 120 unshare -n sh -c '
set -eu
ip link set lo up
HERE=$1; shift
python3 "$HERE/libtorrent_dht.py" --port 7000 --bench > /tmp/bench_lt.$$ &
LT=$!
i=0; until grep -q ready /tmp/bench_lt.$$ 2>/dev/null; do
    i=$((i+1)); [ $i -lt 200 ] || { echo "libtorrent did not start" >&2; exit 1; }; sleep 0.05; done
# utime+stime (clock ticks) of the whole libtorrent process
cpu() { awk "{print \$14+\$15}" /proc/$LT/stat; }
C0=$(cpu)
OUT=$(python3 "$HERE/bench_blaster.py" --target 127.0.0.1:7000 "$@")
C1=$(cpu)
kill $LT; wait $LT || true
echo "$OUT"
python3 -c "
import json, os, sys
r = json.loads(sys.argv[1]); cpu = (int(sys.argv[3]) - int(sys.argv[2])) / os.sysconf(\"SC_CLK_TCK\")
print(json.dumps({\"libtorrent_cpu_s\": round(cpu, 2), \"libtorrent_cores\": round(cpu / r[\"seconds\"], 2),
                  \"replies_per_cpu_s\": round(r[\"replies\"] / cpu) if cpu else None}))
" "$OUT" "$C0" "$C1"
tail -n1 /tmp/bench_lt.$$; rm -f /tmp/bench_lt.$$
' sh "$HERE" "$@"
