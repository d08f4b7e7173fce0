#!/usr/bin/env bash
# Engagement throughput and leaderboard latency (issue 21). Prints a markdown report.
#
#   scripts/bench_engagement.sh                   # 30 s of tracking by 300 users; 100,000 ranked
#   DURATION=10 USERS=100 RANKED=20000 scripts/bench_engagement.sh
#   TROUPE_BIN=target/debug/troupe DURATION=2 RANKED=1000 scripts/bench_engagement.sh   # smoke
#
# One release node on the embedded SQLite store.
# 1. `POST /engagement/track` `{"kind":"page_view"}` (1 point) for DURATION s by wrk over
#    CONNS connections, the token rotating over USERS users. The wrk script counts the
#    requests sent and the 2xx answers; afterwards the store must hold at least one
#    `page_view` activity per 2xx answer and no more than were sent (a request in flight
#    when wrk stops may still be committed), and the users' points must sum to the
#    activities (nothing lost, nothing counted twice).
# 2. RANKED more users with points are written straight into the store (`users` and
#    `engagement_points`, the migrations' schema, so the leaderboard's username join finds
#    them), then wrk reads `GET /engagement/leaderboard?limit=10` for LB_DURATION s over
#    LB_CONNS connections; the answer must be the store's top 10, with usernames.
#
# Needs wrk, curl, python3 and sqlite3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-30}
USERS=${USERS:-300}
CONNS=${CONNS:-64}
RANKED=${RANKED:-100000}
LB_DURATION=${LB_DURATION:-15}
LB_CONNS=${LB_CONNS:-4}
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3 sqlite3

if [ -n "${TROUPE_BIN:-}" ]; then BIN=$TROUPE_BIN; else cargo build --release --quiet --bin troupe; fi

AUTH_EXTRA="pbkdf2_iterations = 1000
login_per_account_per_minute = 100000000
login_per_ip_per_minute = 100000000" write_config "$WORK/one.toml" e1
$BIN node --config "$WORK/one.toml" --name e1 > "$WORK/e1.log" 2>&1 &
PIDS+=($!)
PORT=${HTTP[e1]}
URL="http://127.0.0.1:$PORT"
DB="$WORK/data-one/troupe.db"
wait_health "$PORT"
make_users "$PORT" "$USERS" "eng$(date +%s)" "$WORK/tokens"

cat > "$WORK/track.lua" <<EOF
-- Rotates the bearer token over the users' tokens; counts requests sent and 2xx answers.
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  tokens = {}
  for line in io.lines("$WORK/tokens") do table.insert(tokens, line) end
  i = math.random(#tokens); sent = 0; ok = 0; other = 0
end
function request()
  i = i % #tokens + 1; sent = sent + 1
  return wrk.format("POST", "/engagement/track",
    {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tokens[i]},
    '{"kind":"page_view"}')
end
function response(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else other = other + 1 end
end
function done(summary, latency, requests)
  local s, o, x = 0, 0, 0
  for _, t in ipairs(threads) do s = s + t:get("sent"); o = o + t:get("ok"); x = x + t:get("other") end
  io.write(string.format("COUNTS sent=%d ok=%d other=%d\n", s, o, x))
end
EOF

pct() { awk -v p="$1" '$1 == p {print $2}' "$2"; }
LOAD1=$(uptime | sed 's/.*load average: //')
wrk -t2 -c"$CONNS" -d"${DURATION}s" --latency -s "$WORK/track.lua" "$URL/engagement/track" > "$WORK/track.out"
read -r SENT OK OTHER < <(sed -n 's/^COUNTS sent=\([0-9]*\) ok=\([0-9]*\) other=\([0-9]*\)/\1 \2 \3/p' "$WORK/track.out")
# Let anything still in flight commit before counting.
sleep 2
ROWS=$(sqlite3 "$DB" "SELECT COUNT(*) FROM engagement_activities WHERE kind = 'page_view'")
POINTS=$(sqlite3 "$DB" "SELECT COALESCE(SUM(points), 0) FROM engagement_points")
TRACK_RPS=$(python3 -c "print(round($OK / $DURATION))")
LOST=yes; [ "$ROWS" -ge "$OK" ] && [ "$ROWS" -le "$SENT" ] && [ "$POINTS" = "$ROWS" ] && LOST=no

# 100,000 users with points, written as the services would: a `users` row (the
# leaderboard joins it for the username) and an `engagement_points` row each. Points are
# spread over 1..50,000, so ties exist and the order's tie-breaks are exercised.
NOW=$(date +%s%3N)
sqlite3 "$DB" <<EOF
.timeout 10000
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RANKED)
INSERT INTO users (id, username, username_lower, email, email_lower, password_hash, created_at, updated_at)
SELECT printf('00000000-0000-4000-8000-%012d', i), printf('Ranked%d', i), printf('ranked%d', i),
       printf('ranked%d@example.com', i), printf('ranked%d@example.com', i), 'x', $NOW, $NOW FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $RANKED)
