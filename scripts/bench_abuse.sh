#!/usr/bin/env bash
# Serving others under abuse (issue 23's numbers). Prints a markdown report on stdout.
#
#   scripts/bench_abuse.sh                         # release build, 20 s per phase
#   DURATION=10 SLOW=5000 scripts/bench_abuse.sh
#   SKIP_BUILD=1 BIN=/tmp/troupe scripts/bench_abuse.sh
#
# One release node (the embedded SQLite store, the default [auth] and [http] limits:
# 10 logins per account and 60 per address a minute, counted cluster-wide; a 10 s
# header-read timeout; 50,000 connections). A victim account and a bystander are made
# first. Three phases of DURATION seconds, each measuring what other clients see with wrk
# (`GET /profile` with the bystander's token, 4 connections):
#
# 1. quiet: nothing else runs (the baseline).
# 2. login flood: wrk sends `POST /auth/login` for the victim with a wrong password from
#    127.0.0.1 as fast as 64 connections go (the target asks for 5,000/s); meanwhile the
#    bystander logs in five times from 127.0.0.2 (curl --interface), which must succeed.
# 3. slowloris: SLOW connections (default 10,000) each send half a request head and then
#    nothing; the server cuts each off at its header-read timeout and the attacker opens a
#    new one at once, so about SLOW stay open throughout (scripts/slowloris.py).
#
# Needs wrk, curl and python3; raises the open-file limit (run as root, or with a high
# hard limit).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-20}
SLOW=${SLOW:-10000}
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin troupe

PLAINTEXT=1 write_config "$WORK/one.toml" a1
$BIN node --config "$WORK/one.toml" --name a1 > "$WORK/a1.log" 2>&1 &
PIDS+=($!)
PORT=${HTTP[a1]}
URL="http://127.0.0.1:$PORT"
wait_health "$PORT"

json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }
register() {
  curl -sf -X POST "$URL/auth/register" -H 'content-type: application/json' \
    -d "{\"username\":\"$1\",\"email\":\"$1@example.com\",\"password\":\"bench-passw0rd-1\"}" > /dev/null
}
register victim; register bystander
TOKEN=$(curl -sf -X POST "$URL/auth/login" -H 'content-type: application/json' \
  -d '{"username":"bystander","password":"bench-passw0rd-1"}' --interface 127.0.0.2 | json '["access_token"]')

cat > "$WORK/profile.lua" <<EOF
wrk.headers["Authorization"] = "Bearer $TOKEN"
EOF
cat > "$WORK/flood.lua" <<'EOF'
wrk.method = "POST"
wrk.body   = '{"username":"victim","password":"wrong-password-1"}'
wrk.headers["Content-Type"] = "application/json"
EOF

# Other clients' view: GET /profile over 4 connections for DURATION s; prints rate and p99.
others() {
  wrk -t1 -c4 -d"${DURATION}s" --latency -s "$WORK/profile.lua" "$URL/profile" > "$WORK/others.out"
  local rps p50 p99 errors
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/others.out")
  p50=$(awk '$1 == "50%" {print $2}' "$WORK/others.out")
  p99=$(awk '$1 == "99%" {print $2}' "$WORK/others.out")
  errors=$(awk '/Non-2xx/ {print $5}' "$WORK/others.out")
  echo "$rps req/s, p50 $p50, p99 **$p99**, non-2xx ${errors:-0}"
}
logins_from_another_address() {
  local ok=0 i
  for i in 1 2 3 4 5; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/auth/login" --interface 127.0.0.2 \
      -H 'content-type: application/json' -d '{"username":"bystander","password":"bench-passw0rd-1"}')
    [ "$code" = 200 ] && ok=$((ok + 1))
    sleep 1
  done
  echo "$ok"
}

echo "## Serving others under abuse: one node, $DURATION s per phase, $(git rev-parse --short HEAD)"
echo
echo "| phase | load average before | abuse | others: \`GET /profile\`, 4 connections |"
echo "|---|---|---|---|"

LOAD=$(uptime | sed 's/.*load average: //')
echo "| quiet | $LOAD | none | $(others) |"

LOAD=$(uptime | sed 's/.*load average: //')
wrk -t1 -c64 -d"${DURATION}s" -s "$WORK/flood.lua" "$URL/auth/login" > "$WORK/flood.out" &
FLOOD=$!
logins_from_another_address > "$WORK/bystander.ok" &
BY=$!
OTHERS=$(others)
wait "$FLOOD" "$BY"
FLOOD_RPS=$(awk '/Requests\/sec/ {print $2}' "$WORK/flood.out")
FLOOD_NON2XX=$(awk '/Non-2xx/ {print $5}' "$WORK/flood.out")
echo "| login flood | $LOAD | \`POST /auth/login\` for one account, wrong password, from 127.0.0.1: $FLOOD_RPS req/s, non-2xx: ${FLOOD_NON2XX:-0} (a wrong password answers 401, past the limits 429); the bystander's logins from 127.0.0.2: $(cat "$WORK/bystander.ok") of 5 answered 200 | $OTHERS |"

LOAD=$(uptime | sed 's/.*load average: //')
python3 scripts/slowloris.py 127.0.0.1 "$PORT" "$SLOW" $((DURATION + 15)) > "$WORK/slow.out" &
SLOWPID=$!
# Let the attacker reach its count before measuring.
sleep 10
OTHERS=$(others)
wait "$SLOWPID"
echo "| slowloris | $LOAD | $(cat "$WORK/slow.out") | $OTHERS |"
