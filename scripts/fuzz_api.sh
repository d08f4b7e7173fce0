#!/usr/bin/env bash
# Property-based fuzzing of the REST API from its own contract: schemathesis reads a node's
# /openapi.json, generates requests that fit (and that break) each operation's schema, and
# runs every check it has (-c all): no 5xx; the status, content type, headers and body the
# document declares; every schema-valid request accepted and every schema-violating one
# refused; required headers, methods and credentials enforced. Prints schemathesis's report
# and fails when any check failed.
#
#   scripts/fuzz_api.sh                  # 40 examples per operation, release build
#   EXAMPLES=200 scripts/fuzz_api.sh
#   AS=admin scripts/fuzz_api.sh         # with the admin token instead of a user's
#   PROFILE=debug scripts/fuzz_api.sh    # debug build (target/debug/troupe), no release build
#   BIN=/tmp/troupe scripts/fuzz_api.sh  # that binary as it is, nothing built
#
# Needs schemathesis (pip install schemathesis), curl and python3. Runs one node with its
# own store in a scratch directory, and fuzzes every REST operation, in three runs:
# 1. all but those of 2 and 3, with requests that fit and that break their schema;
# 2. the load generators (POST /admin/mesh/bench, /admin/events/bench) and chaos
#    (POST /admin/chaos/kill) with requests that break their schema only: each must be
#    refused, and a valid one would load the machine or kill actors for real;
# 3. last, the calls that end the fuzzing user's sessions (logout, DELETE
#    /api/sessions/{user_id}, a new password through PUT /users/profile).
# Left out: the WebSocket upgrade (GET /ws/{user_id}: a request that fits turns the
# connection into a WebSocket, which an HTTP fuzzer cannot speak; tests/chat.rs covers the
# socket and tests/contract.rs its refusal of a plain request), and the SOAP routes (SOAP
# 1.1's HTTP binding answers every fault with HTTP 500; tests/soap_grpc.rs covers their bad
# input). scripts/fuzz/hooks.py drops the refusals of the few rules no schema can state.
set -euo pipefail
cd "$(dirname "$0")/.."
EXAMPLES=${EXAMPLES:-40}
AS=${AS:-user}
PROFILE=${PROFILE:-release}
case $PROFILE in
  release) BUILD=(--release) ;;
  debug | dev) PROFILE=debug BUILD=() ;;
  *) echo "$0: PROFILE is release or debug" >&2; exit 2 ;;
esac
if [ -z "${BIN:-}" ]; then
  cargo build "${BUILD[@]}" --quiet --bin troupe
  BIN=${CARGO_TARGET_DIR:-target}/$PROFILE/troupe
fi
# shellcheck source=lib.sh
. scripts/lib.sh
need st curl python3

write_config "$WORK/fuzz.toml" n1
$BIN node --config "$WORK/fuzz.toml" --name n1 > "$WORK/n1.log" 2>&1 &
PIDS+=($!)
URL="http://127.0.0.1:${HTTP[n1]}"
for _ in $(seq 100); do curl -sf "$URL/health" > /dev/null && break; sleep 0.1; done

if [ "$AS" = admin ]; then
  CRED=$TOKEN
else
  curl -sf -X POST "$URL/auth/register" -H 'content-type: application/json' \
    -d '{"username":"fuzzer","email":"fuzzer@example.com","password":"passw0rd-long"}' > /dev/null
  CRED=$(curl -sf -X POST "$URL/auth/login" -H 'content-type: application/json' \
    -d '{"username":"fuzzer","password":"passw0rd-long"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
fi

HERE=$(pwd)/scripts/fuzz
cd "$WORK"   # schemathesis writes its cache next to where it runs
status=0
fuzz() {
  PYTHONPATH="$HERE${PYTHONPATH:+:$PYTHONPATH}" SCHEMATHESIS_HOOKS=hooks st run \
    "$URL/openapi.json" -H "Authorization: Bearer $CRED" -n "$EXAMPLES" --request-timeout 10 \
    --exclude-tag soap -c all "$@" || status=$?
}
LOAD='^/admin/(mesh/bench|events/bench|chaos/kill)$'
ENDS='^/(auth/logout|auth/sso/logout|auth/logout-url|api/sessions/\{user_id\}|users/profile)$'
WS='^/ws/\{user_id\}$'
# 1. Every REST operation but the ones below, with requests that fit and that break it.
fuzz --exclude-path-regex "($LOAD|$ENDS|$WS)"
# 2. The load generators and chaos with requests that break their schema only: each must
# be refused (a valid one would load or kill for real).
fuzz --include-path-regex "$LOAD" --mode negative --phases coverage,fuzzing
# 3. Last, the calls that end the fuzzing user's sessions (its token stops working; a new
# password does that too).
fuzz --include-path-regex "$ENDS"
# The node must have survived all of it.
curl -sf "$URL/health" > /dev/null || { echo "the node stopped answering"; cat "$WORK/n1.log"; exit 1; }
exit $status
