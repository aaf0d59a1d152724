#!/bin/sh
# aria2c's DHT must find a peer that another DHT node announced, and dial it.
#
#   aria2_find_peer.sh [--pcap FILE] [OPTIONS]
#       Self-contained: in a fresh network namespace (loopback only), starts a
#       libtorrent DHT node S on 127.0.0.1:6881 and a second one A on :6882
#       that bootstraps from S and announces the test torrent's info hash with
#       port 6890; then aria2c bootstraps from S only and must dial 6890 with a
#       BitTorrent handshake for that info hash.
#
#   aria2_find_peer.sh --entry PORT [--pcap FILE] [OPTIONS]
#       Swappable announcer: runs in the CALLER's network namespace (which must
#       have only loopback up) against a DHT node that is already listening on
#       127.0.0.1:PORT and will answer get_peers for the info hash printed by
#       `python3 aria2_find_peer.py --print-infohash` with 127.0.0.1:6890
#       (e.g. our node after somebody announced there, or our node announcing
#       itself). Nothing is announced by this script.
#
# OPTIONS go to aria2_find_peer.py: --peer-port N, --torrent, --nodes-key,
# --fresh-dht, --timeout S, --keep DIR (see its --help). --pcap FILE records
# all UDP on lo with tcpdump; decode it with krpc_pcap.py.
# Prints the JSON result line; exit status 0 = aria2 sent the right handshake.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)

ENTRY= PCAP=
while [ $# -gt 0 ]; do
    case "$1" in
        --entry) ENTRY=$2; shift 2 ;;
        --pcap) PCAP=$(realpath -m "$2"); shift 2 ;;
        *) break ;;
    esac
done

if [ -z "$ENTRY" ]; then
    # re-run this script as the --entry variant inside a private namespace,
    # with two libtorrent nodes in front of it
    exec timeout 120 unshare -n sh -c '
        set -eu
        ip link set lo up
        HERE=$1; shift
        # S: the entry point / storage node (stdin kept open by sleep; killed below)
        sleep 120 | python3 "$HERE/libtorrent_dht.py" --port 6881 >/dev/null &
        S=$!
        # wait until S listens on UDP 6881
        i=0; until ss -Hlun "sport = :6881" | grep -q 6881; do
            i=$((i+1)); [ $i -lt 100 ] || { echo "S did not start" >&2; exit 1; }; sleep 0.05; done
        rc=0
        "$HERE/aria2_find_peer.sh" --entry 6881 "$@" --announce-with-libtorrent 6882 || rc=$?
        kill $S 2>/dev/null || true
        exit $rc' sh "$HERE" ${PCAP:+--pcap "$PCAP"} "$@"
fi

# only loopback may be up here (rule for every interop test)
if ip -o link show up | grep -v ': lo:' | grep -q .; then
    echo "aria2_find_peer.sh: a non-loopback interface is up; run inside unshare -n" >&2
    exit 2
fi

TCPDUMP=
if [ -n "$PCAP" ]; then
    tcpdump -i lo -Z root -U -w "$PCAP" udp 2>/dev/null &
    TCPDUMP=$!
    sleep 0.3
fi
rc=0
timeout 90 python3 "$HERE/aria2_find_peer.py" --entry "$ENTRY" "$@" || rc=$?
if [ -n "$TCPDUMP" ]; then
    sleep 0.2
    kill -INT "$TCPDUMP"
    wait "$TCPDUMP" || true
fi
exit $rc
