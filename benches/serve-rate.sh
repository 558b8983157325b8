#!/usr/bin/env bash
# Whether the upload page slows the pipeline: ROWS rows (default 2000) uploaded to `serve` at
# --rate RATE (default 200) against a simulator process with no latency and no limit, confirmed,
# and the run's achieved rate read from its summary (requests over the whole elapsed time),
# RUNS times. Needs curl.
# Usage: benches/serve-rate.sh [ROWS] [RATE] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-2000}
rate=${2:-200}
runs=${3:-3}
. benches/simulator.sh
use_simulator_worker_app
"$binary" serve --rate "$rate" --workdir "$work/runs" >"$work/serve" 2>/dev/null &
server=$!
while [ ! -s "$work/serve" ]; do sleep 0.1; done
url=$(sed -n 's/^url: //p' "$work/serve")
base=${url%%/\?key=*}
curl -s -c "$work/jar" -o /dev/null "$url"
for run in $(seq "$runs"); do
  python3 benches/users-csv.py "$rows" "$work/input.csv"
  curl -s -b "$work/jar" -o /dev/null -F "file=@$work/input.csv" "$base/plan"
  id=$(ls -d "$work"/runs/run-* | sed 's/.*run-//' | sort -n | tail -1)
  curl -s -b "$work/jar" -o /dev/null -X POST "$base/runs/$id/start"
  until [ -s "$work/runs/run-$id/summary.json" ]; do sleep 0.2; done
  python3 - "$work/runs/run-$id/summary.json" "$rate" "$run" <<'PY'
import json, sys
s, rate = json.load(open(sys.argv[1])), float(sys.argv[2])
achieved = s["requests"] / s["elapsed_seconds"]
print(f"run {sys.argv[3]}: {s['succeeded']} of {s['total']} rows granted, {s['requests']} requests in "
      f"{s['elapsed_seconds']:.2f} s: {achieved:.1f} requests/s, {100 * (achieved - rate) / rate:+.2f}% of --rate {rate:g}")
PY
done
