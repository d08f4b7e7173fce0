#!/usr/bin/env bash
# Benchmarks of the cluster runtime (issue "Cluster runtime"), measured side by side in one
# run on this machine. Prints a markdown report on stdout.
#
#   scripts/bench.sh            # default: 3 rounds of 10 s per HTTP load, 64 connections
#   DURATION=20 CONNS=128 ROUNDS=5 scripts/bench.sh
#   PARTS=http BIN=/tmp/troupe-old scripts/bench.sh   # only some of: http rpc footprint
#   NODE_WORKERS=1 scripts/bench.sh   # the two nodes with 1 tokio worker thread each
#                                     # (TOKIO_WORKER_THREADS; the baseline keeps its default)
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
  ${NODE_WORKERS:+env TOKIO_WORKER_THREADS=$NODE_WORKERS} \
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
# CPU time of process $1 in clock ticks, every thread's (exited ones too).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Times the threads of process $1 went to sleep waiting (voluntary context switches); a
# sleeping thread costs a wake-up when work comes.
sleeps() { cat /proc/"$1"/task/*/status | awk '/^voluntary_ctxt_switches/ {s += $2} END {print s}'; }
if part rpc; then
echo "## Node-to-node RPC through the mesh (n1 -> n2, \`POST /admin/mesh/bench\`)"
echo
echo "CPU per call is each node's user + kernel time over the run divided by the calls (n1's"
echo "includes the load generator inside it). Sleeps per call count how often n2's threads (it"
echo "only answers) went to sleep and so had to be woken again."
echo
echo "| load | calls/s | p50 | p99 | p99.9 | errors | CPU per call n1 / n2 | n2 sleeps per call |"
echo "|---|---|---|---|---|---|---|---|"
bench '{"node":"n2","calls":20000,"concurrency":64}' > /dev/null   # warm-up
TICK_US=$((1000000 / $(getconf CLK_TCK)))
for body in '{"node":"n2","calls":300000,"concurrency":64}' \
            '{"node":"n2","calls":300000,"concurrency":256}' \
            '{"node":"n2","calls":100000,"concurrency":64,"rate":10000}'; do
  C1=$(cpu_ticks "${PIDS[1]}"); C2=$(cpu_ticks "${PIDS[2]}"); S2=$(sleeps "${PIDS[2]}")
  bench "$body" > "$WORK/bench.json"
  C1=$(($(cpu_ticks "${PIDS[1]}") - C1)); C2=$(($(cpu_ticks "${PIDS[2]}") - C2))
  S2=$(($(sleeps "${PIDS[2]}") - S2))
  python3 -c '
import json,sys
d=json.load(open(sys.argv[1]))
c1, c2, s2, tick = (int(a) for a in sys.argv[2:])
n = d["calls"]
load = "%d callers" % d["concurrency"] + (", paced at %d/s" % d["rate"] if d["rate"] else ", unpaced")
print("| %s | %.0f | %d us | %d us | %d us | %d | %.0f / %.0f us | %.2f |" % (load, d["calls_per_sec"], d["p50_us"], d["p99_us"], d["p999_us"], d["errors"], c1 * tick / n, c2 * tick / n, s2 / n))
if d["rate"]:
    s = d["from_send"]
    print("| the same, timed from each call'"'"'s actual start | | %d us | %d us | %d us | | | |" % (s["p50_us"], s["p99_us"], s["p999_us"]))' \
    "$WORK/bench.json" "$C1" "$C2" "$S2" "$TICK_US"
done
echo
fi

part footprint || exit 0
echo "## Footprint"
echo
sleep 1
echo "- RSS of node n1 after the load above: $(awk '/VmRSS/ {print $2, $3}' /proc/${PIDS[1]}/status)"
python3 scripts/bench_node.py "$BIN"
