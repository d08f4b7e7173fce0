#!/usr/bin/env bash
# Benchmarks of the cluster runtime (issue "Cluster runtime"), measured side by side in one
# run on this machine. Prints a markdown report on stdout.
#
#   scripts/bench.sh            # default: 3 rounds of 10 s per HTTP load, 64 connections
#   DURATION=20 CONNS=128 ROUNDS=5 scripts/bench.sh
#   PARTS=http BIN=/tmp/troupe-old scripts/bench.sh   # only some of: http rpc footprint
#
# Needs wrk (apt-get install wrk), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
PARTS=${PARTS:-http rpc footprint}
part() { [[ " $PARTS " == *" $1 "* ]]; }
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3

cargo build --release --quiet --bin troupe --example bare_axum

start_bare

write_config "$WORK/cluster.toml" n1 n2
for n in n1 n2; do
  $BIN node --config "$WORK/cluster.toml" --name $n > "$WORK/$n.log" 2>&1 &
  PIDS+=($!)
done
N1="http://127.0.0.1:${HTTP[n1]}"
for _ in $(seq 100); do
  if curl -sf "$N1/ping?node=n2" > /dev/null; then break; fi
  sleep 0.1
done
curl -sf "$N1/ping?node=n2" > /dev/null || { echo "cluster did not form"; cat "$WORK"/*.log; exit 1; }

rps() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$1" > "$WORK/wrk.out"; \
        awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out"; }
p99() { awk '/ 99%/ {print $2}' "$WORK/wrk.out"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

if part http; then
  echo "## HTTP ($THREADS wrk threads, $CONNS connections, ${DURATION}s per load, $ROUNDS rounds)"
  echo
  echo "Each round runs the three loads back to back, so drift in the machine's speed lands"
  echo "on the baseline and on Troupe alike; the ratios are per round, then their median."
  echo
  echo "| round | bare axum \`GET /health\` req/s (p99) | \`GET /ping\` req/s (p99) | ratio | \`GET /ping?node=n2\` req/s (p99) | ratio |"
  echo "|---|---|---|---|---|---|"
  PING_RATIOS=(); HOP_RATIOS=()
  for r in $(seq "$ROUNDS"); do
    BARE=$(rps "http://127.0.0.1:$BASE_PORT/health"); BARE99=$(p99)
    PING=$(rps "$N1/ping"); PING99=$(p99)
    HOP=$(rps "$N1/ping?node=n2"); HOP99=$(p99)
    PING_RATIOS+=("$(ratio "$PING" "$BARE")"); HOP_RATIOS+=("$(ratio "$HOP" "$BARE")")
    echo "| $r | $BARE ($BARE99) | $PING ($PING99) | ${PING_RATIOS[-1]} | $HOP ($HOP99) | ${HOP_RATIOS[-1]} |"
  done
  median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
  echo "| median | | | $(median "${PING_RATIOS[@]}") | | $(median "${HOP_RATIOS[@]}") |"
  echo
fi

bench() { curl -sf -X POST "$N1/admin/mesh/bench" -H "authorization: Bearer $TOKEN" \
            -H 'content-type: application/json' -d "$1"; }
if part rpc; then
echo "## Node-to-node RPC through the mesh (n1 -> n2, \`POST /admin/mesh/bench\`)"
echo
echo "| load | calls/s | p50 | p99 | p99.9 | errors |"
echo "|---|---|---|---|---|---|"
bench '{"node":"n2","calls":20000,"concurrency":64}' > /dev/null   # warm-up
for body in '{"node":"n2","calls":300000,"concurrency":64}' \
            '{"node":"n2","calls":300000,"concurrency":256}' \
            '{"node":"n2","calls":100000,"concurrency":64,"rate":10000}'; do
  bench "$body" | python3 -c '
import json,sys
d=json.load(sys.stdin)
load = "%d callers" % d["concurrency"] + (", paced at %d/s" % d["rate"] if d["rate"] else ", unpaced")
print("| %s | %.0f | %d us | %d us | %d us | %d |" % (load, d["calls_per_sec"], d["p50_us"], d["p99_us"], d["p999_us"], d["errors"]))
if d["rate"]:
    s = d["from_send"]
    print("| the same, timed from each call'"'"'s actual start | | %d us | %d us | %d us | |" % (s["p50_us"], s["p99_us"], s["p999_us"]))'
done
echo
fi

part footprint || exit 0
echo "## Footprint"
echo
for n in n1 n2; do :; done
IDLE_PID=${PIDS[1]}
sleep 1
echo "- RSS of node n1 after the load above: $(awk '/VmRSS/ {print $2, $3}' /proc/${PIDS[1]}/status)"
python3 scripts/bench_node.py "$BIN"
