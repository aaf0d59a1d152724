#!/bin/sh
# Installs the third-party peers used by the interop tests in this directory:
#   - libtorrent 2.x Python bindings (PyPI wheel `libtorrent`, ready-made for CPython 3.11)
#   - aria2c (Debian package `aria2`)
#   - opentracker (Debian package, a BitTorrent tracker serving HTTP and UDP)
#   - qbittorrent-nox (Debian package, driven through its WebUI API with curl)
#   - transmission-daemon and transmission-remote (Debian packages, Transmission 3.00)
#   - tcpdump (Debian package, optional: only for capturing KRPC traffic when debugging)
# Idempotent: each step is skipped when the tool is already present (then it runs in ~0.1 s).
# Set INTEROP_SKIP_TCPDUMP=1 to skip tcpdump.
set -eu

PY=${PYTHON:-python3}
LIBTORRENT_VERSION=${LIBTORRENT_VERSION:-2.1.1}

if "$PY" -c 'import libtorrent' 2>/dev/null; then
    echo "install.sh: libtorrent $("$PY" -c 'import libtorrent; print(libtorrent.__version__)') already installed"
else
    echo "install.sh: pip install libtorrent==$LIBTORRENT_VERSION"
    "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "libtorrent==$LIBTORRENT_VERSION"
    "$PY" -c 'import libtorrent; print("install.sh: libtorrent", libtorrent.__version__, "installed")'
fi

# apt-get install, running `apt-get update` only if the first attempt fails
# (a fresh machine may have empty package lists).
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y -q --no-install-recommends "$@" >/tmp/interop-apt.log 2>&1; then
        echo "install.sh: apt-get install $* failed, running apt-get update and retrying"
        apt-get update -q >/tmp/interop-apt.log 2>&1
        apt-get install -y -q --no-install-recommends "$@" >>/tmp/interop-apt.log 2>&1 \
            || { cat /tmp/interop-apt.log; exit 1; }
    fi
}

if command -v aria2c >/dev/null 2>&1; then
    echo "install.sh: aria2c already installed ($(aria2c --version | head -n1))"
else
    echo "install.sh: apt-get install aria2"
    apt_install aria2
    echo "install.sh: installed $(aria2c --version | head -n1)"
fi

# command:package
for pair in opentracker:opentracker qbittorrent-nox:qbittorrent-nox curl:curl \
    transmission-daemon:transmission-daemon transmission-remote:transmission-cli; do
    tool=${pair%%:*}
    package=${pair#*:}
    if command -v "$tool" >/dev/null 2>&1; then
        echo "install.sh: $tool already installed"
    else
        echo "install.sh: apt-get install $package"
        apt_install "$package"
    fi
done

if [ "${INTEROP_SKIP_TCPDUMP:-0}" != 1 ]; then
    if command -v tcpdump >/dev/null 2>&1; then
        echo "install.sh: tcpdump already installed"
    else
        echo "install.sh: apt-get install tcpdump"
        apt_install tcpdump
    fi
fi
