#!/usr/bin/env bash
# Benchmark of RADIUS accounting against FreeRADIUS (not a timed test), in one go:
#   a) ebok with the embedded store, b) ebok with the map shared through the log in Redis,
#   c) FreeRADIUS 3.2 (Debian package, accounting to its detail file only), c') FreeRADIUS
#   keeping an IP-keyed map in Redis with its shipped `rediswho` module — each under the same
#   `ebok-bench load`, with the server's CPU time read from /proc (redis-server's counted
#   for b and c'); d) Redis memory per live session and embedded lookup latency at
#   1,000,000 sessions; e) a summary table and the ratios.
#
# Only loopback traffic. Environment knobs (defaults in brackets):
#   SESSIONS [400000] sessions per load run (Start + INTERIMS Interim-Updates + Stop each)
#   WINDOW [256] outstanding requests; DURATION [30] seconds per load run; INTERIMS [3]
#   SETTLE [30] seconds to wait after an ebok run for its spool to drain (CPU counted too)
#   SKIP_DURABLE=1 skips the extra ebok runs with radius.ack_after = "store"
#   MEM_SESSIONS [1000000], LOOKUPS [200000]; SKIP_MEMORY=1 skips d)
#   REDIS_URL [redis://127.0.0.1:6379/]; SKIP_EBOK=1 skips a) and b), SKIP_REDIS=1 b),
#   SKIP_FREERADIUS=1 c) and c'), SKIP_REDISWHO=1 c')
#   CLUSTER=1 also runs b) on a 3-node Redis Cluster the script starts on loopback ports
#   (its three redis-servers' CPU counted), named ebok-redis-cluster
#   READERS [0] also runs b) with that many more ebok instances on the same log taking no
#   RADIUS traffic (each reads every entry), named ebok-redis-rN: redis-server's CPU per
#   event with them, and theirs
#   EXTRA_WINDOW [1024] a second window for the journal-mode ebok runs and FreeRADIUS (runs
#   named …-wN; at 256 outstanding ebok is latency-bound, not CPU-bound); 0 skips them
# Needs: cargo, redis-server running at REDIS_URL, redis-cli; installs `freeradius` with
# apt-get when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-400000}
WINDOW=${WINDOW:-256}
DURATION=${DURATION:-30}
INTERIMS=${INTERIMS:-3}
MEM_SESSIONS=${MEM_SESSIONS:-1000000}
LOOKUPS=${LOOKUPS:-200000}
SKIP_MEMORY=${SKIP_MEMORY:-0}
SKIP_REDIS=${SKIP_REDIS:-0}
SKIP_FREERADIUS=${SKIP_FREERADIUS:-0}
SKIP_REDISWHO=${SKIP_REDISWHO:-0}
CLUSTER=${CLUSTER:-0}
READERS=${READERS:-0}
cluster_pids=()
cluster_nodes=""
SKIP_EBOK=${SKIP_EBOK:-0}
SETTLE=${SETTLE:-30}
SKIP_DURABLE=${SKIP_DURABLE:-0}
EXTRA_WINDOW=${EXTRA_WINDOW:-1024}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/}
SECRET=bench-secret-7f3a

tmp=$(mktemp -d /tmp/ebok-bench.XXXXXX)
results=$tmp/results.txt
: >"$results"
server_pid=""
redis_prefix=""

field() { # name key → value from that run's RESULT line
    grep "^RESULT name=$1 " "$results" | tr ' ' '\n' | sed -n "s/^$2=//p" | tail -n 1
}

