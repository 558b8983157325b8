# Sourced by the benchmark scripts (from the repository's root): builds the release binary,
# starts `pingone-bypass simulate` in the background (with the flags in the array
# `simulator_flags`, if the script set one; stopped when the script exits) and sets `binary`,
# `work` (a scratch folder, removed on exit), `api_url`, `auth_url`, `token` (an access token
# from the simulator's token endpoint) and `use_simulator_worker_app` (exports the PINGONE_*
# settings of the simulator's worker application).
cargo build --release --quiet
binary=./target/release/pingone-bypass
work=$(mktemp -d)
trap 'kill $simulator ${server:-} 2>/dev/null; rm -rf "$work"' EXIT
if [ -z "${simulator_flags+x}" ]; then simulator_flags=(); fi
"$binary" simulate --seed 1 "${simulator_flags[@]}" >"$work/simulator" 2>/dev/null &
simulator=$!
while [ "$(wc -l <"$work/simulator")" -lt 5 ]; do sleep 0.1; done
simulator_value() { sed -n "s/^$1: //p" "$work/simulator"; }
api_url=$(simulator_value api-url)
auth_url=$(simulator_value auth-url)
token=$(curl -fsS -u "$(simulator_value client-id):$(simulator_value client-secret)" \
  -d grant_type=client_credentials "$auth_url/$(simulator_value environment-id)/as/token" |
  sed 's/.*"access_token":"\([^"]*\)".*/\1/')
use_simulator_worker_app() {
  export PINGONE_API_URL=$api_url PINGONE_AUTH_URL=$auth_url
  PINGONE_ENVIRONMENT_ID=$(simulator_value environment-id)
  PINGONE_CLIENT_ID=$(simulator_value client-id)
  PINGONE_CLIENT_SECRET=$(simulator_value client-secret)
  export PINGONE_ENVIRONMENT_ID PINGONE_CLIENT_ID PINGONE_CLIENT_SECRET
}
