#!/usr/bin/env bash
# The same rows through `benches/curl-xargs.sh` (xargs -P 16 curl) and through
# `pingone-bypass run --concurrency 16`, unthrottled, against one simulator process with no
# latency; alternating, several runs. Prints each time and the median ratio.
# Usage: benches/against-curl.sh [rows] [runs]
set -euo pipefail
cd "$(dirname "$0")/.."
rows=${1:-10000}
runs=${2:-3}
command -v curl >/dev/null || { echo "curl is needed" >&2; exit 1; }
. benches/simulator.sh
TOKEN=$token
API_URL=$api_url
UNTIL=$(date -u -d '+8 hours' +%Y-%m-%dT%H:%M:%S.000Z)
export TOKEN API_URL UNTIL PINGONE_API_ACCESS_TOKEN=$token
python3 benches/users-csv.py "$rows" "$work/users.csv"
seconds() { local start end; start=$(date +%s.%N); "$@" >/dev/null 2>&1; end=$(date +%s.%N); echo "$end - $start" | bc -l; }
curl_times=(); tool_times=()
for run in $(seq "$runs"); do
  c=$(seconds benches/curl-xargs.sh "$work/users.csv")
  t=$(seconds "$binary" run "$work/users.csv" --api-url "$API_URL" --rate 100000 --concurrency 16 \
        -o "$work/results.csv" --overwrite --progress never)
  printf 'run %s: xargs -P 16 curl %.2fs (%.0f rows/s); pingone-bypass %.2fs (%.0f rows/s)\n' \
    "$run" "$c" "$(echo "$rows/$c" | bc -l)" "$t" "$(echo "$rows/$t" | bc -l)"
  curl_times+=("$c"); tool_times+=("$t")
done
median() { printf '%s\n' "$@" | sort -g | sed -n "$(( ($# + 1) / 2 ))p"; }
mc=$(median "${curl_times[@]}"); mt=$(median "${tool_times[@]}")
printf 'median: curl %.2fs, pingone-bypass %.2fs: pingone-bypass is %.1fx as fast\n' "$mc" "$mt" "$(echo "$mc/$mt" | bc -l)"
