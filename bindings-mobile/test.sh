#!/usr/bin/env bash
# The foreign-language side of overlay-mobile, as CI runs it (../test.sh calls this after
# the Rust tests):
#
#   1. installs what is missing (install.sh: JNA, the Kotlin compiler, a Debian trixie
#      chroot with Swift; cached under ~/.cache/overlay);
#   2. builds liboverlay_mobile and generates the Kotlin and Swift sources from it
#      (uniffi-bindgen --library), and type-checks the library for Android and iOS;
#   3. packages them: target/mobile/overlay-mobile.jar (the Kotlin sources compiled, with
#      the native library inside for JNA) and the Swift package (swift/: the generated
#      Overlay.swift and OverlayFFI.h copied into its targets);
#   4. starts `overlay` Chord, DHT and Gnutella peers on loopback, inside a private network
#      namespace, and runs the Kotlin tests (kotlin/OverlayTest.kt) and the Swift tests
#      (swift/Sources/OverlayCheck) against them, the Swift ones in the chroot with the
#      checkout bind-mounted.
#
# Each suite ends with `N passed, N failed`; this script ends with one line of totals.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> mobile: %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

if [ "${1:-}" != inside ]; then
  step "install (JNA, kotlinc, Swift chroot)"
  eval "$(bash bindings-mobile/install.sh)"
  export KOTLINC JNA SWIFT_ROOT

  step "liboverlay_mobile, uniffi-bindgen, overlay"
  cargo build --locked --release -p overlay-mobile -p uniffi-bindgen
  cargo build --locked --release -p overlay-node
  out=target/mobile
  rm -rf "$out" && mkdir -p "$out/kotlin" "$out/swift"
  lib=target/release/liboverlay_mobile.so
  target/release/uniffi-bindgen generate --library "$lib" --language kotlin --out-dir "$out/kotlin" --no-format
  target/release/uniffi-bindgen generate --library "$lib" --language swift --out-dir "$out/swift" --no-format

  step "Android and iOS: the library type-checks for their targets"
  # Linking needs the Android NDK and Xcode, which these machines lack (docs/mobile.md
  # has the steps); `cargo check` proves the code builds for both.
  installed=$(rustup target list --installed)
  for t in aarch64-linux-android aarch64-apple-ios; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
    cargo check --locked -p overlay-mobile --lib --target "$t"
  done

  step "Kotlin: overlay-mobile.jar and the tests"
  # JNA finds the library inside the jar, under its platform's resource folder
  # (linux-x86-64, linux-aarch64).
  platform=linux-$(uname -m | sed 's/_/-/')
  mkdir -p "$out/jar/$platform"
  cp "$lib" "$out/jar/$platform/"
  "$KOTLINC" -nowarn -cp "$JNA" "$out/kotlin/dev/overlay/overlay_mobile.kt" -d "$out/jar"
  (cd "$out/jar" && jar cf ../overlay-mobile.jar .)
  "$KOTLINC" -nowarn -cp "$out/overlay-mobile.jar:$JNA" bindings-mobile/kotlin/OverlayTest.kt \
    -include-runtime -d "$out/overlay-test.jar"

  step "Swift package: generated sources into place"
  pkg=bindings-mobile/swift
  mkdir -p "$pkg/Sources/Overlay" "$pkg/Sources/OverlayFFI/include"
  cp "$out/swift/Overlay.swift" "$pkg/Sources/Overlay/Overlay.swift"
  cp "$out/swift/OverlayFFI.h" "$pkg/Sources/OverlayFFI/include/OverlayFFI.h"
  mkdir -p "$pkg/lib" && cp "$lib" "$pkg/lib/"

  step "tests against overlay peers, in private network and mount namespaces"
  # The network namespace has only loopback: nothing else is reachable and no port can
  # clash. The mount namespace takes the chroot's mounts (the checkout, /proc) with it when
  # the run ends, however it ends, so none outlives it on the host.
  if unshare -n -m --propagation private true 2>/dev/null; then
    exec unshare -n -m --propagation private bash "$0" inside
  fi
  echo "(no network namespace: running on the host's loopback)"
  exec bash "$0" inside
fi

# ---- inside the namespace: for each suite, peers up, the suite, peers down ----
ip link set lo up 2>/dev/null || true
overlay=$PWD/target/release/overlay
work=$(mktemp -d)
pids=()
mounted=()
stop() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for m in "${mounted[@]}"; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop EXIT

