#!/usr/bin/env bash
# Install, build with ASan+UBSan and run the whole test suite on the default
# Vulkan device (lavapipe without a GPU), then the C path (LGPU_DEVICE=cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build-test -Dsanitize=true -Dbuildtype=debugoptimized
# The tests' independent reference for training gradients: PyTorch autograd
# (tests/torch), from Debian's python3-torch under Debian's /usr/bin/python3.
if ! /usr/bin/python3 -c 'import torch, numpy' 2>/dev/null; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "test: installing python3-torch python3-numpy"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-torch python3-numpy
fi
# lgpu-eval's HTML reports are opened in a real browser (tests/eval_html.sh):
# Debian's headless-capable Chromium.
if ! command -v chromium >/dev/null 2>&1; then
    SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
    echo "test: installing chromium"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi
# (Re)install the Node test dependencies when they are absent or older than the
# lockfile: npm writes node_modules/.package-lock.json at every install.
node_deps_stale() {
    local lock=tests/node/package-lock.json installed=tests/node/node_modules/.package-lock.json
    [ ! -d tests/node/node_modules ] || [ ! -f "$installed" ] || [ "$lock" -nt "$installed" ]
}
if [ -f tests/node/package.json ] && node_deps_stale; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
meson test -C build-test --print-errorlogs --num-processes 2
LGPU_DEVICE=cpu meson test -C build-test --print-errorlogs --num-processes 2 --suite unit
