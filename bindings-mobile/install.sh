#!/usr/bin/env bash
# Installs what the Kotlin and Swift tests need, idempotently (fast when present):
#   - JNA (Debian libjna-java) and a JDK (Java 17 is usually there already);
#   - the Kotlin compiler, from the npm package `kotlin-compiler` (the full JVM compiler),
#     unpacked under $OVERLAY_CACHE/kotlinc;
#   - a Debian 13 (trixie) chroot with `swiftlang` (Debian 12 has no Swift), under
#     $OVERLAY_CACHE/swift-trixie (~3 GB; kept outside the repository and reused).
# Prints the paths the test script uses as KEY=VALUE lines on stdout; progress on stderr.
set -euo pipefail
CACHE=${OVERLAY_CACHE:-$HOME/.cache/overlay}
KOTLIN_VERSION=2.4.20
mkdir -p "$CACHE"
log() { echo "install: $*" >&2; }

debs=()
[ -f /usr/share/java/jna.jar ] || debs+=(libjna-java)
command -v javac >/dev/null || debs+=(openjdk-17-jdk-headless)
command -v npm >/dev/null || debs+=(npm)
command -v debootstrap >/dev/null || debs+=(debootstrap)
if [ ${#debs[@]} -gt 0 ]; then
  log "apt-get install ${debs[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]}" >/dev/null
fi

KOTLINC=$CACHE/kotlinc-$KOTLIN_VERSION
if [ ! -x "$KOTLINC/bin/kotlinc" ]; then
  log "kotlin-compiler $KOTLIN_VERSION from npm"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "kotlin-compiler@$KOTLIN_VERSION" >/dev/null && tar xzf kotlin-compiler-*.tgz)
  rm -rf "$KOTLINC" && mv "$tmp/package" "$KOTLINC" && rm -rf "$tmp"
  chmod +x "$KOTLINC"/bin/*
fi

SWIFT_ROOT=$CACHE/swift-trixie
if [ ! -x "$SWIFT_ROOT/usr/bin/swiftc" ]; then
  if [ ! -x "$SWIFT_ROOT/usr/bin/apt-get" ]; then
    log "debootstrap trixie into $SWIFT_ROOT"
    # --one-file-system: never into a mount left inside it (test.sh bind-mounts the
    # checkout there, in a mount namespace of its own).
    rm -rf --one-file-system "$SWIFT_ROOT"
    debootstrap --variant=minbase trixie "$SWIFT_ROOT" http://deb.debian.org/debian >&2
  fi
  log "swiftlang in the trixie chroot"
  chroot "$SWIFT_ROOT" apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive chroot "$SWIFT_ROOT" apt-get install -y -qq swiftlang >/dev/null
fi

echo "KOTLINC=$KOTLINC/bin/kotlinc"
echo "JNA=/usr/share/java/jna.jar"
echo "SWIFT_ROOT=$SWIFT_ROOT"
