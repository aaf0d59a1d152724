#!/usr/bin/env bash
# The firmware's checks, run by ../test.sh: installs what it needs (the thumbv7em target,
# QEMU's Arm system emulator, binutils for arm-none-eabi-size; idempotent), checks format,
# clippy and docs for both boards, builds the QEMU board with each protocol alone and with both
# and the NUCLEO-F767ZI board, reports their footprint, and runs the QEMU test
# (node/tests/firmware_qemu.rs) in a private network and PID namespace, so that QEMU and
# every host peer die with it. Ends with one summary line.
set -euo pipefail
cd "$(dirname "$0")"

TARGET=thumbv7em-none-eabihf
OUT=../target/firmware/$TARGET/release
FOOTPRINT=$PWD/../target/firmware/footprint.txt

rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
missing=()
command -v qemu-system-arm >/dev/null || missing+=(qemu-system-arm)
command -v arm-none-eabi-size >/dev/null || missing+=(binutils-arm-none-eabi)
command -v ip >/dev/null || missing+=(iproute2)
if [ ${#missing[@]} -gt 0 ]; then
  echo "install: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

NUCLEO=(--no-default-features --features dht,chord,nucleo-f767zi)
cargo fmt -- --check
cargo clippy --locked --release --bins --lib -- -D warnings
cargo clippy --locked --release --bins --lib "${NUCLEO[@]}" -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps "${NUCLEO[@]}"

# Flash is what is programmed (.text with .rodata and the vector table, plus .data's
# initial values); static RAM is .data, .bss and .uninit. The stack comes on top: the QEMU
# test reports its high-water mark.
: > "$FOOTPRINT"
footprint() { # NAME ELF
  arm-none-eabi-size "$2" | awk -v name="$1" 'NR == 2 {
    printf "%-28s flash %6d B  static RAM %6d B\n", name, $1 + $2, $2 + $3 }' | tee -a "$FOOTPRINT"
}
for features in dht chord; do
  cargo build --locked --release --no-default-features --features "$features,mps2-an386" --bin mps2-an386
  footprint "mps2-an386 $features" "$OUT/mps2-an386"
done
cargo build --locked --release "${NUCLEO[@]}" --bin nucleo-f767zi
footprint "nucleo-f767zi dht+chord" "$OUT/nucleo-f767zi"
# Last, so that the ELF the test boots is the default build (both protocols).
cargo build --locked --release --bin mps2-an386
footprint "mps2-an386 dht+chord" "$OUT/mps2-an386"

cd ..
test_bin=$(cargo test --locked -p overlay-node --test firmware_qemu --no-run 2>&1 \
  | grep -o 'target/debug/deps/firmware_qemu-[0-9a-f]*' | tail -n 1)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
OVERLAY_TEST_IN_NETNS=1 OVERLAY_FIRMWARE_ELF="target/firmware/$TARGET/release/mps2-an386" \
  timeout 300 unshare --net --pid --fork --kill-child --mount-proc \
  sh -c 'ip link set lo up && exec "$0" --ignored --exact firmware_peer_joins_dht_and_chord_on_qemu --nocapture' \
  "$test_bin" 2>&1 | tee "$log"
grep -q "test result: ok. 1 passed" "$log"

stack=$(grep -o 'stack_used=[0-9]*' "$log" | tail -n 1 | cut -d= -f2)
flash=$(awk '/dht\+chord/ && /mps2/ { print $4 }' "$FOOTPRINT")
ram=$(awk '/dht\+chord/ && /mps2/ { print $8 }' "$FOOTPRINT")
echo "firmware: QEMU test passed; mps2-an386 DHT+Chord: flash $flash B, RAM $((ram + stack)) B ($ram static + $stack stack peak)"
