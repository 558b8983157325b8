# Sourced by the benchmark scripts (from the repository's root): builds the release binary,
# starts `pingone-bypass simulate` in the background (stopped when the script exits) and sets
# `binary`, `work` (a scratch folder, removed on exit), `api_url`, `auth_url` and `token` (an
# access token from the simulator's token endpoint).
cargo build --release --quiet
binary=./target/release/pingone-bypass
work=$(mktemp -d)
trap 'kill $simulator 2>/dev/null; rm -rf "$work"' EXIT
"$binary" simulate --seed 1 >"$work/simulator" 2>/dev/null &
simulator=$!
while [ "$(wc -l <"$work/simulator")" -lt 5 ]; do sleep 0.1; done
simulator_value() { sed -n "s/^$1: //p" "$work/simulator"; }
api_url=$(simulator_value api-url)
auth_url=$(simulator_value auth-url)
token=$(curl -fsS -u "$(simulator_value client-id):$(simulator_value client-secret)" \
  -d grant_type=client_credentials "$auth_url/$(simulator_value environment-id)/as/token" |
  sed 's/.*"access_token":"\([^"]*\)".*/\1/')
