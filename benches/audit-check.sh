#!/usr/bin/env bash
# verify --pingone's speed and memory: for each row count, grants that many users (not timed)
# against `pingone-bypass simulate` (its audit API limited to 10 requests/s, PingOne's limit;
# 1,000 activities a page), then checks the results against its audit log at --rate 10 (and at
# the default 5), once (--audit-wait 0s). Prints rows, requests, elapsed seconds, rows per second
# and peak resident memory (GNU time). Usage: benches/audit-check.sh [row counts...]
set -euo pipefail
cd "$(dirname "$0")/.."
counts=("${@:-10000 100000}")
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 1; }
. benches/simulator.sh
use_simulator_worker_app

for count in ${counts[@]}; do
  python3 - "$count" "$work/input.csv" <<'PY'
import sys, uuid, random
count, path = int(sys.argv[1]), sys.argv[2]
random.seed(count)
envs = ["4a1c5e1e-0f6b-4d43-9d2a-1b7c0c3e5a01", "9b2f7c3d-6e8a-4f10-8c5d-2e4b6a7c9d02"]
with open(path, "w") as f:
    f.write("environmentId,userId,until\n")
    for i in range(count):
        f.write(f"{envs[i % 2]},{uuid.UUID(int=random.getrandbits(128), version=4)},8h\n")
PY
  "$binary" run "$work/input.csv" -o "$work/results.csv" --overwrite --progress never \
    --rate 100000 --concurrency 32 2>/dev/null
  for rate in 10 5; do
    /usr/bin/time -f "%M %e" -o "$work/time" "$binary" verify "$work/results.csv" --pingone \
      --rate "$rate" --audit-wait 0s --summary-json "$work/audit.json" >/dev/null 2>"$work/stderr" || true
    read -r rss seconds <"$work/time"
    python3 - "$work/audit.json" "$count" "$rate" "$rss" "$seconds" <<'PY'
import json, sys
summary = json.load(open(sys.argv[1]))
count, rate, rss, seconds = int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
print(f"{count:>7} rows  --rate {rate:>2}  {summary['requests']:>4} requests  {summary['confirmed']:>7} confirmed"
      f"  {summary['throttled']} throttled  {seconds:6.2f} s  {count / seconds:8.0f} rows/s  peak RSS {rss / 1024:6.1f} MiB  exit {summary['exit_code']}")
PY
  done
done
