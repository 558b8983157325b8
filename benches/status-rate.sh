#!/usr/bin/env bash
# How well `status` keeps to --rate: ROWS users (default 2000) at --rate RATE (default 200)
# against a simulator process with no latency and no limit, RUNS times. Prints each run's
# requests, time and achieved rate (requests / elapsed, start-up and token included).
# Usage: benches/status-rate.sh [ROWS] [RATE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-2000}
rate=${2:-200}
runs=${3:-3}
. benches/simulator.sh
use_simulator_worker_app
python3 benches/users-csv.py "$rows" "$work/input.csv"
for run in $(seq "$runs"); do
  "$binary" status "$work/input.csv" -o "$work/status.csv" --overwrite --progress never \
    --rate "$rate" --summary-json "$work/summary.json" 2>/dev/null || true
  python3 - "$work/summary.json" "$rate" "$run" <<'PY'
import json, sys
s, rate = json.load(open(sys.argv[1])), float(sys.argv[2])
achieved = s["requests"] / s["elapsed_seconds"]
print(f"run {sys.argv[3]}: {s['total']} rows, {s['requests']} requests in {s['elapsed_seconds']:.2f} s: "
      f"{achieved:.1f} requests/s, {100 * (achieved - rate) / rate:+.2f}% of --rate {rate:g}")
PY
done
