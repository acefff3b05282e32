#!/usr/bin/env bash
# Long fuzzing runs: build the libFuzzer targets (clang, ASan + UBSan) and run
# each for FUZZ_SECONDS (default 600).  New inputs go to
# <build>/fuzz/corpus/<target>/ (the checked-in seeds in fuzz/corpus/ are
# read only); crashes go to <build>/fuzz/artifacts/.
#   scripts/fuzz.sh                    every target in fuzz/CMakeLists.txt,
#                                      FUZZ_SECONDS each
#   scripts/fuzz.sh fuzz_manifest      some targets
#   FUZZ_SECONDS=N BUILD_DIR=dir       run length, build directory
# Reproduce a crash: <build>/fuzz/<target> <artifact>
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
build=${BUILD_DIR:-build-fuzz}
secs=${FUZZ_SECONDS:-600}
targets=("$@")
if ((${#targets[@]} == 0)); then
  # every target fuzz/CMakeLists.txt declares: hyperc_fuzz(<name> ...) and
  # the generated decoders' "<name>:<source>" pairs
  mapfile -t targets < <(
    { grep -o '^ *hyperc_fuzz(fuzz_[a-z0-9_]*' fuzz/CMakeLists.txt |
        sed 's/.*(//'
      grep -o '"fuzz_[a-z0-9_]*:' fuzz/CMakeLists.txt | tr -d '":'; } |
      sort -u)
fi
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
      -DHYPERC_SANITIZE=ON -DHYPERC_FUZZ=ON -DHYPERC_TESTS=OFF \
      -DHYPERC_BENCH=OFF >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]}"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
mkdir -p "$build/fuzz/artifacts"
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$build/fuzz/corpus/$t"
  echo "== $t: ${secs} s"
  if ! "$build/fuzz/$t" -max_total_time="$secs" -timeout=30 \
         -rss_limit_mb=4096 -print_final_stats=1 \
         -artifact_prefix="$build/fuzz/artifacts/$t-" \
         "$build/fuzz/corpus/$t" "fuzz/corpus/$t"; then
    failed+=("$t")
  fi
done
if ((${#failed[@]})); then
  echo "fuzz: failures in ${failed[*]} (inputs in $build/fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no crash in ${secs} s each"
