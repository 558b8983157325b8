#!/usr/bin/env bash
# A dry run over Excel's largest sheet: 1,048,576 rows (a header and 1,048,575 users, each a new
# UUID as a shared string, the expiry a date cell), written by examples/workbooks.rs. Prints
# peak resident memory and rows per second for RUNS runs. Needs GNU time (/usr/bin/time).
# Usage: benches/workbook.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
[ -x /usr/bin/time ] || { echo "GNU time is needed: apt-get install time" >&2; exit 1; }
cargo build --release --quiet
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --release --quiet --example workbooks -- large 1048575 "$work/large.xlsx"
for run in $(seq "$runs"); do
  /usr/bin/time -f "%M %e" -o "$work/time" ./target/release/pingone-bypass run "$work/large.xlsx" \
    --dry-run -o "$work/results.csv" --overwrite --progress never 2>"$work/stderr"
  read -r rss seconds <"$work/time"
  rows=$(grep -o '^pingone-bypass: [0-9]* rows' "$work/stderr" | grep -o '[0-9]*')
  printf 'run %s: %s rows, peak RSS %.1f MiB, %.2f s, %.0f rows/s\n' "$run" "$rows" \
    "$(echo "$rss/1024" | bc -l)" "$seconds" "$(echo "$rows/$seconds" | bc -l)"
done
