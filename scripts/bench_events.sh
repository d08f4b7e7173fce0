#!/usr/bin/env bash
# Benchmarks of the event bus (issue "Events, notifications, tasks and todos").
# Prints a markdown report on stdout.
#
#   scripts/bench_events.sh                     # 5,000 events/s for 10 s; 1,000 events/s for 10 s
#   RATE=5000 DURATION=20 LAT_RATE=1000 scripts/bench_events.sh
#   TROUPE_BIN=target/debug/troupe RATE=500 DURATION=2 scripts/bench_events.sh   # smoke run
#
# 1. Throughput: one node publishes RATE events/s (POST /admin/events/bench, paced) through
#    its sled outbox to a private Mosquitto; mosquitto_sub counts what the broker delivers.
# 2. Latency: three nodes publish LAT_RATE events/s in all; the notifications service
#    writes one log row per event; the report gives the publish-to-row latency
#    percentiles (row time minus event time, same clock).
#
# Needs /usr/sbin/mosquitto, mosquitto_sub, curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-5000}
DURATION=${DURATION:-10}
LAT_RATE=${LAT_RATE:-1000}
LAT_DURATION=${LAT_DURATION:-10}
# shellcheck source=lib.sh
. scripts/lib.sh

# TROUPE_BIN=target/debug/troupe runs a given binary instead (sanity runs of the driver).
if [ -n "${TROUPE_BIN:-}" ]; then BIN=$TROUPE_BIN; else cargo build --release --quiet --bin troupe; fi

start_mosquitto

# Every config here: mesh calls wait as long as the benchmark needs, events go to Mosquitto.
EXTRA="[services]
call_timeout_ms = 3600000
[mqtt]
host = \"127.0.0.1\"
port = $MQTT_PORT
inflight = 1000"

metric() { curl -sf "$1/metrics" | awk -v m="$2" '$1 == m {print $2}'; }
bench() { curl -sf -X POST "$1/admin/events/bench" -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$2"; }
field() { python3 -c "import json,sys; d=json.load(sys.stdin); print(eval('d' + sys.argv[1]))" "$1"; }

echo "## Throughput: one node, outbox to Mosquitto (QoS 1, PUBACK before an event leaves the outbox)"
echo
write_config "$WORK/one.toml" a1
$BIN node --config "$WORK/one.toml" --name a1 > "$WORK/a1.log" 2>&1 &
PIDS+=($!)
A1="http://127.0.0.1:${HTTP[a1]}"
for _ in $(seq 100); do [ "$(metric "$A1" troupe_mqtt_connected)" = "1" ] && break; sleep 0.1; done
COUNT=$((RATE * DURATION))
timeout $((DURATION * 6 + 60)) mosquitto_sub -p "$MQTT_PORT" -q 1 -t 'troupe/events/bench.event' -C "$COUNT" > "$WORK/sub.out" &
SUB=$!
sleep 0.5
T0=$(date +%s.%N)
bench "$A1" "{\"count\": $COUNT, \"rate\": $RATE, \"concurrency\": 512}" > "$WORK/tp.json"
wait "$SUB" || true
T1=$(date +%s.%N)
GOT=$(wc -l < "$WORK/sub.out")
# The notifications lane (one SQLite row per event) drains the rest of the outbox.
for _ in $(seq $((DURATION * 60))); do
  [ "$(metric "$A1" troupe_outbox_depth)" = "0" ] && break; sleep 0.1
done
T2=$(date +%s.%N)
DELIVERED=$(curl -sf "$A1/metrics" | awk '/^troupe_events_delivered_total\{sink="mqtt"\}/ {print $2}')
echo "| what | value |"
echo "|---|---|"
echo "| events published (acknowledged durable) | $(field '["published"]' < "$WORK/tp.json") of $COUNT, $(field '["failed"]' < "$WORK/tp.json") failed |"
echo "| publish rate achieved | $(field '["events_per_s"]' < "$WORK/tp.json" | cut -d. -f1) events/s (target $RATE) |"
echo "| publish latency p50 / p99 / max (us) | $(field '["publish_latency_us"]["p50"]' < "$WORK/tp.json") / $(field '["publish_latency_us"]["p99"]' < "$WORK/tp.json") / $(field '["publish_latency_us"]["max"]' < "$WORK/tp.json") |"
echo "| PUBACKed by the broker (\`troupe_events_delivered_total{sink=\"mqtt\"}\`) | $DELIVERED |"
echo "| received by \`mosquitto_sub\` | $GOT |"
echo "| start of burst to the subscriber's last message | $(python3 -c "print(f'{$T1-$T0:.1f}')") s ($(python3 -c "print(int($GOT/($T1-$T0)))") events/s publish to subscriber) |"
echo "| start of burst to an empty outbox (MQTT and notifications lanes) | $(python3 -c "print(f'{$T2-$T0:.1f}')") s |"
echo

echo "## Latency: three nodes, publish to notification log row"
echo
write_config "$WORK/three.toml" n1 n2 n3
for n in n1 n2 n3; do
  $BIN node --config "$WORK/three.toml" --name $n > "$WORK/$n.log" 2>&1 &
  PIDS+=($!)
done
N1="http://127.0.0.1:${HTTP[n1]}"
for _ in $(seq 200); do curl -sf "$N1/ping?node=n3" > /dev/null && curl -sf "$N1/ping?node=n2" > /dev/null && break; sleep 0.1; done
RUN="lat$(date +%s)"
PER=$((LAT_RATE / 3))
LATPIDS=()
for n in n1 n2 n3; do
  bench "http://127.0.0.1:${HTTP[$n]}" "{\"count\": $((PER * LAT_DURATION)), \"rate\": $PER, \"run\": \"$RUN\"}" > "$WORK/lat-$n.json" &
  LATPIDS+=($!)
done
for p in "${LATPIDS[@]}"; do wait "$p"; done
sleep 2
curl -sf "$N1/admin/events/bench/$RUN" -H "authorization: Bearer $TOKEN" > "$WORK/lat.json"
echo "| what | value |"
echo "|---|---|"
echo "| events | $((PER * 3 * LAT_DURATION)) published at $((PER * 3))/s over 3 nodes, $(field '["log_rows"]' < "$WORK/lat.json") log rows |"
echo "| publish to log row p50 / p99 / max (ms) | $(field '["publish_to_row_ms"]["p50"]' < "$WORK/lat.json") / $(field '["publish_to_row_ms"]["p99"]' < "$WORK/lat.json") / $(field '["publish_to_row_ms"]["max"]' < "$WORK/lat.json") |"
