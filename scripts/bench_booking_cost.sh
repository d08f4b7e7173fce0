#!/usr/bin/env bash
# Where a booking's CPU goes: the nodes' CPU time per request of `POST /coaching/bookings`
# stopped at each stage of its path, on a 3-node cluster (mutual TLS, the embedded SQLite
# store), next to `GET /health` (the HTTP floor) and `GET /ping?node=n2` (one mesh hop).
# Written for issue 21's booking race, which is CPU-bound: its p99 is about the nodes' CPU
# per request times the requests over the two cores, so this says which stage to cut.
#
#   scripts/bench_booking_cost.sh
#   SKIP_BUILD=1 BIN=/tmp/troupe-old DURATION=10 scripts/bench_booking_cost.sh
#
# Each row: three `wrk -t1 -c8` (one per node, keep-alive) for DURATION seconds (5), the
# same request again and again; the nodes' user + system CPU over the round (from
# /proc/<pid>/stat) divided by the requests answered. The stages:
#
# | row | stops at |
# |---|---|
# | bad token | ingress: the access token does not verify (401) |
# | bad body | ingress: token verified, JSON read, `coach_id` not a string (400) |
# | unknown coach | the coach's entity on its home node: no such coach (404) |
# | bad slot | the booking writer's transaction: not one of the coach's slots (400) |
# | taken slot | the booking writer's transaction: the slot is booked (409), the race's most common answer |
#
# wrk shares the two cores with the nodes; its CPU is not counted. Needs wrk, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3

[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin troupe

ADMIN_PASSWORD=bench-admin-password-1
AUTH_EXTRA="pbkdf2_iterations = 1000" write_config "$WORK/cluster.toml" n1 n2 n3
start_three "$WORK/cluster.toml"

json_field() { python3 -c "import json, sys; print(json.load(sys.stdin)[\"$1\"])"; }
TOK=$(curl -sf -X POST -H 'content-type: application/json' \
  -d "{\"username\": \"admin\", \"password\": \"$ADMIN_PASSWORD\"}" "$N1/auth/login" | json_field access_token)
COACH=$(curl -sf -X POST -H 'content-type: application/json' -H "authorization: Bearer $TOK" \
  -d '{"name": "Cost coach", "timezone": "UTC", "slot_minutes": 30, "availability": [{"weekday": 1, "start": "08:00", "end": "20:30"}]}' \
  "$N1/coaching/coaches" | json_field id)
TAKEN="{\"coach_id\": \"$COACH\", \"start\": \"2030-06-03T08:00:00Z\"}"
curl -sf -X POST -H 'content-type: application/json' -H "authorization: Bearer $TOK" -d "$TAKEN" "$N1/coaching/bookings" > /dev/null

node_cpu_ticks() {
  local t=0 p f
  for p in "${PIDS[@]}"; do
    read -ra f < <(cut -d')' -f2 "/proc/$p/stat")
    t=$((t + f[11] + f[12]))
  done
  echo "$t"
}

# row <name> <method> <path> [<token> <body>]: one round on every node at once.
row() {
  local name=$1 method=$2 path=$3 token=${4:-} body=${5:-} n c0 c1 w=() status
  {
    echo "wrk.method = \"$method\""
    if [ -n "$body" ]; then
      echo "wrk.body = '$body'"
      echo 'wrk.headers["content-type"] = "application/json"'
      echo "wrk.headers[\"authorization\"] = \"Bearer $token\""
    fi
  } > "$WORK/req.lua"
  status=$(curl -s -o /dev/null -w '%{http_code}' -X "$method" -H 'content-type: application/json' \
    ${body:+-H "authorization: Bearer $token" -d "$body"} "$N1$path")
  c0=$(node_cpu_ticks)
  for n in n1 n2 n3; do
    wrk -t1 -c8 -d"${DURATION}s" -s "$WORK/req.lua" "http://127.0.0.1:${HTTP[$n]}$path" > "$WORK/wrk-$n.out" &
    w+=($!)
  done
  wait "${w[@]}"
  c1=$(node_cpu_ticks)
  python3 - "$name" "$status" "$((c1 - c0))" "$(getconf CLK_TCK)" "$DURATION" "$WORK"/wrk-n*.out <<'PY'
import re, sys
name, status, ticks, hz, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
rate = sum(float(re.search(r"Requests/sec:\s+([\d.]+)", open(f).read()).group(1)) for f in sys.argv[6:])
print(f"| {name} | {status} | {rate:,.0f} | {ticks / hz / secs * 100:.0f} % | {ticks / hz * 1e6 / (rate * secs):.0f} |")
PY
}

echo "| request | answer | requests/s (3 nodes) | nodes' CPU | nodes' CPU per request (us) |"
echo "|---|---|---|---|---|"
row "GET /health" GET /health
row "GET /ping?node=n2" GET "/ping?node=n2"
row "booking: bad token" POST /coaching/bookings x.y.z '{}'
row "booking: bad body" POST /coaching/bookings "$TOK" '{"coach_id": 1}'
row "booking: unknown coach" POST /coaching/bookings "$TOK" '{"coach_id": "no-such-coach", "start": "2030-06-03T08:00:00Z"}'
row "booking: bad slot" POST /coaching/bookings "$TOK" "{\"coach_id\": \"$COACH\", \"start\": \"2030-06-03T08:10:00Z\"}"
row "booking: taken slot" POST /coaching/bookings "$TOK" "$TAKEN"
