#!/usr/bin/env bash
# CPU time a live run spends per row, which the machine's other load disturbs less than wall
# time: `run` sends ROWS rows, unthrottled, to a `simulate` process (its CPU not counted), RUNS
# times for each binary given, alternating. Comparing two builds measures what a change costs.
# Needs GNU time. Usage: benches/cpu-per-row.sh ROWS RUNS [BINARY...] (default: this build)
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-100000}
runs=${2:-3}
shift 2 || true
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 1; }
. benches/simulator.sh
binaries=("${@:-$binary}")
export PINGONE_API_ACCESS_TOKEN=$token
python3 benches/users-csv.py "$rows" "$work/input.csv"
for run in $(seq "$runs"); do
  for candidate in "${binaries[@]}"; do
    rm -f "$work"/results.csv*
    /usr/bin/time -f "%U %S %e" -o "$work/time" "$candidate" run "$work/input.csv" \
      -o "$work/results.csv" --api-url "$api_url" --rate 100000 --concurrency 32 \
      --progress never 2>/dev/null || true
    read -r user system wall <"$work/time"
    printf '%s run %s: %s rows, CPU %.2f s (%.1f µs a row), wall %s s\n' "$candidate" "$run" "$rows" \
      "$(echo "$user + $system" | bc -l)" "$(echo "($user + $system) * 1000000 / $rows" | bc -l)" "$wall"
  done
done