# Waits up to 10 s for `text` in a peer's output.
await() {
  for _ in $(seq 100); do
    grep -q "$2" "$work/$1" && return
    sleep 0.1
  done
  echo "$1 did not print \"$2\":"
  cat "$work/$1"
  exit 1
}

# Starts a fresh set of peers for one suite (so that one suite's departed nodes never
# slow the next one's lookups): four Chord peers, four DHT nodes, two Gnutella
# ultrapeers (the second sharing a file). Sets $chord, $dht, $gnutella; stops the previous
# set first.
peers_up() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  pids=()
  local dir=$work/$1 base=$(( 20000 + RANDOM % 30000 ))
  mkdir -p "$dir/share"
  chord=127.0.0.1:$base
  "$overlay" chord join --bind "$chord" --stabilize-ms 200 --seed 1 >"$dir/chord0" 2>&1 &
  pids+=($!)
  await "$1/chord0" "started a new ring"
  for i in 1 2 3; do
    "$overlay" chord join --bind "127.0.0.1:$((base + i))" --bootstrap "$chord" --stabilize-ms 200 \
      --seed $((i + 1)) >"$dir/chord$i" 2>&1 &
    pids+=($!)
  done
  dht=127.0.0.1:$((base + 10))
  "$overlay" dht start --bind "$dht" --seed 1 >"$dir/dht0" 2>&1 &
  pids+=($!)
  await "$1/dht0" listening
  for i in 1 2 3; do
    "$overlay" dht start --bind "127.0.0.1:$((base + 10 + i))" --bootstrap "$dht" --seed $((i + 1)) \
      >"$dir/dht$i" 2>&1 &
    pids+=($!)
  done
  head -c 300000 /dev/urandom >"$dir/share/overlay song.ogg"
  gnutella=127.0.0.1:$((base + 20))
  "$overlay" gnutella serve --listen "$gnutella" --seed 1 >"$dir/gnutella0" 2>&1 &
  pids+=($!)
  await "$1/gnutella0" listening
  "$overlay" gnutella serve --listen "127.0.0.1:$((base + 21))" --connect "$gnutella" \
    --share "$dir/share" --seed 2 >"$dir/gnutella1" 2>&1 &
  pids+=($!)
  for i in 1 2 3; do await "$1/chord$i" "joined the ring"; done
  for i in 1 2 3; do await "$1/dht$i" bootstrapped; done
  await "$1/gnutella1" connected
  sleep 1  # a few stabilize rounds: every Chord peer has its predecessor too
}

results=()

step "Kotlin tests"
peers_up kotlin
timeout 240 java -cp "target/mobile/overlay-test.jar:target/mobile/overlay-mobile.jar:$JNA" \
  OverlayTestKt --overlay "$overlay" --chord "$chord" --dht "$dht" --gnutella "$gnutella" \
  --work "$work/kotlin" | tee "$work/kotlin.log" || true
results+=("kotlin: $(tail -n 1 "$work/kotlin.log")")

step "Swift tests (trixie chroot)"
peers_up swift
root=$SWIFT_ROOT
mkdir -p "$root/overlay" "$root/proc"
mount --bind "$PWD" "$root/overlay" && mounted+=("$root/overlay")
mount -t proc proc "$root/proc" && mounted+=("$root/proc")
timeout 480 chroot "$root" /usr/bin/env -i PATH=/usr/bin:/bin HOME=/root \
  LD_LIBRARY_PATH=/usr/libexec/swift/lib/swift/linux:/overlay/bindings-mobile/swift/lib \
  bash -c 'cd /overlay/bindings-mobile/swift &&
    swift build -c debug --scratch-path /overlay/target/mobile/swiftpm -Xlinker -L/overlay/bindings-mobile/swift/lib >&2 &&
    /overlay/target/mobile/swiftpm/debug/OverlayCheck "$@"' swift \
  --overlay /overlay/target/release/overlay --chord "$chord" --dht "$dht" \
  | tee "$work/swift.log" || true
results+=("swift: $(tail -n 1 "$work/swift.log")")

printf '\n'
ok=1
for r in "${results[@]}"; do
  echo "$r"
  [[ $r =~ ([0-9]+)\ passed,\ 0\ failed$ ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] || ok=0
done
echo "mobile: $( [ $ok = 1 ] && echo ok || echo FAILED ) ($(( $(date +%s) - start ))s)"
[ $ok = 1 ]
