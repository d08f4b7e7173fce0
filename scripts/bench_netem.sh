#!/usr/bin/env bash
# Lossy, slow links (issue 20, "Numbers to reach"): 3 nodes, each in its own network
# namespace on one bridge (scripts/netlab.sh, 198.18.0.0/15 only), with `tc netem` loss 5 %
# and delay 50 ms on the way into every node (every packet between two nodes passes one
# netem) for DURATION_S seconds. Every node's /cluster view is sampled every 200 ms; any
# member seen in a state other than `up` is a false down (no node failed). Target: none.
#
#   sudo scripts/bench_netem.sh                          # release build, 60 s
#   sudo PROFILE=debug DURATION_S=60 scripts/bench_netem.sh
#   sudo NETEM="loss 10% delay 100ms 20ms" scripts/bench_netem.sh
#
# A kernel without sch_netem cannot delay packets: then, with iptables installed, the loss
# alone is applied (iptables statistic match, labelled "loss only"); without iptables the
# run stops unless ALLOW_NO_NETEM=1, which samples undegraded links (labelled so).
#
# Needs root, iproute2 with tc, a kernel with sch_netem (or iptables), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION_S=${DURATION_S:-60}
NETEM=${NETEM:-loss 5% delay 50ms}
PROFILE=${PROFILE:-release}
BIN=${BIN:-${CARGO_TARGET_DIR:-target}/$PROFILE/troupe}
# shellcheck source=lib.sh
. scripts/lib.sh
# shellcheck source=netlab.sh
. scripts/netlab.sh
need curl python3 tc
lab_need

if [ -z "${SKIP_BUILD:-}" ]; then
  if [ "$PROFILE" = release ]; then cargo build --release --quiet --bin troupe; else cargo build --quiet --bin troupe; fi
fi

lab_up n1 n2 n3
lab_config "$WORK/cluster.toml"
lab_start "$WORK/cluster.toml"
echo "lab: 198.18.$LAB_SUBNET.0/24, binary $BIN"
# shellcheck disable=SC2086
if lab_degrade $NETEM 2> "$WORK/tc.err"; then
  LINKS="netem $NETEM"
elif LOSS=$(echo "$NETEM" | grep -o 'loss [0-9.]*%' | grep -o '[0-9.]*') && command -v iptables > /dev/null \
  && lab_drop "$LOSS"; then
  LINKS="loss only: $LOSS % dropped by iptables, NO delay (tc netem unavailable: $(tr '\n' ' ' < "$WORK/tc.err"))"
elif [ -n "${ALLOW_NO_NETEM:-}" ]; then
  LINKS="NOT degraded (tc netem unavailable: $(tr '\n' ' ' < "$WORK/tc.err"))"
else
  echo "$0: not measured: tc netem unavailable here: $(cat "$WORK/tc.err")" >&2
  echo "(a kernel built without sch_netem; ALLOW_NO_NETEM=1 samples undegraded links)" >&2
  exit 3
fi

python3 - "$DURATION_S" "$LINKS" "${LAB_IP[n1]}" "${LAB_IP[n2]}" "${LAB_IP[n3]}" <<'PY'
import http.client, json, sys, time

duration, links = int(sys.argv[1]), sys.argv[2]
ips = dict(zip(["n1", "n2", "n3"], sys.argv[3:6]))
ALL = sorted(ips)

def view(node):
    c = http.client.HTTPConnection(ips[node], 8080, timeout=2)
    try:
        c.request("GET", "/cluster")
        r = c.getresponse()
        if r.status != 200:
            return None
        return {m["name"]: m.get("state") for m in json.loads(r.read())["members"]}
    except Exception:
        return None
    finally:
        c.close()

samples, unanswered, downs = 0, 0, []
start = time.monotonic()
while time.monotonic() - start < duration:
    tick = time.monotonic()
    for observer in ALL:
        v = view(observer)
        samples += 1
        if v is None:
            unanswered += 1
            continue
        for member in ALL:
            if v.get(member) != "up":
                downs.append((tick - start, observer, member, v.get(member, "absent")))
    time.sleep(max(0, 0.2 - (time.monotonic() - tick)))

print()
print(f"| measure ({duration} s, links: {links}) | value | target |")
print("|---|---|---|")
print(f"| /cluster samples (every 200 ms per node) | {samples} | |")
print(f"| samples a node did not answer (HTTP over the degraded link) | {unanswered} | |")
print(f"| member seen not up (observer, member, state) samples | {len(downs)} | 0 |")
pairs = sorted({(o, m) for _, o, m, _ in downs})
print(f"| distinct observer -> member false downs | {', '.join(f'{o}->{m}' for o, m in pairs) or 'none'} | none |")
if downs:
    print(f"| first false down | {downs[0][0]:.1f} s: {downs[0][1]} saw {downs[0][2]} {downs[0][3]} | |")
PY
