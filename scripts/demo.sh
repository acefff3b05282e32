#!/usr/bin/env bash
# Install what is missing, build, and start a demo node running the hello
# example.  Ctrl-C stops it.  Try, from another shell:
#   build/hyperc inject --home hyperc-home hello:hello:hyperc.os 'Ada'
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"
echo "demo: try  build/hyperc inject --home hyperc-home hello:hello:hyperc.os Ada"
exec build/hyperc run --home hyperc-home "$@" build/packages/hello
