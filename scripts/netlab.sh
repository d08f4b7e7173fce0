# Shared by the multi-host benchmark drivers (source it after scripts/lib.sh): a network lab of
# one Linux network namespace per node, joined by veth pairs to a bridge in the root
# namespace, with addresses only from the benchmarking range 198.18.0.0/15 (lab L uses
# 198.18.L.0/24, node k is 198.18.L.k, the bridge 198.18.L.254; the drivers take L in
# 200..249, the tests in tests/support/netlab.rs take 1..199). The nodes share the
# filesystem, so one SQLite file: only the network is split. Needs root and iproute2.
#
# Names are trb<pid:06x>00 plus a suffix (<= 15 characters); labs left by a run that was
# killed are recognised by that prefix and removed first. `lab_down` runs on exit.

declare -A LAB_IP LAB_NS LAB_VETH
LAB_NODES=()
LAB_ID=$(printf 'trb%06x00' $$)
LAB_BRIDGE=${LAB_ID}b

# Exits with a reason when the lab cannot be built here.
lab_need() {
  [ "$(id -u)" = 0 ] || { echo "$0: needs root (network namespaces)" >&2; exit 2; }
  need ip
}

# Removes namespaces and links of trl/trb labs whose owner process is gone.
lab_remove_stale() {
  local name pid
  for name in $(ip netns list | awk '{print $1}') $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1); do
    [[ $name =~ ^tr[lb]([0-9a-f]{6})[0-9a-f]{2}(b|p|pp|v[0-9]+|-.+)$ ]] || continue
    pid=$((16#${BASH_REMATCH[1]}))
    [ "$pid" -le "$(cat /proc/sys/kernel/pid_max)" ] || continue
    [ -d "/proc/$pid" ] && continue
    if ip netns list | awk '{print $1}' | grep -qx "$name"; then
      for p in $(ip netns pids "$name" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
      ip netns del "$name" 2>/dev/null || true
    else
      ip link del "$name" 2>/dev/null || true
    fi
  done
}

# Builds the lab for the node names given and sets LAB_SUBNET, LAB_IP, LAB_NS, LAB_VETH.
lab_up() {
  lab_remove_stale
  local s k=0 n
  for s in $(seq 200 249); do
    ip -o -4 addr show | grep -q "198\.18\.$s\." || { LAB_SUBNET=$s; break; }
  done
  [ -n "${LAB_SUBNET:-}" ] || { echo "$0: no free 198.18.x.0/24" >&2; exit 2; }
  trap 'cleanup; lab_down' EXIT
  ip link add "$LAB_BRIDGE" type bridge
  ip addr add "198.18.$LAB_SUBNET.254/24" dev "$LAB_BRIDGE"
  ip link set "$LAB_BRIDGE" up
  for n in "$@"; do
    k=$((k + 1))
    LAB_NODES+=("$n")
    LAB_NS[$n]="$LAB_ID-$n"
    LAB_VETH[$n]="${LAB_ID}v$k"
    LAB_IP[$n]="198.18.$LAB_SUBNET.$k"
    ip netns add "${LAB_NS[$n]}"
    ip link add "${LAB_VETH[$n]}" type veth peer name eth0 netns "${LAB_NS[$n]}"
    ip link set "${LAB_VETH[$n]}" master "$LAB_BRIDGE" up
    ip -n "${LAB_NS[$n]}" link set lo up
    ip -n "${LAB_NS[$n]}" addr add "${LAB_IP[$n]}/24" dev eth0
    ip -n "${LAB_NS[$n]}" link set eth0 up
  done
}

# Kills what runs in the namespaces and removes the lab.
lab_down() {
  local n p
  for n in "${LAB_NODES[@]}"; do
    for p in $(ip netns pids "${LAB_NS[$n]}" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip link del "${LAB_VETH[$n]}" 2>/dev/null || true
    ip netns del "${LAB_NS[$n]}" 2>/dev/null || true
  done
  ip link del "$LAB_BRIDGE" 2>/dev/null || true
}

# lab_routes add|del "n3" "n1 n2": prints the `ip` commands that add (cut) or remove (heal)
# blackhole routes between every node of the first list and every node of the second, both
# directions (the root namespace still reaches everyone); run them with `sh -c`.
lab_routes() {
  local a b
  for a in $2; do
    for b in $3; do
      echo "ip -n ${LAB_NS[$a]} route $1 blackhole ${LAB_IP[$b]}/32;"
      echo "ip -n ${LAB_NS[$b]} route $1 blackhole ${LAB_IP[$a]}/32;"
    done
  done
}

# lab_degrade loss 5% delay 50ms: tc netem on the way into every node (a packet between two
# nodes passes it once). Fails (status 1, reason on stderr) when the kernel has no netem.
lab_degrade() {
  local n
  for n in "${LAB_NODES[@]}"; do
    tc qdisc replace dev "${LAB_VETH[$n]}" root netem "$@" || return 1
  done
}

# lab_drop 5: drops that percentage of the packets arriving at every node (iptables
# statistic match in each namespace): loss without delay, for kernels without sch_netem.
lab_drop() {
  local p n
  p=$(python3 -c "print($1 / 100)")
  for n in "${LAB_NODES[@]}"; do
    ip netns exec "${LAB_NS[$n]}" iptables -A INPUT -m statistic --mode random --probability "$p" -j DROP || return 1
  done
}

# Writes a config for the lab's nodes to $1: each node on its own address with fixed ports
# 7000 (cluster), 8080 (HTTP), 9090 (gRPC), every node a seed, one data directory (one
# SQLite file), the bench cookie, token and signing key, mutual TLS (PLAINTEXT=1: plaintext).
# AUTH_EXTRA and EXTRA as in write_config (lib.sh).
lab_config() {
  local file=$1 n
  {
    echo "data_dir = \"$WORK/data\""
    echo '[cluster]'; echo 'cookie = "bench-cookie-0123456789"'
    echo "seeds = [$(for n in "${LAB_NODES[@]}"; do printf '"%s:7000",' "${LAB_IP[$n]}"; done | sed 's/,$//')]"
    if [ -n "${PLAINTEXT:-}" ]; then
      echo 'insecure_plaintext = true'
    else
      certs_for "${LAB_NODES[@]}"; echo "[cluster.tls]"; echo "ca = \"$WORK/certs/ca.pem\""
    fi
    echo '[admin]'; echo "token = \"$TOKEN\""
    echo '[auth]'; echo 'keys = ["bench:bench-signing-key-0123456789abcdef0123"]'
    [ -z "${AUTH_EXTRA:-}" ] || echo "$AUTH_EXTRA"
    echo '[log]'; echo 'level = "warn"'
    case "${EXTRA:-}" in *'[limits]'*) ;; *) echo "$BENCH_LIMITS" ;; esac
    case "${EXTRA:-}" in *'[quotas]'*) ;; *) echo "$BENCH_QUOTAS" ;; esac
    [ -z "${EXTRA:-}" ] || echo "$EXTRA"
    for n in "${LAB_NODES[@]}"; do
      echo '[[nodes]]'; echo "name = \"$n\""
      echo "cluster_addr = \"${LAB_IP[$n]}:7000\""
      echo "http_addr = \"${LAB_IP[$n]}:8080\""
      echo "grpc_addr = \"${LAB_IP[$n]}:9090\""
    done
  } > "$file"
}

# Starts every lab node in its namespace from config $1 (logs in $WORK/<node>.log) and waits
# up to 30 s until each sees all of them up.
lab_start() {
  local n
  for n in "${LAB_NODES[@]}"; do
    ip netns exec "${LAB_NS[$n]}" "$BIN" node --config "$1" --name "$n" > "$WORK/$n.log" 2>&1 &
    PIDS+=($!)
    disown $!  # killed on exit (lib.sh): no "Killed" job notices
  done
  for _ in $(seq 300); do
    local ok=1
    for n in "${LAB_NODES[@]}"; do
      [ "$(curl -s -m 1 "http://${LAB_IP[$n]}:8080/cluster" | grep -o '"state":"up"' | wc -l)" = "${#LAB_NODES[@]}" ] || ok=
    done
    [ -n "$ok" ] && return 0
    sleep 0.1
  done
  echo "$0: the lab cluster did not form in 30 s; logs in $WORK (KEEP_WORK=1 keeps them)" >&2
  exit 1
}
