#!/usr/bin/env bash
# Install what lgpu needs on Debian/Ubuntu (only what is missing) and build it.
#   tools/setup.sh [BUILD_DIR] [meson options...]     (default BUILD_DIR: build)
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="build-essential pkg-config python3 meson ninja-build glslc glslang-tools mesa-vulkan-drivers
libvulkan-dev vulkan-tools libshaderc-dev libjansson-dev libzstd-dev libarchive-dev libcmocka-dev
libcivetweb-dev libcurl4-openssl-dev libpcre2-dev libsqlite3-dev libopenmpi-dev gnuplot-nox curl"
missing=$(for p in $PKGS; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || echo "$p"; done)
# Node.js (for the client tests) may come from another source (e.g. NodeSource, which bundles npm):
# install Debian's packages only for what is absent.
command -v node >/dev/null || missing="$missing nodejs"
command -v npm >/dev/null || missing="$missing npm"
if [ -n "$missing" ]; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "setup: installing $(echo $missing | tr '\n' ' ')"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi
BUILD=${1:-build}
shift || true
if [ -f "$BUILD/build.ninja" ]; then
    meson configure "$BUILD" "$@" >/dev/null
else
    meson setup "$BUILD" "$@"
fi
ninja -C "$BUILD"
