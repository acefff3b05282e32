#!/usr/bin/env bash
# Install what is missing, build, and start a demo node serving the chat
# example (a web UI), the counter and hello at http://localhost:8080/
# (HYPERC_DEMO_PORT to change it).  The node prints the URL to open and the
# password to log in with; its home page lists the apps and links to their
# UIs.  Ctrl-C stops it.  Extra arguments go to `hyperc run` (e.g. -v 1).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake -S . -B build >/dev/null
cmake --build build -j"$(nproc)"
port=${HYPERC_DEMO_PORT:-8080}
if [[ -f hyperc-home/http/password_hash ]]; then
  # a later run: the node showed the password at its first boot only, and
  # keeps only its hash
  echo "demo: log in with the node password shown at its first boot (forgot it? HYPERC_PASSWORD=NEW scripts/demo.sh sets a new one)"
fi
echo "demo: also try  build/hyperc inject --home hyperc-home chat:chat:hyperc.os '{\"SendMessage\":[\"cli\",\"hello\"]}'"
# tests/blackbox/test_first_run.py runs the line below with its own port and home
exec build/hyperc run --home hyperc-home --port "$port" "$@" build/packages/chat build/packages/counter build/packages/hello
