#!/usr/bin/env bash
# Install what is missing, build with AddressSanitizer + UndefinedBehaviorSanitizer
# (clang, so that the fuzz targets build too) and run the whole test suite.
#   FUZZ_SECONDS=N  seconds per fuzz target (default 10; `scripts/fuzz.sh` for long runs)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DHYPERC_SANITIZE=ON -DHYPERC_FUZZ=ON -DHYPERC_FUZZ_SECONDS="${FUZZ_SECONDS:-10}" >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
ctest --output-on-failure -j"$(nproc)" --timeout 600
