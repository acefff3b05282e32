#!/usr/bin/env bash
# Install what hyperc needs on Debian 12 (as root).  Idempotent: when every
# package is present it changes nothing; otherwise it runs apt-get update, then
# installs the missing ones.
#   scripts/setup.sh          build + test dependencies
#   scripts/setup.sh --bench  also what the benchmarks compare against
set -euo pipefail

pkgs=(
  build-essential cmake pkg-config clang
  libjansson-dev libsqlite3-dev libdeflate-dev libssl-dev uthash-dev libcmocka-dev libjemalloc-dev
  libclang-14-dev libyajl-dev
  libcurl4-openssl-dev libwslay-dev libhttp-parser-dev
  libuv1-dev libjwt-dev libargon2-dev libzip-dev  # libzip: hyperc package
  libmsgpack-dev libmsgpuck-dev libseccomp-dev binutils  # binutils: addr2line names where a worker crashed
  python3 python3-pytest python3-websockets
  python3-cryptography python3-msgpack python3-wsproto  # a misbehaving network peer (tests/blackbox/noise_peer.py)
  sqlite3 procps curl
  chromium chromium-driver python3-selenium  # the browser test (tests/blackbox/test_chat.py)
  # the network codec's reference (tests/rmpref): the real rmp-serde, offline;
  # the JSON codec's reference (tests/serdref): the real serde_json, offline
  librust-rmp-serde-dev librust-serde-derive-dev librust-serde-json-dev
  # the wasm32 target (docs/wasm.md): clang's wasm32 with lld and llvm-ar,
  # wasi-libc, Binaryen's asyncify; yajl's source comes with apt-get source;
  # wabt's wasm2c runs components as native code (docs/wasm-native.md)
  lld-14 llvm-14 wasi-libc libclang-rt-14-dev-wasm32 binaryen dpkg-dev wabt
)
# ... built with cargo: the machine's own (rustup) when it has one, else Debian's
command -v cargo >/dev/null || pkgs+=(cargo)
# Node.js and npm: the wasm host and jco (the wasm32 target), and the HTTP
# and WebSocket peers of the benchmarks.  Node.js from another source (e.g.
# NodeSource) brings its own npm and conflicts with Debian's npm package:
# install Debian's only when missing.
command -v node >/dev/null || pkgs+=(nodejs)
command -v npm >/dev/null || pkgs+=(npm)
# Node-API's headers, for the wasm host's addon (src/wasm/link_addon.c: the
# node's shared-memory rings); NodeSource's Node.js has them already.
[[ -e /usr/include/node/node_api.h ]] || pkgs+=(libnode-dev)
if [[ "${1:-}" == "--bench" ]]; then
  # Erlang (RPC peer); wrk and nginx (HTTP/WebSocket peers)
  pkgs+=(erlang-base erlang-nox hyperfine wrk nginx)
fi

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
# `apt-get source yajl` (the wasm32 guest runtime builds yajl from Debian's
# source) needs the release's deb-src lines.
need_src=false
if ! grep -rqs -e '^Types:.*deb-src' -e '^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
  need_src=true
fi
if ((${#missing[@]} == 0)) && ! $need_src; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup: missing packages: ${missing[*]}; deb-src lines missing: $need_src; run as root (or with sudo)" >&2
  exit 1
fi
if $need_src; then
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  echo "setup: adding the deb-src lines of $codename (/etc/apt/sources.list.d/hyperc-src.sources)"
  cat >/etc/apt/sources.list.d/hyperc-src.sources <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $codename
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
if ((${#missing[@]} > 0)); then
  echo "setup: installing ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
