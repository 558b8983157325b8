#!/usr/bin/env bash
# Peak resident memory of `run` for 10,000, 100,000 and 1,000,000 rows, dry and live.
# Live runs go to the simulator in a separate process (its memory is not counted), with no
# latency and no rate limit, and the tool at the highest --rate (100000), far above what it reaches.
# Needs GNU time (/usr/bin/time). Usage: benches/peak-memory.sh [row counts...]
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-10000 100000 1000000}")
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 1; }
. benches/simulator.sh
export PINGONE_API_ACCESS_TOKEN=$token

for count in ${counts[@]}; do
  python3 - "$count" "$work/input.csv" <<'PY'
import sys, uuid, random
count, path = int(sys.argv[1]), sys.argv[2]
random.seed(count)
envs = ["4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01", "9b2f7c3d-6e8a-4f10-8c5d-2e4b6a7c9d02"]
with open(path, "w") as f:
    f.write("environmentId,userId,until,ticket\n")
    for i in range(count):
        f.write(f"{envs[i % 2]},{uuid.UUID(int=random.getrandbits(128), version=4)},8h,INC-{i % 100}\n")
PY
  for mode in dry live; do
    if [ "$mode" = dry ]; then extra=(--dry-run); else extra=(--api-url "$api_url" --rate 100000 --concurrency 32); fi
    /usr/bin/time -f "%M %e" -o "$work/time" "$binary" run "$work/input.csv" -o "$work/results.csv" \
      --overwrite --progress never "${extra[@]}" 2>"$work/stderr" || true
    read -r rss seconds <"$work/time"
    summary=$(grep '^pingone-bypass:' "$work/stderr" | sed 's/; results in.*//')
    printf '%-8s %-5s peak RSS %6.1f MiB  %7.2f s  %s\n' "$count" "$mode" "$(echo "$rss/1024" | bc -l)" "$seconds" "$summary"
  done
done
