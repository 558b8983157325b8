#!/usr/bin/env bash
# The alternative an admin might write by hand: one curl per row, 16 at a time, no retries,
# no rate limit, no validation, no results file beyond the HTTP codes.
# Usage: API_URL=... TOKEN=... UNTIL=2031-01-02T03:04:05.678Z benches/curl-xargs.sh users.csv
# (columns: environment,user,...; header first). Prints one HTTP status per row.
set -euo pipefail
: "${API_URL:?}" "${TOKEN:?}" "${UNTIL:?}"
export API_URL TOKEN UNTIL
tail -n +2 "$1" | cut -d, -f1,2 | tr ',' ' ' | xargs -P 16 -n 2 sh -c '
  curl -sS -o /dev/null -w "%{http_code}\n" -X PUT \
    -H "Authorization: Bearer $TOKEN" -H "Content-Type: application/json" \
    -d "{\"bypassMFAEnabledUntil\":\"$UNTIL\"}" \
    "$API_URL/environments/$0/users/$1/bypassMFA"'
