#!/usr/bin/env bash
# The C side of overlay-ffi, as CI runs it (../test.sh calls this after the Rust tests; the
# header drift check is a Rust test, tests/header.rs, so `cargo test` runs it):
#
#   1. builds liboverlay_ffi.a and liboverlay_ffi.so (release) and a pkg-config file for
#      them (target/release/pkgconfig/overlay.pc);
#   2. checks that include/overlay.h compiles alone as C99 and as C++11;
#   3. compiles the C tests (tests/*.c) with gcc -Wall -Wextra -Werror against the static
#      library and runs each plainly, under valgrind (a leak is an error) and under
#      AddressSanitizer + UndefinedBehaviorSanitizer;
#   4. builds examples/dht_peer.c through pkg-config against the shared library and runs
#      tests/dht_peer.sh: the C peer joins `overlay dht start` processes on loopback,
#      inside a private network namespace when it can make one;
#   5. builds the CMake example (examples/cmake) through pkg-config and runs it.
#
# Installs what is missing (Debian: gcc, g++, pkg-config, valgrind, cmake). Ends with one
# line of totals.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> C: %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

step "tools"
need=()
for tool in gcc:gcc g++:g++ pkg-config:pkg-config valgrind:valgrind cmake:cmake; do
  command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

step "liboverlay_ffi (static and shared) and overlay.pc"
# `--print native-static-libs` names the system libraries the static library needs; cargo
# replays the note when the build is fresh.
build_log=$(cargo rustc --release --locked -p overlay-ffi --lib -- --print native-static-libs 2>&1) \
  || { echo "$build_log"; exit 1; }
native=$(sed -n 's/^note: native-static-libs: //p' <<<"$build_log" | tail -n 1)
[ -n "$native" ] || { echo "$build_log"; echo "no native-static-libs note" >&2; exit 1; }
lib=$PWD/target/release
out=$PWD/target/c
mkdir -p "$out" "$lib/pkgconfig"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' bindings-c/Cargo.toml | head -n 1)
sed -e "s|@LIBDIR@|$lib|" -e "s|@INCLUDEDIR@|$PWD/bindings-c/include|" \
  -e "s|@VERSION@|$version|" -e "s|@NATIVE_LIBS@|$native|" \
  bindings-c/overlay.pc.in >"$lib/pkgconfig/overlay.pc"
export PKG_CONFIG_PATH=$lib/pkgconfig
echo "pkg-config overlay $(pkg-config --modversion overlay): $(pkg-config --cflags --libs overlay)"

step "the header alone, as C99 and as C++11"
echo '#include "overlay.h"' | gcc -std=c99 -Wall -Wextra -Werror -pedantic -fsyntax-only -Ibindings-c/include -x c -
echo '#include "overlay.h"' | g++ -std=c++11 -Wall -Wextra -Werror -pedantic -fsyntax-only -Ibindings-c/include -x c++ -

cflags=(-std=c11 -Wall -Wextra -Werror -pedantic -g -Ibindings-c/include)
tests=()
for src in bindings-c/tests/*.c; do
  name=$(basename "$src" .c)
  tests+=("$name")
  # shellcheck disable=SC2086 # $native is a list of flags
  gcc "${cflags[@]}" "$src" "$lib/liboverlay_ffi.a" $native -o "$out/$name"
  # shellcheck disable=SC2086
  gcc "${cflags[@]}" -fsanitize=address,undefined -fno-sanitize-recover=all \
    -fno-omit-frame-pointer "$src" "$lib/liboverlay_ffi.a" $native -o "$out/$name-asan"
done

declare -A passed=([plain]=0 [valgrind]=0 [asan]=0)
# Runs one test program (the command after the label) and adds up its "N passed" line.
run() {
  local label=$1 log
  shift
  log=$(timeout 300 "$@" 2>&1) || { echo "$log"; echo "FAILED: $label: $*" >&2; exit 1; }
  echo "$log" | sed "s/^/  [$label] /"
  passed[$label]=$(( passed[$label] + $(sed -n 's/^[a-z_]*: \([0-9]*\) passed, 0 failed$/\1/p' <<<"$log" | tail -n 1) ))
}

step "C tests (${tests[*]})"
for t in "${tests[@]}"; do run plain "$out/$t"; done

step "C tests under valgrind"
for t in "${tests[@]}"; do
  run valgrind valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect,possible \
    --error-exitcode=1 "$out/$t"
done

step "C tests under AddressSanitizer and UndefinedBehaviorSanitizer"
for t in "${tests[@]}"; do
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 run asan "$out/$t-asan"
done

step "the C peer (examples/dht_peer.c, pkg-config, shared library) against overlay dht nodes"
# shellcheck disable=SC2046 # pkg-config prints a list of flags
gcc -std=c11 -Wall -Wextra -Werror -pedantic -O2 bindings-c/examples/dht_peer.c \
  $(pkg-config --cflags --libs overlay) -Wl,-rpath,"$(pkg-config --variable=libdir overlay)" \
  -o "$out/dht_peer"
cargo build --release --locked -p overlay-node # the `overlay` command the peer joins
# A private network namespace has only loopback: nothing else is reachable and no port
# can clash with another run. Without the privilege for one, plain loopback will do.
if unshare -n true 2>/dev/null; then
  unshare -n bash -c 'ip link set lo up && exec "$@"' _ \
    bindings-c/tests/dht_peer.sh target/release/overlay "$out/dht_peer"
else
  bindings-c/tests/dht_peer.sh target/release/overlay "$out/dht_peer"
fi

step "the CMake example (examples/cmake), through pkg-config"
rm -rf "$out/cmake"
cmake -S bindings-c/examples/cmake -B "$out/cmake" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$out/cmake" >/dev/null
"$out/cmake/chord_ring"

step "done"
echo "C bindings: ${#tests[@]} C test programs, checks passed: ${passed[plain]} plain, ${passed[valgrind]} under valgrind, ${passed[asan]} under ASan+UBSan; C peer and CMake example ok ($(( $(date +%s) - start )) s)"
