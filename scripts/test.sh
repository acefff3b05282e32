#!/usr/bin/env bash
# Install what is missing, build with AddressSanitizer + UndefinedBehaviorSanitizer
# (clang, so that the fuzz targets build too) and run the whole test suite;
# then ThreadSanitizer over the black-box tests of the node's threads
# (scripts/tsan.sh: its own build, every process in-process, as fibers; then
# a few files with processes in workers) and over the unit tests whose
# threads share the state slots.
#   FUZZ_SECONDS=N  seconds per fuzz target (default 10; `scripts/fuzz.sh` for long runs)
#   HYPERC_TSAN=0   skip the ThreadSanitizer part
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build=${BUILD_DIR:-build-test}
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DHYPERC_SANITIZE=ON -DHYPERC_FUZZ=ON -DHYPERC_FUZZ_SECONDS="${FUZZ_SECONDS:-10}" >/dev/null
cmake --build "$build" -j"$(nproc)"
(cd "$build" && ctest --output-on-failure -j"$(nproc)" --timeout 600)
if [[ "${HYPERC_TSAN:-1}" != 0 ]]; then
  TSAN_UNIT="test_state test_worker_slot" scripts/tsan.sh test_messaging.py test_lifecycle.py test_http.py \
    test_security_http.py test_net.py test_schedulers.py test_operability.py
  TSAN_WORKERS=1 scripts/tsan.sh test_isolation.py test_watch.py test_messaging.py \
    test_lanes.py
fi
