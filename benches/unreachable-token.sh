#!/usr/bin/env bash
# How fast a run gives up when PingOne's token endpoint cannot be reached: ROWS rows with the
# token endpoint refusing connections, then with one that accepts and never answers (at the
# default --timeout unless TIMEOUT is given). Nothing is sent anywhere but loopback.
# Usage: benches/unreachable-token.sh [ROWS] [TIMEOUT]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-2000}
timeout=${2:-30s}
cargo build --release --quiet
binary=./target/release/pingone-bypass
work=$(mktemp -d)
trap 'kill $listener 2>/dev/null; rm -rf "$work"' EXIT
python3 benches/users-csv.py "$rows" "$work/input.csv"
# One process holds both ports for the whole run: one bound and never listening (connections
# to it are refused, and nothing else can take it), one listening that never answers.
python3 -u -c '
import socket
refusing = socket.socket(); refusing.bind(("127.0.0.1", 0))
hanging = socket.socket(); hanging.bind(("127.0.0.1", 0)); hanging.listen(64)
print(refusing.getsockname()[1], hanging.getsockname()[1]); held = []
while True: held.append(hanging.accept())' >"$work/ports" &
listener=$!
while [ ! -s "$work/ports" ]; do sleep 0.1; done
read -r refusing_port hanging_port <"$work/ports"
export PINGONE_CLIENT_ID=a-client PINGONE_CLIENT_SECRET=a-secret
export PINGONE_ENVIRONMENT_ID=4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01
export PINGONE_API_URL="http://127.0.0.1:$refusing_port/v1"
for case in refused hanging; do
  if [ "$case" = refused ]; then port=$refusing_port; else port=$hanging_port; fi
  start=$(date +%s.%N)
  code=0
  PINGONE_AUTH_URL="http://127.0.0.1:$port" "$binary" run "$work/input.csv" -o "$work/results.csv" \
    --overwrite --progress never --timeout "$timeout" 2>"$work/stderr" || code=$?
  end=$(date +%s.%N)
  printf '%s: %s rows, exit %s after %.1f s (--timeout %s): %s\n' "$case" "$rows" "$code" \
    "$(echo "$end - $start" | bc -l)" "$timeout" "$(grep -m1 '^error' "$work/stderr" | cut -c1-160)"
  rm -f "$work"/results.csv*
done
