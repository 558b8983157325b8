#!/usr/bin/env bash
# What naming users costs: ROWS rows given by ID, then the same users given by username, at
# --rate RATE against one simulator (30 ms latency) that knows them all, alternating PAIRS
# times. Prints each run's time, requests and lookups, and the ratios.
# Usage: benches/lookup-cost.sh [ROWS] [RATE] [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000}
rate=${2:-100}
pairs=${3:-2}
users=$(mktemp -d)
python3 benches/named-users.py "$rows" "$users"
simulator_flags=(--latency 30ms --users-file "$users/directory.csv")
. benches/simulator.sh
use_simulator_worker_app
cp "$users"/*.csv "$work/" && rm -rf "$users"
for pair in $(seq "$pairs"); do
  for input in by-id by-username; do
    "$binary" run "$work/$input.csv" -o "$work/$input.results.csv" --overwrite --progress never \
      --rate "$rate" --summary-json "$work/$input.json" 2>/dev/null
    python3 - "$work/$input.json" "$input" "$pair" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"pair {sys.argv[3]} {sys.argv[2]:12} {s['total']} rows, {s['succeeded']} succeeded, "
      f"{s['elapsed_seconds']:.1f} s, {s['requests']} requests, {s['lookups']} lookups "
      f"({s['lookups'] / s['total']:.3f} per row)")
PY
  done
  python3 - "$work/by-id.json" "$work/by-username.json" <<'PY'
import json, sys
by_id, named = (json.load(open(p)) for p in sys.argv[1:])
print(f"       by username / by ID: {named['elapsed_seconds'] / by_id['elapsed_seconds']:.3f}x the time")
PY
done
