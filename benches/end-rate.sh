#!/usr/bin/env bash
# How long `end` takes to end ROWS bypasses (default 2000) at --rate RATE (default 200), RUNS
# times, against a simulator process with no latency and no limit: each run first grants every
# row (at a high rate, not timed), then ends them; one GET and one PUT a row, so the ideal is
# 2 * ROWS / RATE seconds. Prints each end's rows ended, requests, time and achieved rate
# (requests / elapsed, start-up and token included).
# Usage: benches/end-rate.sh [ROWS] [RATE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-2000}
rate=${2:-200}
runs=${3:-3}
. benches/simulator.sh
use_simulator_worker_app
for run in $(seq "$runs"); do
  python3 benches/users-csv.py "$rows" "$work/input.csv"
  "$binary" run "$work/input.csv" -o "$work/granted.csv" --overwrite --progress never \
    --rate 2000 --concurrency 64 --until 8h 2>/dev/null
  "$binary" end "$work/granted.csv" -o "$work/ended.csv" --overwrite --progress never \
    --rate "$rate" --summary-json "$work/summary.json" 2>/dev/null || true
  python3 - "$work/summary.json" "$rate" "$run" "$rows" <<'PY'
import json, sys
s, rate, rows = json.load(open(sys.argv[1])), float(sys.argv[2]), int(sys.argv[4])
ideal = 2 * rows / rate
print(f"run {sys.argv[3]}: {s['ended']} of {s['total']} rows ended, {s['requests']} requests in "
      f"{s['elapsed_seconds']:.2f} s (ideal {ideal:.0f} s, {100 * (s['elapsed_seconds'] - ideal) / ideal:+.2f}%): "
      f"{s['requests'] / s['elapsed_seconds']:.1f} requests/s")
PY
done
