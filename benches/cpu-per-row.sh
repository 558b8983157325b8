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
python3 - "$rows" "$work/input.csv" <<'PY'
import sys, uuid
count, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w") as f:
    f.write("environmentId,userId,until,ticket\n")
    for i in range(count):
        f.write(f"4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01,{uuid.uuid4()},8h,INC-{i % 100}\n")
PY
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
