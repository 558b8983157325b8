#!/usr/bin/env bash
# A long run at a low rate across many revocations: the simulator's tokens say they last an
# hour (expires_in 3600) and stop working REVOKED after they were issued (default 5s), and a
# run of ROWS rows (default 600) at --rate RATE (default 10) meets a revocation every REVOKED.
# Prints the rows granted, the renewals the summary counts, the tokens the simulator issued,
# the 401s it answered, the time and the exit code. Before issue 30 the second revocation
# stopped the run (exit 3, "PingOne refused a freshly issued token").
# Usage: [RUN_BINARY=OLD-BINARY] benches/token-renewals.sh [ROWS] [RATE] [REVOKED]
# (RUN_BINARY runs the rows with another build, against this build's simulator.)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-600}
rate=${2:-10}
revoked=${3:-5s}
simulator_flags=(--latency 20ms --token-revoked-after "$revoked")
. benches/simulator.sh
use_simulator_worker_app
python3 benches/users-csv.py "$rows" "$work/input.csv"
code=0
"${RUN_BINARY:-$binary}" run "$work/input.csv" -o "$work/results.csv" --progress never --rate "$rate" \
  --until 8h --summary-json "$work/summary.json" 2>"$work/log" || code=$?
curl -fsS "${api_url%/v1}/__simulator/stats" >"$work/stats.json"
python3 - "$work/summary.json" "$work/stats.json" "$work/log" "$code" <<'PY'
import json, sys
s, stats = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
warnings = open(sys.argv[3]).read().count("refused an access token it had accepted")
renewals = s.get("token_renewals", "no")
print(f"{s['succeeded']} of {s['total']} rows succeeded in {s['elapsed_seconds']:.1f} s, exit {sys.argv[4]}; "
      f"{renewals} renewals ({warnings} logged), {stats['tokens_issued']} tokens issued, "
      f"{stats['responses_by_status'].get('401', 0)} answers 401, {s['requests']} requests")
PY
