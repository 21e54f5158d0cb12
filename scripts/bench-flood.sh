#!/usr/bin/env bash
# Overload benchmark of the accounting journal (a benchmark, not a timed test): ebok with the
# embedded store in journal mode under a flood from `ebok-bench load` (Start, Interim-Update
# and Stop per session, WINDOW requests outstanding, as fast as ebok answers) for DURATION
# seconds, then SETTLE seconds for the replay to catch up. Reported, per run:
#   - answers: packets/s, reply latency p50/p99/max, requests never answered (RESULT line);
#   - the backlog: largest ebok_journal_depth (events) and ebok_journal_bytes seen (sampled every
#     second), journal segments removed, events refused because the journal was full;
#   - what the journal cost the disk: bytes ebok wrote (/proc/PID/io write_bytes: journal,
#     live store and history) against the journal records appended (their count, and their
#     bytes estimated from the largest backlog's bytes per event); copying at compaction
#     shows as the first far above the second;
#   - seconds until the backlog was replayed.
# Runs: `flood` (no cap) and `flood-cap` (radius.journal_max_bytes = CAP_MB MiB), and with
# OLD_EBOK=PATH the same flood against another ebok binary (e.g. an older release) for a
# side-by-side figure.
# Knobs [defaults]: SESSIONS [3000000], INTERIMS [1], WINDOW [1024], DURATION [60],
# SETTLE [600], CAP_MB [256], SKIP_CAP=1, OLD_EBOK.
# Only loopback traffic; needs cargo and ss.
set -euo pipefail
cd "$(dirname "$0")/.."

SESSIONS=${SESSIONS:-3000000}
INTERIMS=${INTERIMS:-1}
WINDOW=${WINDOW:-1024}
DURATION=${DURATION:-60}
SETTLE=${SETTLE:-600}
CAP_MB=${CAP_MB:-256}
SKIP_CAP=${SKIP_CAP:-0}
SECRET=bench-secret-flood

tmp=$(mktemp -d /tmp/ebok-flood.XXXXXX)
server_pid=""
sampler_pid=""
cleanup() {
    [ -n "$sampler_pid" ] && kill "$sampler_pid" 2>/dev/null || true
    if [ -n "$server_pid" ]; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== build"
cargo build --release --bin ebok --bin ebok-bench
BENCH=${CARGO_TARGET_DIR:-target}/release/ebok-bench
EBOK=${CARGO_TARGET_DIR:-target}/release/ebok
echo "machine: $(nproc) cores, $(uname -r)"

metric() { # url name: the sum of a metric family's samples (0 when absent)
    curl -s "$1" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2 } END { printf "%.0f", s + 0 }'
}

write_bytes() { # pid
    awk '/^write_bytes:/ { print $2 }' "/proc/$1/io"
}

flood() { # name ebok-binary [journal_max_bytes]
    local name=$1 bin=$2 cap=${3:-0} dir=$tmp/$1 port mport wport url
    port=$("$BENCH" free-port)
    mport=$("$BENCH" free-port)
    wport=$("$BENCH" free-port)
    url="http://127.0.0.1:$mport/metrics"
    mkdir -p "$dir"
    cat >"$dir/ebok.toml" <<EOF
[radius]
listen = ["127.0.0.1:$port"]
EOF
    if [ "$cap" != 0 ]; then echo "journal_max_bytes = $cap" >>"$dir/ebok.toml"; fi
    cat >>"$dir/ebok.toml" <<EOF

[[nas]]
name = "bench-nas"
prefixes = ["127.0.0.1/32"]
secret = "$SECRET"
vendor = "mikrotik"

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
    echo "== $name: $bin run --config $dir/ebok.toml"
    "$bin" run --config "$dir/ebok.toml" >"$dir/ebok.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 300); do
        ss -Hlun "sport = :$port" 2>/dev/null | grep -q . && break
        sleep 0.1
    done
    local written0
    written0=$(write_bytes "$server_pid")
    # Largest backlog, sampled once a second.
    (
        max_depth=0 max_bytes=0
        while kill -0 "$server_pid" 2>/dev/null; do
            d=$(metric "$url" ebok_journal_depth)
            b=$(metric "$url" ebok_journal_bytes)
            [ "${d:-0}" -gt "$max_depth" ] && max_depth=$d
            [ "${b:-0}" -gt "$max_bytes" ] && max_bytes=$b
            echo "$max_depth $max_bytes" >"$dir/max"
            sleep 1
        done
    ) &
    sampler_pid=$!
    local started
    started=$(date +%s.%N)
    "$BENCH" load --target "127.0.0.1:$port" --secret "$SECRET" --sessions "$SESSIONS" \
        --interims "$INTERIMS" --window "$WINDOW" --duration "$DURATION" \
        --server-pid "$server_pid" --name "$name" | tee "$dir/load.txt"
    local load_end
    load_end=$(date +%s.%N)
    # The replay catches up.
    local drained=""
    for _ in $(seq "$SETTLE"); do
        if [ "$(metric "$url" ebok_journal_depth)" = 0 ]; then
            drained=$(awk -v a="$(date +%s.%N)" -v b="$load_end" 'BEGIN { printf "%.0f", a - b }')
            break
        fi
        sleep 1
    done
    sleep 2
    kill "$sampler_pid" 2>/dev/null || true
    sampler_pid=""
    local written appended records removed refused
    written=$(( $(write_bytes "$server_pid") - written0 ))
    records=$(metric "$url" ebok_journal_appended_total)
    removed=$(metric "$url" ebok_journal_segments_removed_total)
    refused=$(curl -s "$url" | awk '/^ebok_radius_dropped_total\{reason="journal_full"\}/ { print $2 }')
    appended=$(du -sb "$dir/state" | cut -f1)
    read -r max_depth max_bytes <"$dir/max"
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    echo "FLOOD name=$name journal_max_bytes=$cap max_depth=$max_depth max_bytes=$max_bytes" \
        "records_appended=$records segments_removed=${removed:-0} journal_full=${refused:-0}" \
        "ebok_write_bytes=$written state_dir_bytes_at_end=$appended" \
        "journal_bytes_est=$(awk -v r="$records" -v b="$max_bytes" -v d="$max_depth" 'BEGIN { if (d > 0) printf "%.0f", r * b / d; else print "?" }')" \
        "replayed_in_s=${drained:-not within $SETTLE s}" \
        "load_s=$(awk -v a="$load_end" -v b="$started" 'BEGIN { printf "%.1f", a - b }')"
    tail -n 3 "$dir/ebok.log" | sed 's/^/  ebok log: /'
}

flood flood "$EBOK"
if [ "$SKIP_CAP" != 1 ]; then
    flood flood-cap "$EBOK" $((CAP_MB * 1024 * 1024))
fi
if [ -n "${OLD_EBOK:-}" ]; then
    flood flood-old "$OLD_EBOK"
fi
