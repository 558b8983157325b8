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
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
python3 -u -c '
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(64)
print(s.getsockname()[1]); held = []
while True: held.append(s.accept())' >"$work/port" &
listener=$!
while [ ! -s "$work/port" ]; do sleep 0.1; done
export PINGONE_CLIENT_ID=a-client PINGONE_CLIENT_SECRET=a-secret
export PINGONE_ENVIRONMENT_ID=4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01
export PINGONE_API_URL="http://127.0.0.1:$(free_port)/v1"
for case in refused hanging; do
  if [ "$case" = refused ]; then port=$(free_port); else port=$(cat "$work/port"); fi
  start=$(date +%s.%N)
  code=0
  PINGONE_AUTH_URL="http://127.0.0.1:$port" "$binary" run "$work/input.csv" -o "$work/results.csv" \
    --overwrite --progress never --timeout "$timeout" 2>"$work/stderr" || code=$?
  end=$(date +%s.%N)
  printf '%s: %s rows, exit %s after %.1f s (--timeout %s): %s\n' "$case" "$rows" "$code" \
    "$(echo "$end - $start" | bc -l)" "$timeout" "$(grep -m1 '^error' "$work/stderr" | cut -c1-160)"
  rm -f "$work"/results.csv*
done
