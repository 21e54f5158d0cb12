#!/usr/bin/env bash
# Benchmark of the panel under a burst of logins (not a timed test): `ebok run --demo` from
# the release build, then `ebok-bench login-burst` keeps LOGINS logins going at once for
# BURST_SECONDS, each from a loopback address and with a login of its own so that every one
# reaches the argon2 check (the per-IP and per-account limits do not stop them), while one
# client reads /faq.
# Reported: the logins' answers by status (401 wrong password, 503 busy), the server's peak
# memory, and /faq latency p50/p99 alone (the reference) and during the burst.
# Knobs: LOGINS [500] clients at once, BURST_SECONDS [10]. Only loopback traffic.
set -euo pipefail
cd "$(dirname "$0")/.."
LOGINS=${LOGINS:-500}
SECONDS_=${BURST_SECONDS:-10}
tmp=$(mktemp -d /tmp/ebok-login-burst.XXXXXX)
pid=""
cleanup() {
    [ -n "$pid" ] && { kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
    rm -rf "$tmp"
}
trap cleanup EXIT
cargo build --release --bin ebok --bin ebok-bench
BENCH=${CARGO_TARGET_DIR:-target}/release/ebok-bench
EBOK=${CARGO_TARGET_DIR:-target}/release/ebok
rport=$("$BENCH" free-port)
mport=$("$BENCH" free-port)
wport=$("$BENCH" free-port)
echo "machine: $(nproc) cores"
"$EBOK" run --demo --state-dir "$tmp/state" --database-url "sqlite://$tmp/ebok.sqlite" \
    --radius-listen "127.0.0.1:$rport" --metrics-listen "127.0.0.1:$mport" \
    --web-listen "127.0.0.1:$wport" --log-level warn >"$tmp/ebok.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
    curl -s -o /dev/null "http://127.0.0.1:$wport/faq" && break
    sleep 0.1
done
"$BENCH" login-burst --web "127.0.0.1:$wport" --logins "$LOGINS" --seconds "$SECONDS_" --server-pid "$pid"
echo "password checks refused as busy: $(curl -s "http://127.0.0.1:$mport/metrics" | awk '/^ebok_panel_password_checks_refused_total / { print $2 }')"
