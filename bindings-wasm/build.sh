#!/usr/bin/env bash
# Builds the npm package's two flavours from the crate: pkg/web (an ES module for the
# browser; the page's copy goes to www/pkg) and pkg/node (CommonJS for Node), with the
# wasm-bindgen CLI pinned to the crate's version. Prints each build's .wasm size.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root"
cargo build --locked --profile wasm -p overlay-wasm --target wasm32-unknown-unknown
wasm=target/wasm32-unknown-unknown/wasm/overlay_wasm.wasm
for flavour in web node; do
  target=$flavour
  [ "$flavour" = node ] && target=nodejs
  rm -rf "$here/pkg/$flavour"
  wasm-bindgen --target "$target" --out-dir "$here/pkg/$flavour" "$wasm"
done
# The npm package: pkg/package.json picks the flavour (Node's CommonJS, or the ES module).
cp "$here/npm-package.json" "$here/pkg/package.json"
echo '{"type": "commonjs"}' > "$here/pkg/node/package.json"
rm -rf "$here/www/pkg"
cp -r "$here/pkg/web" "$here/www/pkg"
for flavour in web node; do
  f="$here/pkg/$flavour/overlay_wasm_bg.wasm"
  echo "wasm size ($flavour): $(stat -c %s "$f") bytes raw, $(gzip -9 -c "$f" | wc -c) bytes gzipped"
done
