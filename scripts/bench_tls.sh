#!/usr/bin/env bash
# Mutual TLS between nodes against plaintext, in one run (issue 20, "Numbers to reach"):
# two 2-node clusters side by side, one over mutual TLS (t1, t2) and one with
# `insecure_plaintext` (p1, p2), plus the bare axum baseline. Each round runs, back to back:
# bare axum `GET /health`, `GET /ping?node=` across each cluster (wrk), and the mesh RPC bench
# (`POST /admin/mesh/bench`, 64 callers) across each cluster. Targets: mesh RPC over TLS
# >= 0.8x plaintext, `GET /ping?node=` over TLS >= 0.35x bare axum.
#
#   scripts/bench_tls.sh                       # release build, 3 rounds of 10 s per HTTP load
#   ROUNDS=5 DURATION=5 CALLS=200000 scripts/bench_tls.sh
#   SKIP_BUILD=1 BIN=/tmp/troupe scripts/bench_tls.sh
#
# Needs wrk, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-3}
CALLS=${CALLS:-300000}
# shellcheck source=lib.sh
. scripts/lib.sh
need wrk curl python3
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --quiet --bin troupe --example bare_axum
start_bare

# Starts the two nodes named $2 and $3 from config $1; prints the first one's URL.
start_pair() {
  local n
  for n in "$2" "$3"; do
    "$BIN" node --config "$1" --name "$n" > "$WORK/$n.log" 2>&1 &
    PIDS+=($!)
  done
  local url="http://127.0.0.1:${HTTP[$2]}"
  for _ in $(seq 100); do curl -sf "$url/ping?node=$3" > /dev/null && break; sleep 0.1; done
  curl -sf "$url/ping?node=$3" > /dev/null || { echo "cluster $2+$3 did not form" >&2; cat "$WORK"/*.log >&2; exit 1; }
}
write_config "$WORK/tls.toml" t1 t2
PLAINTEXT=1 write_config "$WORK/plain.toml" p1 p2
grep -q '^\[cluster.tls\]' "$WORK/tls.toml" && ! grep -q insecure_plaintext "$WORK/tls.toml"
grep -q '^insecure_plaintext = true' "$WORK/plain.toml"
start_pair "$WORK/tls.toml" t1 t2
start_pair "$WORK/plain.toml" p1 p2
T1="http://127.0.0.1:${HTTP[t1]}"
P1="http://127.0.0.1:${HTTP[p1]}"

rps() { wrk -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$1" > "$WORK/wrk.out"; \
        awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out"; }
ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
mesh() { curl -sf -X POST "$1/admin/mesh/bench" -H "authorization: Bearer $TOKEN" \
           -H 'content-type: application/json' -d "{\"node\":\"$2\",\"calls\":$CALLS,\"concurrency\":64}" \
         | python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f %d %d" % (d["calls_per_sec"], d["p99_us"], d["errors"]))'; }
mesh "$T1" t2 > /dev/null; mesh "$P1" p2 > /dev/null   # warm-up

echo "## Mutual TLS against plaintext ($ROUNDS rounds; wrk $THREADS threads, $CONNS connections, ${DURATION}s; mesh bench $CALLS calls, 64 callers)"
echo
echo "| round | bare axum req/s | \`/ping?node\` TLS req/s | ratio to bare | \`/ping?node\` plaintext req/s | ratio to bare | mesh RPC TLS calls/s (p99) | mesh RPC plaintext calls/s (p99) | TLS / plaintext |"
echo "|---|---|---|---|---|---|---|---|---|"
HOPS=(); RPCS=()
for r in $(seq "$ROUNDS"); do
  BARE=$(rps "http://127.0.0.1:$BASE_PORT/health")
  HT=$(rps "$T1/ping?node=t2")
  HP=$(rps "$P1/ping?node=p2")
  read -r MT MT99 MTE < <(mesh "$T1" t2)
  read -r MP MP99 MPE < <(mesh "$P1" p2)
  [ "$MTE" = 0 ] && [ "$MPE" = 0 ] || echo "(mesh bench errors: TLS $MTE, plaintext $MPE)"
  HOPS+=("$(ratio "$HT" "$BARE")"); RPCS+=("$(ratio "$MT" "$MP")")
  echo "| $r | $BARE | $HT | ${HOPS[-1]} | $HP | $(ratio "$HP" "$BARE") | $MT ($MT99 us) | $MP ($MP99 us) | ${RPCS[-1]} |"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
echo "| median | | | $(median "${HOPS[@]}") | | | | | $(median "${RPCS[@]}") |"
