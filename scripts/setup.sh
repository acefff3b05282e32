#!/usr/bin/env bash
# Install what hyperc needs on Debian 12 (as root).  Idempotent: when every
# package is present it changes nothing; otherwise it runs apt-get update, then
# installs the missing ones.
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --bench  also what the benchmarks compare against
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang
  libjansson-dev libsqlite3-dev libssl-dev uthash-dev libcmocka-dev libjemalloc-dev
  libclang-14-dev libyajl-dev
  libcurl4-openssl-dev libwslay-dev libhttp-parser-dev
  libuv1-dev libjwt-dev libargon2-dev
  libmsgpack-dev libseccomp-dev binutils  # binutils: addr2line names where a worker crashed
  python3 python3-pytest python3-websockets
  python3-cryptography python3-msgpack python3-wsproto  # a misbehaving network peer (tests/blackbox/noise_peer.py)
  sqlite3 procps curl
  chromium chromium-driver python3-selenium  # the browser test (tests/blackbox/test_chat.py)
  # the network codec's reference (tests/rmpref): the real rmp-serde, offline
  librust-rmp-serde-dev librust-serde-derive-dev
)
# ... built with cargo: the machine's own (rustup) when it has one, else Debian's
command -v cargo >/dev/null || pkgs+=(cargo)
if [[ "${1:-}" == "--bench" ]]; then
  # Erlang (RPC peer); wrk, nginx and Node.js with npm (HTTP/WebSocket peers)
  pkgs+=(erlang-base erlang-nox hyperfine wrk nginx)
  # Node.js from another source (e.g. NodeSource) brings its own npm and
  # conflicts with Debian's npm package: install Debian's only when missing.
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages: ${missing[*]}; run as root (or with sudo)" >&2
  exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
