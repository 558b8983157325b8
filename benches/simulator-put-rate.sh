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
. benches/simulator.sh
export ENV_ID=4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01 TOKEN=$token
wrk -t"$threads" -c"$connections" -d"${seconds}s" -s benches/simulator-put.lua "$auth_url"
echo "simulator answers by status: $(curl -fsS "$auth_url/__simulator/stats" | grep -o '"responses_by_status":{[^}]*}')"
