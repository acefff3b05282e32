#!/usr/bin/env bash
# ThreadSanitizer over the black-box tests (a build of its own; scripts/test.sh
# ends with it over a few of them).  TSan follows the node's threads and, told
# of every stack switch (its fiber interface), the scheduler's fibers and the
# guest's tasks.  Every process runs in-process (HYPERC_TEST_IN_PROCESS=1),
# as fibers on the scheduler threads as by default (HYPERC_TEST_SCHEDULERS=0
# in the environment: a thread each instead); with TSAN_WORKERS=1 they run
# isolated as by default, each worker (built with TSan too) checked on its
# own: TSan cannot see the rings a worker shares with the node, only each
# side's threads.  A data race fails the test whose node reported it (TSan's
# exit code, 66, or a worker's report on the node's stderr).
#   scripts/tsan.sh                       the black-box tests below
#   scripts/tsan.sh test_http.py ...      some test files of tests/blackbox
#   TSAN_BUILD_DIR=dir                    build directory (build-tsan)
#   TSAN_WORKERS=1                        processes in workers
#   TSAN_UNIT="test_state ..."            unit tests (tests/unit) run first
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/setup.sh
build=${TSAN_BUILD_DIR:-build-tsan}
files=("$@")
if ((${#files[@]} == 0)); then
  files=(test_http.py test_chat.py test_ws_client.py test_http_client.py
         test_messaging.py test_lifecycle.py test_state.py test_tasks.py
         test_schedulers.py test_net.py test_operability.py)
fi
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DHYPERC_TSAN=ON -DHYPERC_SANITIZE=OFF -DHYPERC_FUZZ=OFF -DHYPERC_BENCH=OFF \
      -DHYPERC_JEMALLOC=OFF -DHYPERC_WASM=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
cd "$build"
for u in ${TSAN_UNIT:-}; do
  TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 exitcode=66}" "tests/unit/$u" >"tests/unit/$u.tsan.log" 2>&1 ||
    { cat "tests/unit/$u.tsan.log" >&2; echo "tsan: unit test $u failed" >&2; exit 1; }
done
paths=()
for f in "${files[@]}"; do paths+=("$root/tests/blackbox/$f"); done
in_process=1
[[ "${TSAN_WORKERS:-0}" == 1 ]] && in_process=
env HYPERC_BIN="$PWD/hyperc" HYPERC_PACKAGES="$PWD/packages" \
    HYPERC_TEST_IN_PROCESS="$in_process" \
    TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=0 exitcode=66}" \
    /usr/bin/python3 -m pytest -q -p no:cacheprovider "${paths[@]}"
