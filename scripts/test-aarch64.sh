#!/usr/bin/env bash
# Cross-build the coroutine unit test (tests/unit/test_coro.c) for aarch64 and
# run it under qemu-user: the aarch64 context switch
# (src/guest/coro_switch_aarch64.S) tested on an x86_64 machine.  Optional,
# not part of scripts/test.sh.  Debian 12; installs what is missing
# (gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user) when run as root.
#
# No cmocka for aarch64 is installed: tests/unit/cmocka_shim.h stands in for
# the few macros the test uses.  Builds at -O0 and -O2, with and without
# branch protection (BTI/PAC), and runs each.
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user)
missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "test-aarch64: missing packages: ${missing[*]}; run as root (or with sudo)" >&2
    exit 1
  fi
  echo "test-aarch64: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

out=${BUILD_DIR:-build-aarch64}
mkdir -p "$out"
cflags=(-std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wno-unused-parameter
        -Wstrict-prototypes -Wshadow -fstack-clash-protection -g
        -DHYPERC_CMOCKA_SHIM -Isrc -Itests/unit)
srcs=(src/guest/coro_native.c src/guest/coro_switch_aarch64.S tests/unit/test_coro.c)
status=0
for variant in "-O0" "-O2" "-O2 -mbranch-protection=standard"; do
  name=test_coro$(echo "$variant" | tr -d ' =' | tr -c 'A-Za-z0-9\n' '_')
  # shellcheck disable=SC2086
  aarch64-linux-gnu-gcc "${cflags[@]}" $variant "${srcs[@]}" -lm -o "$out/$name"
  echo "== aarch64 $variant"
  if ! qemu-aarch64 -cpu max -L /usr/aarch64-linux-gnu "$out/$name"; then
    echo "test-aarch64: FAILED with $variant" >&2
    status=1
  fi
done
exit $status
