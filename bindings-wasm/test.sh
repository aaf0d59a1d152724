#!/usr/bin/env bash
# The JS side of overlay-wasm, as CI runs it (../test.sh calls this after the Rust tests):
#
#   1. installs what is missing (install.sh: the wasm32 target, the pinned wasm-bindgen
#      CLI, chromium and chromedriver, playwright-core);
#   2. builds the npm package (build.sh: pkg/web, pkg/node, the page's copy in www/pkg) and
#      prints the .wasm sizes;
#   3. runs the Node tests (test/*.test.mjs: Chord and DHT peers in one process, Gnutella and
#      BitTorrent over in-memory connections, error paths), and type-checks a use of every
#      class against the TypeScript declarations (test/types, tsc --strict);
#   4. runs the crate's wasm-bindgen-test suite under Node and in headless Chromium;
#   5. runs the browser test (browser/run.mjs) in a private network namespace: `overlay`
#      Chord and DHT peers with the WebSocket bridge, the page in headless Chromium joining
#      them, values crossing both ways, screenshots in target/wasm/browser.
#
# Ends with one line of totals.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n==> wasm: %s (%ss)\n' "$*" "$(( $(date +%s) - start ))"; }

if [ "${1:-}" != inside ]; then
  step "install (wasm32 target, wasm-bindgen CLI, chromium, playwright-core)"
  bash bindings-wasm/install.sh

  step "build the npm package"
  mkdir -p target
  bash bindings-wasm/build.sh | tee target/wasm-sizes.txt
  cargo build --locked --release -p overlay-node

  step "Node tests (node --test)"
  node_log=$(mktemp)
  trap 'rm -f "$node_log"' EXIT
  # TAP, whatever Node's default reporter; a failure stops the script here (pipefail).
  (cd bindings-wasm && node --test --test-reporter=tap test/*.test.mjs) | tee "$node_log" \
    | grep -E '^(not )?ok |^# (pass|fail)'
  node_pass=$(awk '/^# pass/ { print $3 }' "$node_log")

  step "TypeScript: the declarations type-check a use of every class (tsc --strict)"
  (cd bindings-wasm && node_modules/.bin/tsc -p test/types/tsconfig.json)

  step "wasm-bindgen-test under Node, then in headless Chromium"
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
  cargo test --locked -p overlay-wasm --target wasm32-unknown-unknown --test web
  CHROMEDRIVER=/usr/bin/chromedriver WASM_BINDGEN_USE_BROWSER=1 \
    cargo test --locked -p overlay-wasm --target wasm32-unknown-unknown --test web

  step "browser test in a private network namespace"
  browser_log=$(mktemp)
  trap 'rm -f "$node_log" "$browser_log"' EXIT
  # Loopback only; a PID namespace too, so that nothing the test starts outlives it
  # (its first process's exit kills the rest).
  timeout 420 unshare --net --pid --fork --kill-child --mount-proc \
    bash bindings-wasm/test.sh inside | tee "$browser_log"
  browser=$(grep -E '^browser: ' "$browser_log" | tail -n 1)
  echo "wasm: node $node_pass passed, 0 failed; TypeScript ok; wasm-bindgen-test ok (Node, Chromium); $browser; $(grep -m1 'web' target/wasm-sizes.txt)"
  exit 0
fi

# Inside the namespace: bring loopback up, then run the page against native peers.
ip link set lo up
cd bindings-wasm
node browser/run.mjs
