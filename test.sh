#!/usr/bin/env bash
# The project's test command. Installs what it needs (idempotently; fast when present), then
# runs everything CI checks: formatting, clippy -D warnings, docs, the no_std/no-alloc builds
# of overlay-core, the whole test suite (fuzz corpora replayed included; the C header drift
# check among them), a smoke run of the reproduction binary, the `overlay demo` main job, and
# the C bindings' C side (bindings-c/test.sh: C tests plain, under valgrind and ASan, the C
# DHT peer against `overlay dht` processes, pkg-config and CMake), and the mobile bindings'
# Kotlin and Swift suites (bindings-mobile/test.sh: installs JNA, kotlinc and a Debian
# trixie chroot with Swift under ~/.cache/overlay the first time), and the WASM bindings'
# JS side (bindings-wasm/test.sh: the wasm-bindgen CLI, chromium and playwright-core the
# first time; Node tests, wasm-bindgen-test under Node and Chromium, the page in Chromium
# joining `overlay` peers through the WebSocket bridge), and the firmware (firmware/test.sh:
# QEMU's Arm emulator the first time; both boards built and their footprint reported, the
# QEMU board joining `overlay` DHT and Chord peers over an emulated LAN9118).
#
#   ./test.sh          everything (what CI runs)
#   ./test.sh quick    skip docs, the extra targets, the smoke runs, the C, mobile, WASM and
#                      firmware side: for iterating
set -euo pipefail
cd "$(dirname "$0")"

MODE=${1:-full}
NO_STD_TARGETS=(thumbv6m-none-eabi thumbv7em-none-eabihf riscv32imc-unknown-none-elf wasm32-unknown-unknown)
start=$(date +%s)
step() { printf '\n==> %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "toolchain"
command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup first" >&2; exit 1; }
components=$(rustup component list --installed 2>/dev/null || true)
for c in rustfmt clippy; do
  grep -q "^$c" <<<"$components" || rustup component add "$c"
done
if [ "$MODE" != quick ]; then
  installed=$(rustup target list --installed)
  for t in "${NO_STD_TARGETS[@]}"; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
fi

step "interop peers: libtorrent (PyPI), aria2, opentracker, qbittorrent-nox and transmission (Debian) for the DHT and BitTorrent interop tests"
INTEROP_SKIP_TCPDUMP=1 sh node/tests/interop/install.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
if [ "$MODE" != quick ]; then
  # The WASM bindings as they are shipped, and their wasm-bindgen-test suite.
  cargo clippy -p overlay-wasm --target wasm32-unknown-unknown --all-targets --locked -- -D warnings
fi

if [ "$MODE" != quick ]; then
  step "no_std, no alloc: overlay-core for ${NO_STD_TARGETS[*]}"
  # The crate must never declare `extern crate alloc`, and no dependency may be built with
  # its `alloc` or `std` feature for a bare-metal target.
  if grep -rn "extern crate alloc" core/src; then
    echo "overlay-core must not use alloc" >&2
    exit 1
  fi
  if cargo tree -p overlay-core -e features --target thumbv6m-none-eabi --edges normal \
      | grep -E 'feature "(alloc|std)"'; then
    echo "a dependency of overlay-core is built with alloc or std" >&2
    exit 1
  fi
  for t in "${NO_STD_TARGETS[@]}"; do
    cargo build -p overlay-core --target "$t" --release --locked
  done

  step "cargo doc -D warnings"
  RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked
fi

step "cargo test --workspace"
test_log=$(mktemp)
trap 'rm -f "$test_log"' EXIT
cargo test --workspace --locked 2>&1 | tee "$test_log"

if [ "$MODE" != quick ]; then
  step "reproduction binaries smoke run"
  cargo run --release --locked -p overlay-sim --bin chord-paper -- stoica --from 5 --to 7 --plot target/stoica-smoke.svg
  cargo run --release --locked -p overlay-sim --bin dht-paper -- scaling --sizes 500,1000 --plot target/dht-scaling-smoke.svg
  cargo run --release --locked -p overlay-sim --bin gnutella-paper -- --quick --out target/gnutella-smoke
  cargo run --release --locked -p overlay-sim --bin bittorrent-paper -- --quick --out target/bittorrent-smoke
  step "the main job: overlay demo (real peers on loopback), and overlay sim"
  cargo build --release --locked -p overlay-node
  timeout 120 target/release/overlay demo --out target/overlay-demo
  timeout 120 target/release/overlay sim chord --nodes 256 --lookups 1024 --plot target/sim-hops.svg
  timeout 120 target/release/overlay sim dht --nodes 2000 --lookups 500 --plot target/sim-dht-rounds.svg
  timeout 120 target/release/overlay sim gnutella --nodes 2000 --queries 50 --plot target/sim-gnutella.svg

  step "C bindings: C tests (plain, valgrind, ASan+UBSan), the C DHT peer, pkg-config, CMake"
  c_log=$(mktemp)
  trap 'rm -f "$test_log" "$c_log"' EXIT
  timeout 600 bindings-c/test.sh 2>&1 | tee "$c_log"

  step "mobile bindings: Kotlin (JVM) and Swift (trixie chroot) against overlay peers"
  mobile_log=$(mktemp)
  trap 'rm -f "$test_log" "$c_log" "$mobile_log"' EXIT
  timeout 1200 bindings-mobile/test.sh 2>&1 | tee "$mobile_log"

  step "WASM bindings: Node tests, wasm-bindgen-test (Node, Chromium), the page in Chromium"
  wasm_log=$(mktemp)
  trap 'rm -f "$test_log" "$c_log" "$mobile_log" "$wasm_log"' EXIT
  timeout 900 bindings-wasm/test.sh 2>&1 | tee "$wasm_log"

  step "firmware: both boards, footprint, the QEMU board in a DHT and a Chord ring"
  firmware_log=$(mktemp)
  trap 'rm -f "$test_log" "$c_log" "$mobile_log" "$wasm_log" "$firmware_log"' EXIT
  timeout 900 firmware/test.sh 2>&1 | tee "$firmware_log"
fi

step "all checks passed"
# One closing line with the totals of every cargo test binary (unit, integration, doc).
awk '/^test result:/ { p += $4; f += $6 } END { printf "tests: %d passed, %d failed\n", p, f }' "$test_log"
if [ "$MODE" != quick ]; then
  tail -n 1 "$c_log"
  tail -n 3 "$mobile_log"
  tail -n 1 "$wasm_log"
  tail -n 1 "$firmware_log"
fi
