#!/usr/bin/env bash
# Measures how many PUT .../bypassMFA per second the simulator serves on loopback with no
# latency configured, using wrk (Debian package `wrk`). Each request names a different user.
# Usage: benches/simulator-put-rate.sh [seconds] [connections] [wrk threads]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}
threads=${3:-1}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release --quiet
out=$(mktemp)
./target/release/pingone-bypass simulate --seed 1 >"$out" 2>/dev/null &
simulator=$!
trap 'kill $simulator 2>/dev/null; rm -f "$out"' EXIT
while [ "$(wc -l <"$out")" -lt 5 ]; do sleep 0.1; done
value() { sed -n "s/^$1: //p" "$out"; }
auth_url=$(value auth-url)
export ENV_ID=4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01
TOKEN=$(curl -fsS -u "$(value client-id):$(value client-secret)" -d grant_type=client_credentials \
  "$auth_url/$(value environment-id)/as/token" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
export TOKEN
wrk -t"$threads" -c"$connections" -d"${seconds}s" -s benches/simulator-put.lua "$auth_url"
echo "simulator answers by status: $(curl -fsS "$auth_url/__simulator/stats" | grep -o '"responses_by_status":{[^}]*}')"
