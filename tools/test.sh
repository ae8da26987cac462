#!/usr/bin/env bash
# Install, build with ASan+UBSan and run the whole test suite on the default
# Vulkan device (lavapipe without a GPU), then the C path (LGPU_DEVICE=cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh build-test -Dsanitize=true -Dbuildtype=debugoptimized
if [ -f tests/node/package.json ] && [ ! -d tests/node/node_modules ]; then
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi
meson test -C build-test --print-errorlogs --num-processes 2
LGPU_DEVICE=cpu meson test -C build-test --print-errorlogs --num-processes 2 --suite unit
