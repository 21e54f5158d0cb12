#!/usr/bin/env bash
# Benchmark of passive capture beside the UDP listener (not a timed test), in one run: a network
# namespace plays the NAS at the far end of a veth pair; `ebok-bench capture` inside it offers
# signed Accounting-Requests at increasing rates (answers never read), and ebok's
# `ebok_radius_packets_total` says how many were accepted. Two phases, one ebok each:
#   udp      ebok's listener bound on the near end's address (replies go back, unread);
#   capture  ebok capturing on the near end, the requests addressed to a host that does not
#            exist (a static neighbour entry gives it a MAC nobody has), so the kernel drops
#            them after the capture socket has seen them.
# For each phase: the highest offered rate with loss ≤ LOSS, and the first one above it.
# Knobs: RATES ["5000 10000 20000 40000 80000 160000"], STEP_SECONDS [3], LOSS [0.001].
# Needs root (ip netns, a packet socket), cargo, curl.
set -euo pipefail
cd "$(dirname "$0")/.."

RATES=${RATES:-"5000 10000 20000 40000 80000 160000"}
STEP_SECONDS=${STEP_SECONDS:-3}
LOSS=${LOSS:-0.001}
SECRET=bench-secret-5c1d
NS=ebok-bench-capture-$$
NEAR=ebkb$$a
FAR=ebkb$$b
NET=100.127.250

tmp=$(mktemp -d /tmp/ebok-bench-capture.XXXXXX)
server_pid=""

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

cleanup() {
    stop_server
    ip netns del "$NS" 2>/dev/null || true
    ip link del "$NEAR" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== build"
cargo build --release --bin ebok --bin ebok-bench
BENCH=$(realpath "${CARGO_TARGET_DIR:-target}/release/ebok-bench")
EBOK=$(realpath "${CARGO_TARGET_DIR:-target}/release/ebok")

echo "== namespace $NS, veth $NEAR (here) / $FAR (NAS side)"
ip netns add "$NS"
ip link add "$NEAR" type veth peer name "$FAR" netns "$NS"
ip addr add "$NET.1/24" dev "$NEAR"
ip link set "$NEAR" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip link set "$FAR" up
ip netns exec "$NS" ip addr add "$NET.2/24" dev "$FAR"
ip netns exec "$NS" ip neigh add "$NET.3" lladdr 02:eb:0c:00:00:01 dev "$FAR" nud permanent

accepted() { # sum of ebok_radius_packets_total over its labels
    curl -s "http://127.0.0.1:$1/metrics" |
        awk '/^ebok_radius_packets_total/ { s += $NF } END { printf "%d\n", s }'
}

run_phase() { # name
    local name=$1 dir=$tmp/$1 mport wport listen capture target
    mport=$("$BENCH" free-port)
    wport=$("$BENCH" free-port)
    mkdir -p "$dir"
    if [ "$name" = udp ]; then
        listen="\"$NET.1:1813\""
        capture=""
        target="$NET.1:1813"
    else
        listen="\"127.0.0.1:$("$BENCH" free-port)\""
        capture="interface = \"$NEAR\""
        target="$NET.3:1813"
    fi
    cat >"$dir/ebok.toml" <<EOF
[radius]
listen = [$listen]

[capture]
$capture

[[nas]]
name = "bench-nas"
prefixes = ["$NET.2/32"]
secret = "$SECRET"

[metrics]
listen = "127.0.0.1:$mport"

[web]
listen = "127.0.0.1:$wport"

[state]
dir = "$dir/state"

[database]
url = "sqlite://$dir/ebok.sqlite"

[log]
level = "warn"
EOF
    "$EBOK" --config "$dir/ebok.toml" run 2>"$dir/ebok.log" &
    server_pid=$!
    for _ in $(seq 300); do
        curl -sf "http://127.0.0.1:$mport/metrics" >/dev/null && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$dir/ebok.log"; exit 1; }
        sleep 0.1
    done
    local best=0 best_rate=0 over=""
    for rate in $RATES; do
        local before after line sent recorded prev
        before=$(accepted "$mport")
        line=$(ip netns exec "$NS" "$BENCH" capture --target "$target" --secret "$SECRET" \
            --rate "$rate" --seconds "$STEP_SECONDS" --name "$name")
        sent=$(echo "$line" | sed -n 's/.* sent=\([0-9]*\).*/\1/p')
        # Wait until the count stops moving (the pipeline drained).
        after=$(accepted "$mport")
        for _ in $(seq 60); do
            sleep 0.5
            prev=$after
            after=$(accepted "$mport")
            [ "$after" = "$prev" ] && break
        done
        recorded=$((after - before))
        local achieved
        achieved=$(echo "$line" | sed -n 's/.* achieved=\([0-9]*\).*/\1/p')
        echo "  $name offered $rate/s (achieved $achieved/s): sent $sent, accepted $recorded"
        if awk -v s="$sent" -v r="$recorded" -v l="$LOSS" 'BEGIN { exit !((s - r) <= s * l) }'; then
            best=$achieved
            best_rate=$rate
        else
            over=$rate
            break
        fi
    done
    stop_server
    echo "RESULT $name loss_free_rate=$best_rate loss_free_achieved=$best first_lossy_rate=${over:-none}"
    eval "${name}_best=$best"
}

echo "== udp listener"
run_phase udp
echo "== capture"
run_phase capture
echo "== summary (nproc $(nproc))"
echo "UDP listener: $udp_best packets/s accepted without loss"
echo "capture:      $capture_best packets/s accepted without loss"
awk -v c="$capture_best" -v u="$udp_best" 'BEGIN { if (u > 0) printf "ratio capture/udp: %.2f\n", c / u }'
