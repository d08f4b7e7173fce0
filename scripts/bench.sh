#!/usr/bin/env bash
# Benchmarks of the cluster runtime (issue "Cluster runtime"), measured side by side in one
# run on this machine. Prints a markdown report on stdout.
#
#   scripts/bench.sh            # default: 10 s per HTTP load, 64 connections
#   DURATION=20 CONNS=128 scripts/bench.sh
#
# Needs wrk (apt-get install wrk), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3

cargo build --release --quiet --bin troupe --example bare_axum

start_bare

declare -A CL HTTP GRPC
for n in n1 n2; do CL[$n]=$(free_port); HTTP[$n]=$(free_port); GRPC[$n]=$(free_port); done
cat > "$WORK/cluster.toml" <<TOML
data_dir = "$WORK/data"
[cluster]
cookie = "bench-cookie-0123456789"
[admin]
token = "$TOKEN"
[auth]
keys = ["bench:bench-signing-key-0123456789abcdef0123"]
[log]
level = "warn"
[[nodes]]
name = "n1"
cluster_addr = "127.0.0.1:${CL[n1]}"
http_addr = "127.0.0.1:${HTTP[n1]}"
grpc_addr = "127.0.0.1:${GRPC[n1]}"
[[nodes]]
name = "n2"
cluster_addr = "127.0.0.1:${CL[n2]}"
http_addr = "127.0.0.1:${HTTP[n2]}"
grpc_addr = "127.0.0.1:${GRPC[n2]}"
TOML
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

echo "## HTTP ($THREADS wrk threads, $CONNS connections, ${DURATION}s each)"
echo
echo "| target | requests/s | p99 | ratio to bare axum |"
echo "|---|---|---|---|"
BARE=$(rps "http://127.0.0.1:$BASE_PORT/health"); BARE99=$(p99)
echo "| bare axum \`GET /health\` | $BARE | $BARE99 | 1.00 |"
PING=$(rps "$N1/ping"); PING99=$(p99)
echo "| troupe \`GET /ping\` (local service actor) | $PING | $PING99 | $(python3 -c "print(f'{$PING/$BARE:.2f}')") |"
HOP=$(rps "$N1/ping?node=n2"); HOP99=$(p99)
echo "| troupe \`GET /ping?node=n2\` (one cluster hop each way) | $HOP | $HOP99 | $(python3 -c "print(f'{$HOP/$BARE:.2f}')") |"
echo

bench() { curl -sf -X POST "$N1/admin/mesh/bench" -H "authorization: Bearer $TOKEN" \
            -H 'content-type: application/json' -d "$1"; }
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
print("| %s | %.0f | %d us | %d us | %d us | %d |" % (load, d["calls_per_sec"], d["p50_us"], d["p99_us"], d["p999_us"], d["errors"]))'
done
echo

echo "## Footprint"
echo
for n in n1 n2; do :; done
IDLE_PID=${PIDS[1]}
sleep 1
echo "- RSS of node n1 after the load above: $(awk '/VmRSS/ {print $2, $3}' /proc/${PIDS[1]}/status)"
python3 scripts/bench_node.py "$BIN"
