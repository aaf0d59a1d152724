#!/usr/bin/env bash
# The C peer against real processes: four `overlay dht start` nodes on 127.0.0.1, a peer
# announced through the `overlay` command, then examples/dht_peer.c bootstraps, announces
# and must find both its own announce and the command's; finally the `overlay` command
# must find the C peer's announce. The nodes are always stopped.
#
#   bindings-c/tests/dht_peer.sh OVERLAY_BINARY DHT_PEER_BINARY
#
# bindings-c/test.sh runs it inside a private network namespace (`unshare -n`), so only
# loopback exists and no port can clash with anything else on the machine.
set -euo pipefail
overlay=$1
peer=$2
info_hash=5fbfbff10c5d6a4ec8a88e4c6ab4c28b95eee401
base=$(( 20000 + RANDOM % 30000 ))
dir=$(mktemp -d)
pids=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap stop EXIT

# Waits up to 10 s for `text` in a node's output.
await() {
  for _ in $(seq 100); do
    grep -q "$2" "$dir/node$1" && return
    sleep 0.1
  done
  echo "node $1 did not print \"$2\":"
  cat "$dir/node$1"
  exit 1
}

"$overlay" dht start --bind "127.0.0.1:$base" --seed 1 >"$dir/node0" 2>&1 &
pids+=($!)
await 0 listening
for i in 1 2 3; do
  "$overlay" dht start --bind "127.0.0.1:$((base + i))" --bootstrap "127.0.0.1:$base" \
    --seed $((i + 1)) >"$dir/node$i" 2>&1 &
  pids+=($!)
done
for i in 1 2 3; do await "$i" bootstrapped; done

# A peer of the torrent announced by the Rust command line...
timeout 30 "$overlay" dht announce "$info_hash" --port 40000 --via "127.0.0.1:$((base + 1))"
# ...the C peer joins, announces, and finds both.
timeout 40 "$peer" --bootstrap "127.0.0.1:$((base + 2))" --info-hash "$info_hash" \
  --port 51413 --timeout 30 | tee "$dir/peer"
grep -q "127.0.0.1:51413  (this node)" "$dir/peer"
grep -q "127.0.0.1:40000" "$dir/peer"
# The C peer's announce, seen by the Rust command line through another node.
timeout 30 "$overlay" dht get-peers "$info_hash" --via "127.0.0.1:$((base + 3))" | tee "$dir/cli"
grep -q "127.0.0.1:51413" "$dir/cli"
echo "dht_peer: ok"