INSERT INTO engagement_points (user_id, points, updated_at)
SELECT printf('00000000-0000-4000-8000-%012d', i), 1 + (i * 7919) % 50000, $NOW + i FROM n;
COMMIT;
EOF
HOLDERS=$(sqlite3 "$DB" "SELECT COUNT(*) FROM engagement_points WHERE points > 0")
TOKEN1=$(head -1 "$WORK/tokens")
curl -sf "$URL/engagement/leaderboard?limit=10" -H "authorization: Bearer $TOKEN1" > "$WORK/top.json"
sqlite3 -json "$DB" "SELECT p.user_id, u.username, p.points FROM engagement_points p JOIN users u ON u.id = p.user_id WHERE p.points > 0 ORDER BY p.points DESC, p.updated_at ASC, p.user_id ASC LIMIT 10" > "$WORK/top.sql.json"
TOP_OK=$(python3 -c "
import json, sys
a = json.load(open('$WORK/top.json'))['items']; b = json.load(open('$WORK/top.sql.json'))
print('yes' if len(a) == 10 and a == b and all(x['username'] for x in a) else 'no')")
LOAD2=$(uptime | sed 's/.*load average: //')
wrk -t1 -c"$LB_CONNS" -d"${LB_DURATION}s" --latency -H "Authorization: Bearer $TOKEN1" \
  "$URL/engagement/leaderboard?limit=10" > "$WORK/lb.out"
LB_NON2XX=$(awk '/Non-2xx/ {print $NF}' "$WORK/lb.out"); LB_NON2XX=${LB_NON2XX:-0}

echo "## Engagement, one node (SQLite)"
echo
echo "| what | value |"
echo "|---|---|"
echo "| \`POST /engagement/track\` page_view, $USERS users' tokens, $CONNS connections, ${DURATION} s | **$TRACK_RPS 2xx answers/s** ($OK 2xx, $OTHER other, $SENT sent) |"
echo "| track latency p50 / p99 | $(pct 50% "$WORK/track.out") / $(pct 99% "$WORK/track.out") |"
echo "| page_view activity rows afterwards / points summed over users | $ROWS / $POINTS (lost: $LOST; rows may exceed 2xx by the requests in flight when wrk stopped: $((ROWS - OK))) |"
echo "| load average before tracking | $LOAD1 |"
echo "| users holding points | $HOLDERS |"
echo "| \`GET /engagement/leaderboard?limit=10\`, $LB_CONNS connections, ${LB_DURATION} s | $(awk '/Requests\/sec/ {print $2}' "$WORK/lb.out") requests/s, $LB_NON2XX non-2xx |"
echo "| leaderboard latency p50 / p90 / p99 | $(pct 50% "$WORK/lb.out") / $(pct 90% "$WORK/lb.out") / **$(pct 99% "$WORK/lb.out")** |"
echo "| top 10 == the store's top 10, usernames present | $TOP_OK |"
echo "| load average before the leaderboard run | $LOAD2 |"
[ "$LOST" = no ] && [ "$TOP_OK" = yes ] && [ "$LB_NON2XX" = 0 ]
