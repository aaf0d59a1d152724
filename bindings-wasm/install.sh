#!/usr/bin/env bash
# Installs what the WASM side needs, idempotently (fast when present):
#   - the wasm32-unknown-unknown target;
#   - the wasm-bindgen CLI pinned to the crate's wasm-bindgen (=0.2.129; ~150 s the first
#     time; wasm-pack cannot run here, it downloads from GitHub);
#   - Node.js (for `node --test`), Debian's chromium and chromium-driver (headless browser
#     tests), and npm's playwright-core and typescript from package-lock.json (`npm ci`).
set -euo pipefail
cd "$(dirname "$0")"
log() { echo "install: $*" >&2; }
WASM_BINDGEN=0.2.129

rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN" ]; then
  log "wasm-bindgen-cli $WASM_BINDGEN"
  cargo install wasm-bindgen-cli --version "=$WASM_BINDGEN" --locked --force
fi

debs=()
command -v ip >/dev/null || debs+=(iproute2)
command -v node >/dev/null || debs+=(nodejs)
command -v npm >/dev/null || debs+=(npm)
[ -x /usr/bin/chromium ] || debs+=(chromium)
[ -x /usr/bin/chromedriver ] || debs+=(chromium-driver)
if [ ${#debs[@]} -gt 0 ]; then
  log "apt-get install ${debs[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
fi

# playwright-core and `node --test` as used here need Node 20 or later (Debian 12's is 18).
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then
  echo "install: Node $(node --version) is too old: the WASM tests need Node 20 or later (e.g. from nodesource)" >&2
  exit 1
fi

# playwright-core drives the system chromium (`npx playwright install` cannot download).
# npm ci when node_modules does not hold exactly the pinned devDependencies.
stale=$(node -e '
  const want = require("./package.json").devDependencies;
  const have = (name) => { try { return require(`./node_modules/${name}/package.json`).version } catch { return "" } };
  console.log(Object.entries(want).some(([name, v]) => have(name) !== v) ? "yes" : "no");
')
if [ "$stale" = yes ]; then
  log "npm ci"
  npm ci --silent --no-audit --no-fund >&2
fi
