#!/usr/bin/env python3
"""BitTorrent on loopback: one seeder, one downloader, a 1 GiB torrent in 1 MiB pieces.

Our client (`overlay torrent download`, release build), aria2c and libtorrent each
download from a libtorrent seeder and from an aria2c seeder, RUNS times in turn; the
peers find each other through `overlay tracker`. Prints a markdown table: median MB/s
(wall time from the downloader's start to its exit, as each client counts it) and the
downloader's CPU seconds per GiB (user + system, from wait4), with ratios to ours.

Run it in a private network namespace, as root, after `cargo build --release -p overlay-node`
and `sh node/tests/interop/install.sh`:

    unshare -n sh -c 'ip link set lo up && python3 node/benches/torrent_loopback.py [--runs 3] [--mib 1024]'
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OVERLAY = os.path.join(ROOT, "target/release/overlay")
LT = os.path.join(ROOT, "node/tests/interop/libtorrent_torrent.py")
ARIA2 = ["aria2c", "--enable-dht=false", "--bt-enable-lpd=false", "--enable-peer-exchange=false",
         "--bt-external-ip=127.0.0.1", "--seed-ratio=0.0", "--file-allocation=none",
         "--summary-interval=0", "--console-log-level=error", "--allow-overwrite=true"]


def wait_line(proc, key, limit=60):
    """Reads the child's JSON lines until one has `key` true (or names the event `key`)."""
    end = time.time() + limit
    while time.time() < end:
        line = proc.stdout.readline()
        if not line:
            break
        try:
            v = json.loads(line)
        except ValueError:
            continue
        if v.get(key) is True or v.get("event") == key:
            return v
    raise RuntimeError(f"no {key} line")


def seeder(kind, torrent, seed_dir):
    if kind == "libtorrent":
        p = subprocess.Popen([sys.executable, LT, "--torrent", torrent, "--dir", seed_dir, "--port", "6881",
                              "--seconds", "3600"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        wait_line(p, "finished", 120)
    else:
        p = subprocess.Popen(ARIA2 + ["--check-integrity=true", "--seed-time=60", "--listen-port=6881",
                                      f"--dir={seed_dir}", torrent], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(5)  # checks 1 GiB, then announces
    return p


def download(kind, torrent, out):
    """Runs one download to its end: (seconds, cpu seconds)."""
    if kind == "overlay":
        cmd = [OVERLAY, "--json", "torrent", "download", torrent, "-o", out, "--bind", "127.0.0.1:0"]
    elif kind == "aria2":
        cmd = ARIA2 + ["--seed-time=0", "--listen-port=6882", f"--dir={out}", torrent]
    else:
        cmd = [sys.executable, LT, "--torrent", torrent, "--dir", out, "--port", "6882", "--seconds", "300",
               "--exit-when-finished"]
    start = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(p.pid, 0)
    wall = time.time() - start
    if status != 0:
        raise RuntimeError(f"{kind} exited with {status}")
    return wall, usage.ru_utime + usage.ru_stime


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--mib", type=int, default=1024)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="overlay-torrent-bench-")
    tracker = subprocess.Popen([OVERLAY, "--json", "tracker", "--bind", "127.0.0.1:6969", "--interval", "5"],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        wait_line(tracker, "listening")
        seed_dir = os.path.join(work, "seed")
        os.makedirs(seed_dir)
        data = os.path.join(seed_dir, "data.bin")
        with open(data, "wb") as f:
            for _ in range(a.mib):
                f.write(os.urandom(1 << 20))
        torrent = os.path.join(work, "t.torrent")
        subprocess.run([OVERLAY, "torrent", "create", data, "-o", torrent, "--tracker",
                        "http://127.0.0.1:6969/announce"], check=True, stdout=subprocess.DEVNULL)
        size = a.mib << 20
        results = {}
        for seed_kind in ["libtorrent", "aria2"]:
            s = seeder(seed_kind, torrent, seed_dir)
            try:
                for run in range(a.runs):
                    for kind in ["overlay", "aria2", "libtorrent"]:
                        out = os.path.join(work, "dl")
                        shutil.rmtree(out, ignore_errors=True)
                        os.makedirs(out)
                        wall, cpu = download(kind, torrent, out)
                        if subprocess.run(["cmp", data, os.path.join(out, "data.bin")]).returncode != 0:
                            raise RuntimeError(f"{kind} from {seed_kind}: the download differs")
                        results.setdefault((seed_kind, kind), []).append((wall, cpu))
                        print(f"# {kind} from {seed_kind}, run {run + 1}: {size / wall / 1e6:.0f} MB/s, "
                              f"{cpu:.2f} CPU s", file=sys.stderr, flush=True)
                        shutil.rmtree(out, ignore_errors=True)
            finally:
                s.kill()
                s.wait()
        gib = size / (1 << 30)
        print(f"| seeder | downloader | MB/s (median of {a.runs}) | CPU s per GiB | MB/s vs ours | CPU vs ours |")
        print("|---|---|---|---|---|---|")
        for seed_kind in ["libtorrent", "aria2"]:
            ours = results[(seed_kind, "overlay")]
            ours_rate = statistics.median(size / w / 1e6 for w, _ in ours)
            ours_cpu = statistics.median(c / gib for _, c in ours)
            for kind in ["overlay", "aria2", "libtorrent"]:
                r = results[(seed_kind, kind)]
                rate = statistics.median(size / w / 1e6 for w, _ in r)
                cpu = statistics.median(c / gib for _, c in r)
                print(f"| {seed_kind} | {kind} | {rate:.0f} | {cpu:.2f} | {rate / ours_rate:.2f} | {cpu / ours_cpu:.2f} |")
    finally:
        tracker.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
