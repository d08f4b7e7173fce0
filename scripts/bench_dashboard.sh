#!/usr/bin/env bash
# The dashboard's own cost to a node: requests per second one open tab sends (issue 25: under
# 1 per second). Headless Chromium loads /dashboard of a 3-node cluster and runs it for
# $SECONDS_OF_PAGE seconds of virtual time (timers fire as in a real tab; virtual time stops
# while a request is open); the node's HTTP request counter (`GET /health`) before and after
# gives what the page asked for.
#
#   scripts/bench_dashboard.sh                         # release build, 60 s of page time
#   BIN=target/debug/troupe SECONDS_OF_PAGE=120 scripts/bench_dashboard.sh
#
# Needs chromium, curl and python3. The admin token's extra polls (/admin/actors and
# /connections every 10 s) cannot be typed into a headless tab; they add 0.2 requests/s.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_OF_PAGE=${SECONDS_OF_PAGE:-60}
# shellcheck source=lib.sh
. scripts/lib.sh
need chromium curl python3

[ -x "$BIN" ] && [ "${BIN#target/debug}" != "$BIN" ] || cargo build --release --quiet --bin troupe

PLAINTEXT=1 write_config "$WORK/cluster.toml" n1 n2 n3
for n in n1 n2 n3; do
  "$BIN" node --config "$WORK/cluster.toml" --name "$n" > "$WORK/$n.log" 2>&1 &
  PIDS+=($!)
done
for n in n1 n2 n3; do wait_health "${HTTP[$n]}"; done
sleep 3

count() { curl -sf "http://127.0.0.1:${HTTP[n1]}/health" | python3 -c 'import json,sys; print(json.load(sys.stdin)["http_requests"])'; }
before=$(count)
chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
  --user-data-dir="$WORK/profile" --virtual-time-budget=$((SECONDS_OF_PAGE * 1000)) \
  --dump-dom "http://127.0.0.1:${HTTP[n1]}/dashboard" > "$WORK/dom.html" 2> "$WORK/chromium.log"
after=$(count)
# The first /health is counted in `after`; the page's requests are the rest.
page=$((after - before - 1))
charts=$(grep -o 'class="chart-svg"' "$WORK/dom.html" | wc -l)
echo "## Requests of one open /dashboard tab ($SECONDS_OF_PAGE s of page time, 3 nodes)"
echo
echo "| requests (page + its script) | per second | charts drawn |"
echo "|---|---|---|"
echo "| $page | $(python3 -c "print(f'{$page/$SECONDS_OF_PAGE:.2f}')") | $charts |"