stop_server() {
    # Stop the server this script started (by its PID): TERM, then KILL after 15 s.
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "  server $pid did not stop in 15 s after SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

clean_redis_prefix() {
    local prefix=$1
    [ -n "$prefix" ] || return 0
    redis-cli -u "$REDIS_URL" --scan --pattern "${prefix}*" |
        xargs -r -n 1000 redis-cli -u "$REDIS_URL" unlink >/dev/null || true
}

cleanup() {
    stop_server "$server_pid"
    for p in "${cluster_pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    clean_redis_prefix "$redis_prefix"
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== build"
cargo build --release --bin ebok --bin ebok-bench
BENCH=${CARGO_TARGET_DIR:-target}/release/ebok-bench
EBOK=${CARGO_TARGET_DIR:-target}/release/ebok
started=$(date +%s)

load() { # name port pid [extra ebok-bench load flags]
    local name=$1 port=$2 pid=$3
    shift 3
    local cmd=("$BENCH" load --target "127.0.0.1:$port" --secret "$SECRET" --sessions "$SESSIONS"
        --window "$WINDOW" --duration "$DURATION" --interims "$INTERIMS" --server-pid "$pid"
        --name "$name" "$@")
    echo "  ${cmd[*]}"
    "${cmd[@]}" | tee -a "$results"
}

wait_udp_port() { # port pid: until something listens on 127.0.0.1:port (max 30 s)
    for _ in $(seq 300); do
        if ss -Hlun "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

redis_pid() { # PID of the redis-server listening on REDIS_URL's port, if it is local
    local rport
    rport=$(echo "$REDIS_URL" | sed -n 's|^redis://[^/]*:\([0-9][0-9]*\).*|\1|p')
    ss -Hltnp "sport = :${rport:-6379}" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2
}

start_cluster() { # three cluster-enabled redis-servers on free ports, joined into one Cluster
    local ports=() p
    for i in 1 2 3; do
        # The cluster bus listens 10000 above the port, so the port stays below 55536.
        p=$("$BENCH" free-port)
        while [ "$p" -gt 55000 ]; do p=$("$BENCH" free-port); done
        ports+=("$p")
        mkdir -p "$tmp/cluster/$p"
        redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes --save "" \
            --appendonly no --dir "$tmp/cluster/$p" --cluster-config-file "$tmp/cluster/$p/nodes.conf" \
            >"$tmp/cluster/$p/log" 2>&1 &
        cluster_pids+=($!)
    done
    for p in "${ports[@]}"; do
        for _ in $(seq 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
    done
    redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 0 \
        --cluster-yes >/dev/null
    for _ in $(seq 100); do
        redis-cli -p "${ports[0]}" cluster info | grep -q cluster_state:ok && break
        sleep 0.1
    done
    cluster_nodes=$(printf '"redis://127.0.0.1:%s/", ' "${ports[@]}")
    cluster_nodes="[${cluster_nodes%, }]"
    echo "== Redis Cluster of 3 on ports ${ports[*]} (PIDs ${cluster_pids[*]})"
}

write_config() { # dir store ack_after on_cluster port mport wport: dir/ebok.toml
    local dir=$1 store=$2 ack_after=$3 on_cluster=$4 port=$5 mport=$6 wport=$7
    mkdir -p "$dir"
    cat >"$dir/ebok.toml" <<EOF
[radius]
listen = ["127.0.0.1:$port"]
ack_after = "$ack_after"

[[nas]]
name = "bench-nas"
prefixes = ["127.0.0.1/32"]
secret = "$SECRET"
vendor = "mikrotik"

[sessions]
store = "$store"
redis_url = "$REDIS_URL"
$(if [ -n "$on_cluster" ]; then echo "redis_cluster = $cluster_nodes"; fi)
redis_prefix = "$redis_prefix"

[database]
url = "sqlite://$dir/history.sqlite"

[state]
dir = "$dir/state"

[metrics]
listen = "127.0.0.1:$mport"

[web]
listen = "127.0.0.1:$wport"

[log]
level = "warn"
EOF
}

wait_metrics() { # port: until /metrics answers (ebok serves once its stores are open)
    for _ in $(seq 300); do
        curl -fs "http://127.0.0.1:$1/metrics" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    return 1
}

cpu_ticks() { # pid…: their user + system CPU in clock ticks
    local sum=0 pid
    for pid in "$@"; do
        sum=$((sum + $(awk '{print $14 + $15}' "/proc/$pid/stat")))
    done
    echo "$sum"
}

run_ebok() { # name store [radius.ack_after] [cluster] [readers]
    local name=$1 store=$2 ack_after=${3:-journal} on_cluster=${4:-} readers=${5:-0}
    local dir=$tmp/$1 port mport wport reader_pids=() i also_note=""
    port=$("$BENCH" free-port)
    mport=$("$BENCH" free-port)
    wport=$("$BENCH" free-port)
    redis_prefix="ebok-bench-$$-$name:"
    write_config "$dir" "$store" "$ack_after" "$on_cluster" "$port" "$mport" "$wport"
    # Further instances on the same log that take no RADIUS traffic: each reads every entry.
    for i in $(seq "$readers"); do
        local rp rm rw
        rp=$("$BENCH" free-port)
        rm=$("$BENCH" free-port)
        rw=$("$BENCH" free-port)
        write_config "$dir/reader-$i" "$store" "$ack_after" "$on_cluster" "$rp" "$rm" "$rw"
        "$EBOK" run --config "$dir/reader-$i/ebok.toml" >"$dir/reader-$i/ebok.log" 2>&1 &
        reader_pids+=($!)
        wait_metrics "$rm" || { cat "$dir/reader-$i/ebok.log" >&2; exit 1; }
    done
    if [ "$readers" -gt 0 ]; then also_note=", $readers more instance(s) reading the log"; fi
    echo "== $name: $EBOK run --config $dir/ebok.toml (UDP 127.0.0.1:$port)$also_note"
    "$EBOK" run --config "$dir/ebok.toml" >"$dir/ebok.log" 2>&1 &
    server_pid=$!
    if ! wait_udp_port "$port" "$server_pid"; then
        cat "$dir/ebok.log" >&2
        echo "ebok did not start" >&2
        exit 1
    fi
    # The listeners are bound before the stores open; /metrics answers once ebok serves.
    wait_metrics "$mport" || true
    local also=()
    if [ -n "$on_cluster" ]; then
        # All three nodes work for ebok: their CPU counts as the server's.
        for p in "${cluster_pids[@]}"; do also+=(--also-pid "$p"); done
    elif [ "$store" = redis ]; then
        # Redis works for ebok here: its CPU counts as the server's.
        local rpid
        rpid=$(redis_pid)
        if [ -n "$rpid" ]; then also=(--also-pid "$rpid"); fi
    fi
    local readers_before=0
    if [ "$readers" -gt 0 ]; then readers_before=$(cpu_ticks "${reader_pids[@]}"); fi
    if ! load "$name" "$port" "$server_pid" --metrics "http://127.0.0.1:$mport/metrics" \
        --settle "$SETTLE" "${also[@]}"; then
        echo "  the load run failed; ebok's log:" >&2
        tail -n 20 "$dir/ebok.log" >&2
        exit 1
    fi
    if [ "$readers" -gt 0 ]; then
        local ticks answered per
        ticks=$(($(cpu_ticks "${reader_pids[@]}") - readers_before))
        answered=$(field "$name" answered)
        per=$(awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" -v n="$answered" -v r="$readers" \
            'BEGIN { printf "%.1f", t / hz * 1e6 / n / r }')
        echo "  $readers reading instance(s): $per µs CPU per event each"
        echo "RESULT name=$name-readers readers=$readers reader_us_per_event=$per" >>"$results"
        for i in "${reader_pids[@]}"; do stop_server "$i"; done
    fi
    stop_server "$server_pid"
    server_pid=""
    if [ -s "$dir/ebok.log" ]; then
        echo "  ebok log (last lines):"
        tail -n 5 "$dir/ebok.log" | sed 's/^/    /'
    fi
    if [ "$store" = redis ]; then
        clean_redis_prefix "$redis_prefix"
    fi
    redis_prefix=""
}

run_freeradius() { # [name] [accounting module: detail or rediswho]
    local name=${1:-freeradius} module=${2:-detail}
    if ! command -v freeradius >/dev/null || { [ "$module" = rediswho ] &&
        ! [ -e /usr/lib/freeradius/rlm_rediswho.so ]; }; then
        echo "== installing freeradius freeradius-redis"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq freeradius freeradius-redis >/dev/null
    fi
    local rdb=$tmp/$name/raddb port
    port=$("$BENCH" free-port)
    mkdir -p "$tmp/$name/fr-log" "$tmp/$name/fr-run"
    cp -r /etc/freeradius/3.0 "$rdb"
    # Run as root with logs, pid file and the detail files in the temp dir.
    sed -i -e "s|^logdir = .*|logdir = $tmp/$name/fr-log|" \
        -e "s|^run_dir = .*|run_dir = $tmp/$name/fr-run|" \
        -e 's/^\(\s*\)\(user\|group\) = /\1#\2 = /' "$rdb/radiusd.conf"
    cat >"$rdb/clients.conf" <<EOF
client bench {
	ipaddr = 127.0.0.1
	secret = $SECRET
}
EOF
    # The stock default site with one accounting listener on our port (SO_RCVBUF asked as
    # large as ebok's radius.recv_buffer default, so neither loses datagrams to a small
    # socket buffer) and an accounting section that writes the detail file only (no
    # unix/radutmp/sql/exec), or that keeps the IP map in Redis through rediswho.
    rm -f "$rdb"/sites-enabled/*
    local also=()
    if [ "$module" = rediswho ]; then
        local rport rpid
        rport=$(echo "$REDIS_URL" | sed -n 's|^redis://[^/]*:\([0-9][0-9]*\).*|\1|p')
        redis_prefix="fr-bench-$$-$name:"
        sed -i "s/^\s*port = .*/\tport = ${rport:-6379}/" "$rdb/mods-available/redis"
        ln -sf ../mods-available/redis "$rdb/mods-enabled/redis"
        # The map keyed by the line's IP: the newest event of the session holding it.
        local key="${redis_prefix}%{Framed-IP-Address}"
        local value="%l,%{Acct-Session-Id},%{NAS-IP-Address},%{User-Name},%{%{Acct-Input-Octets}:-0},%{%{Acct-Output-Octets}:-0}"
        {
            echo "rediswho {"
            echo "	trim_count = 0"
            echo "	expire_time = 660"
            for status in Start Interim-Update; do
                echo "	$status {"
                echo "		insert = \"LPUSH $key $value\""
                echo "		trim = \"LTRIM $key 0 \${..trim_count}\""
                echo "		expire = \"EXPIRE $key \${..expire_time}\""
                echo "	}"
            done
            echo "	Stop {"
            echo "		insert = \"DEL $key\""
            echo "		trim = \"DEL $key\""
            echo "		expire = \"DEL $key\""
            echo "	}"
            echo "}"
        } >"$rdb/mods-enabled/rediswho"
        rpid=$(redis_pid)
        if [ -n "$rpid" ]; then also=(--also-pid "$rpid"); fi
    fi
    awk -v port="$port" -v module="$module" '
        /^server default \{/ { print; print "listen {\n\ttype = acct\n\tipaddr = 127.0.0.1\n\tport = " port "\n\trecv_buff = 8388608\n}"; next }
        /^listen \{/ { skip = 1; next }
        /^accounting \{/ { print "accounting {\n\t" module "\n}"; skip = 1; next }
        skip && /^\}/ { skip = 0; next }
        !skip { print }
    ' "$rdb/sites-available/default" >"$rdb/sites-enabled/default"
    freeradius -C -d "$rdb" >"$tmp/$name/fr-check.log" 2>&1 || {
        cat "$tmp/$name/fr-check.log" >&2
        echo "freeradius -C failed" >&2
        exit 1
    }
    echo "== freeradius: freeradius -f -d $rdb (UDP 127.0.0.1:$port, $(freeradius -v | head -n 1))"
    freeradius -f -d "$rdb" >"$tmp/$name/fr-stdout.log" 2>&1 &
    server_pid=$!
    if ! wait_udp_port "$port" "$server_pid"; then
        cat "$tmp/$name/fr-stdout.log" "$tmp/$name/fr-log/radius.log" >&2 || true
        echo "freeradius did not start" >&2
        exit 1
    fi
    load "$name" "$port" "$server_pid" "${also[@]}"
    stop_server "$server_pid"
    server_pid=""
    if [ "$module" = detail ]; then
        echo "  detail files: $(find "$tmp/$name/fr-log/radacct" -type f | wc -l), $(du -sh "$tmp/$name/fr-log/radacct" | cut -f1)"
    else
        clean_redis_prefix "$redis_prefix"
        redis_prefix=""
    fi
}

if [ "$SKIP_EBOK" != 1 ]; then
    run_ebok ebok-embedded embedded
    if [ "$SKIP_REDIS" != 1 ]; then run_ebok ebok-redis redis; fi
    if [ "$SKIP_REDIS" != 1 ] && [ "$READERS" -gt 0 ]; then
        run_ebok "ebok-redis-r$READERS" redis journal "" "$READERS"
    fi
    if [ "$CLUSTER" = 1 ]; then
        start_cluster
        run_ebok ebok-redis-cluster redis journal cluster
    fi
    # The same with ack_after = "store": every answer waits for the live store and history
    # (the journal only when they fail).
    if [ "$SKIP_DURABLE" != 1 ]; then
        run_ebok ebok-embedded-store embedded store
        if [ "$SKIP_REDIS" != 1 ]; then run_ebok ebok-redis-store redis store; fi
    fi
fi
if [ "$SKIP_FREERADIUS" != 1 ]; then
    run_freeradius
    if [ "$SKIP_REDISWHO" != 1 ]; then run_freeradius freeradius-rediswho rediswho; fi
fi
wide=""
if [ "$EXTRA_WINDOW" != 0 ] && [ "$EXTRA_WINDOW" != "$WINDOW" ]; then
    # The journal-mode runs and FreeRADIUS again with more requests outstanding.
    wide="-w$EXTRA_WINDOW"
    narrow=$WINDOW
    WINDOW=$EXTRA_WINDOW
    if [ "$SKIP_EBOK" != 1 ]; then
        run_ebok "ebok-embedded$wide" embedded
        if [ "$SKIP_REDIS" != 1 ]; then run_ebok "ebok-redis$wide" redis; fi
    fi
    if [ "$SKIP_FREERADIUS" != 1 ]; then run_freeradius "freeradius$wide"; fi
    WINDOW=$narrow
fi
if [ "$SKIP_MEMORY" != 1 ]; then
    echo "== $BENCH redis-memory --url $REDIS_URL --sessions $MEM_SESSIONS"
    "$BENCH" redis-memory --url "$REDIS_URL" --sessions "$MEM_SESSIONS" | tee -a "$results"
    echo "== $BENCH embedded-lookup --sessions $MEM_SESSIONS --lookups $LOOKUPS"
    "$BENCH" embedded-lookup --sessions "$MEM_SESSIONS" --lookups "$LOOKUPS" | tee -a "$results"
fi

# --- summary ---------------------------------------------------------------------------------
echo
echo "== summary ($(nproc) cores, $(uname -r), window $WINDOW${wide:+ (runs …$wide: $EXTRA_WINDOW)}, ${DURATION} s per load run, $((INTERIMS + 2)) events/session)"
printf '%-20s %8s %8s %8s %8s %8s %10s %9s %11s %14s %8s\n' server 'pkts/s' 'p50 µs' 'p99 µs' \
    'max µs' timeouts 'CPU µs/pkt' 'spooled%' 'spool left' '+replay µs/pkt' 'other s'
runs="ebok-embedded ebok-redis ebok-redis-r$READERS ebok-redis-cluster ebok-embedded-store ebok-redis-store"
fr_runs="freeradius freeradius-rediswho"
wide_runs=""
if [ -n "$wide" ]; then wide_runs="ebok-embedded$wide ebok-redis$wide freeradius$wide"; fi
for n in $runs $fr_runs $wide_runs; do
    grep -q "^RESULT name=$n " "$results" || continue
    printf '%-20s %8s %8s %8s %8s %8s %10s %9s %11s %14s %8s\n' "$n" "$(field $n pps)" \
        "$(field $n p50_us)" "$(field $n p99_us)" "$(field $n max_us)" "$(field $n timeouts)" \
        "$(field $n cpu_us_per_pkt)" "$(field $n spooled_pct)" "$(field $n spool_left)" \
        "$(field $n cpu_us_per_pkt_incl_replay)" "$(field $n other_cpu_s)"
done
echo "(other s: CPU seconds used by other processes on the host during the load run; spool left:"
echo " events still waiting in ebok's spool SETTLE s after the run.)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
compare() { # freeradius-run ebok-runs…
    local fr=$1
    shift
    grep -q "^RESULT name=$fr " "$results" || return 0
    local fr_pps fr_cpu n line replay_cpu
    fr_pps=$(field "$fr" pps)
    fr_cpu=$(field "$fr" cpu_us_per_pkt)
    for n in "$@"; do
        grep -q "^RESULT name=$n " "$results" || continue
        line="$n vs $fr: packets/s ebok/FR $(ratio "$(field $n pps)" "$fr_pps"),"
        line+=" CPU per packet FR/ebok $(ratio "$fr_cpu" "$(field $n cpu_us_per_pkt)")"
        replay_cpu=$(field $n cpu_us_per_pkt_incl_replay)
        if [ -n "$replay_cpu" ]; then line+=", counting spool replay ≤ $(ratio "$fr_cpu" "$replay_cpu")"; fi
        echo "$line"
    done
}
# shellcheck disable=SC2086 # word lists
compare freeradius $runs
compare freeradius-rediswho ebok-redis
if [ -n "$wide" ]; then compare "freeradius$wide" "ebok-embedded$wide" "ebok-redis$wide"; fi
for n in ebok-redis "ebok-redis-r$READERS" ebok-redis-cluster freeradius-rediswho ${wide:+"ebok-redis$wide"}; do
    v=$(field "$n" also_us_per_pkt_incl_replay)
    [ -n "$v" ] || v=$(field "$n" also_us_per_pkt)
    if [ -n "$v" ]; then echo "$n: redis-server $v µs CPU per event"; fi
done
if grep -q "^RESULT name=redis-memory " "$results"; then
    echo "redis: $(field redis-memory bytes_per_session) bytes per live session at $(field redis-memory sessions) sessions ($(field redis-memory retention_s) s of 5-minute Interim-Updates in the log, $(field redis-memory streams) streams)"
fi
if grep -q "^RESULT name=ebok-redis-r$READERS-readers " "$results"; then
    echo "ebok-redis-r$READERS: each further instance $(field "ebok-redis-r$READERS-readers" reader_us_per_event) µs CPU per event"
fi
if grep -q "^RESULT name=embedded-lookup " "$results"; then
    echo "embedded lookup at $(field embedded-lookup sessions) sessions: p50 $(field embedded-lookup p50_us) µs, p99 $(field embedded-lookup p99_us) µs, max $(field embedded-lookup max_us) µs"
fi
echo "nproc: $(nproc); total $(($(date +%s) - started)) s after the build"
