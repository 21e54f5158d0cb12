#!/usr/bin/env bash
# Benchmark of the panel (not a timed test), in one go:
#   a) a hello-world axum handler (`ebok-bench hello`), the reference, run before each
#   backend and once at the end;
#   b) GET /logowanie (the login page, anonymous), c) GET /panel (the home page of a
#   logged-in subscriber, identified from his own line), d) GET / (anonymous) — each with
#   wrk for DURATION seconds against `ebok run --demo` on SQLite, then b)–d) again on
#   PostgreSQL and with the Redis store; e) Jan gets ten years of monthly invoices
#   and payments (`ebok-bench billing-history`, through ebok::store::billing), then wrk on
#   GET /platnosci (Płatności: his whole ledger, 240 entries, paged) and GET /statystyki as
#   the logged-in Jan on every backend; f) the argon2id cost of one login
#   (`ebok-bench argon2`); g) the time to generate one invoice PDF (`ebok-bench pdf`);
#   h) a table with requests/s, p50, p99, the ratio to a) (the mean of the references just
#   before and after the backend), the server's CPU time per request (/proc) and its ratio
#   to a)'s (the steadier figure when other work shares the machine).
#
# The demo makes 127.0.0.1 Jan Kowalski's live line; the script registers his panel account
# through the real form (CSRF cookie and field, PESEL and contract number), logs in through
# the real form and hands the session cookie to wrk. Only loopback traffic.
#
# Environment knobs (defaults in brackets):
#   DURATION [15] seconds per wrk run; THREADS [2]; CONNECTIONS [64]
#   PAGES [login panel home payments stats] which of the page runs to make on each backend
#     (login = /logowanie, panel = /panel, home = / anonymous, payments = /platnosci,
#     stats = /statystyki; the last three logged in)
#   ARGON2_N [40] verifications timed; PDF_N [50] invoice PDFs timed
#   SKIP_POSTGRES=1, SKIP_REDIS=1 skip those backends; SKIP_BUILD=1 uses the built binaries
#   POSTGRES_URL [postgres://postgres@127.0.0.1:5432] (a fresh database is created and dropped)
#   REDIS_URL [redis://127.0.0.1:6379/] (a unique key prefix, deleted afterwards)
# Needs: cargo, wrk, curl; psql for PostgreSQL; redis-cli for Redis.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15}
THREADS=${THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
ARGON2_N=${ARGON2_N:-40}
PDF_N=${PDF_N:-50}
PAGES=${PAGES:-login panel home payments stats}
SKIP_POSTGRES=${SKIP_POSTGRES:-0}
SKIP_REDIS=${SKIP_REDIS:-0}
SKIP_BUILD=${SKIP_BUILD:-0}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/}
PESEL=44051401359
PASSWORD='Wiosna nad Wisłą 7'

tmp=$(mktemp -d /tmp/ebok-bench-web.XXXXXX)
results=$tmp/results.txt
: >"$results"
hello_pid=""
server_pid=""
pg_db=""
redis_prefix=""

stop_pid() { # TERM the process this script started, KILL after 15 s
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 150); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "  process $pid did not stop in 15 s after SIGTERM; killing it" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

drop_pg() {
    [ -n "$pg_db" ] || return 0
    psql "$POSTGRES_URL/postgres" -q -c "DROP DATABASE IF EXISTS \"$pg_db\" WITH (FORCE)" \
        >/dev/null 2>&1 || true
    pg_db=""
}

clean_redis_prefix() {
    [ -n "$redis_prefix" ] || return 0
    redis-cli -u "$REDIS_URL" --scan --pattern "${redis_prefix}*" |
        xargs -r -n 1000 redis-cli -u "$REDIS_URL" unlink >/dev/null || true
    redis_prefix=""
}

cleanup() {
    stop_pid "$server_pid"
    stop_pid "$hello_pid"
    drop_pg
    clean_redis_prefix
    rm -rf "$tmp"
}
trap cleanup EXIT

if [ "$SKIP_BUILD" != 1 ]; then
    echo "== build"
    cargo build --release --bins
fi
bin=${CARGO_TARGET_DIR:-target}/release
BENCH=$bin/ebok-bench
EBOK=$bin/ebok

wait_http() { # url pid: until the URL answers 200 (max 60 s)
    for _ in $(seq 600); do
        if curl -sf -o /dev/null "$1"; then return 0; fi
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

to_ms() { # wrk latency ("812.00us", "1.23ms", "1.02s") in ms
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n }'
}

cpu_ticks() { # utime + stime of a process, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}

# wrk NAME PID URL [extra wrk args]: one run against the server PID; appends
# "NAME rps p50 p99 cpu errors" to the results (cpu: the server's CPU time per request, in
# µs, from /proc: steadier than requests/s when other work shares the cores).
bench() {
    local name=$1 pid=$2 url=$3 out
    shift 3
    out=$tmp/wrk-$name.txt
    local cmd=(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency "$@" "$url")
    echo "  $name: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency $url"
    local t0 t1
    t0=$(cpu_ticks "$pid")
    "${cmd[@]}" >"$out"
    t1=$(cpu_ticks "$pid")
    local rps p50 p99 cpu bad
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    cpu=$(awk -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
        '/requests in/ {printf "%.1f", t / hz * 1e6 / $1}' "$out")
    bad=$(awk '/Non-2xx or 3xx/ {n = $NF} /Socket errors/ {s = $0} END {print (n ? n : 0) (s ? " (" s ")" : "")}' "$out")
    printf '    %.0f req/s, p50 %s ms, p99 %s ms, %s µs CPU/request, non-2xx/3xx %s\n' \
        "$rps" "$p50" "$p99" "$cpu" "$bad"
    echo "$name $rps $p50 $p99 $cpu $bad" >>"$results"
}

# reference NAME: the hello-world run (before each backend and at the end: the machine is
# shared, so each page is compared with the references just before and after its backend).
reference() {
    "$BENCH" hello --listen "127.0.0.1:$hport" 2>"$tmp/hello.log" &
    hello_pid=$!
    wait_http "http://127.0.0.1:$hport/" "$hello_pid"
    echo "== reference"
    bench "$1" "$hello_pid" "http://127.0.0.1:$hport/"
    stop_pid "$hello_pid"
    hello_pid=""
}

# Register Jan Kowalski's panel account through the form and log in; prints the Cookie
# header a browser would send from then on (CSRF seed and session). Args: base URL,
# database URL.
login_jan() {
    local base=$1 dburl=$2 jar=$tmp/jar.txt contract csrf login code
    rm -f "$jar"
    contract=$("$BENCH" demo-contract --database-url "$dburl")
    login="jan.bench.$$"
    csrf=$(curl -sf -c "$jar" -b "$jar" "$base/rejestracja" |
        sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -n 1)
    [ -n "$csrf" ] || { echo "no CSRF field on /rejestracja" >&2; return 1; }
    code=$(curl -s -o "$tmp/register.html" -w '%{http_code}' -c "$jar" -b "$jar" \
        --data-urlencode "login=$login" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "password2=$PASSWORD" \
        --data-urlencode "email=jan.bench.$$@example.pl" --data-urlencode "id=$PESEL" \
        --data-urlencode "contract=$contract" --data-urlencode "csrf=$csrf" \
        "$base/rejestracja")
    [ "$code" = 303 ] || { echo "registration answered $code (contract $contract)" >&2; return 1; }
    # Log in afresh through the login form, as a returning subscriber would.
    rm -f "$jar"
    csrf=$(curl -sf -c "$jar" -b "$jar" "$base/logowanie" |
        sed -n 's/.*name="csrf" value="\([0-9a-f]*\)".*/\1/p' | head -n 1)
    code=$(curl -s -o /dev/null -w '%{http_code}' -c "$jar" -b "$jar" \
        --data-urlencode "login=$login" --data-urlencode "password=$PASSWORD" \
        --data-urlencode "csrf=$csrf" "$base/logowanie")
    [ "$code" = 303 ] || { echo "login answered $code" >&2; return 1; }
    awk '$6 == "ebok_csrf" {c = $7} $6 == "ebok_session" {s = $7}
        END {if (s == "") exit 1; printf "ebok_csrf=%s; ebok_session=%s\n", c, s}' "$jar"
}

check_panel() { # base cookies: /panel must be Jan's page (200, his name), not a redirect
    local code
    code=$(curl -s -o "$tmp/panel.html" -w '%{http_code}' -H "Cookie: $2" "$1/panel")
    if [ "$code" != 200 ] || ! grep -q 'Kowalski' "$tmp/panel.html"; then
        echo "/panel answered $code without Jan Kowalski's data" >&2
        return 1
    fi
}

check_page() { # base cookies path text: a logged-in page (200, with TEXT), not a redirect
    local code
    code=$(curl -s -o "$tmp/page.html" -w '%{http_code}' -H "Cookie: $2" "$1$3")
    if [ "$code" != 200 ] || ! grep -q "$4" "$tmp/page.html"; then
        echo "$3 answered $code without \"$4\"" >&2
        return 1
    fi
}

wants() { case " $PAGES " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# run_panel LABEL DATABASE_URL [store]: start ebok --demo, log in, run b)–d).
run_panel() {
    local label=$1 dburl=$2 store=${3:-embedded} dir=$tmp/$1 port mport rport base cookie
    port=$("$BENCH" free-port)
    mport=$("$BENCH" free-port)
    rport=$("$BENCH" free-port)
    mkdir -p "$dir"
    local env=(EBOK_STATE__DIR="$dir" EBOK_DATABASE__URL="$dburl"
        EBOK_WEB__LISTEN="127.0.0.1:$port" EBOK_METRICS__LISTEN="127.0.0.1:$mport"
        EBOK_RADIUS__LISTEN="[\"127.0.0.1:$rport\"]" EBOK_SESSIONS__STORE="$store")
    if [ "$store" = redis ]; then
        redis_prefix="ebok-bench-web-$$:"
        env+=(EBOK_SESSIONS__REDIS_URL="$REDIS_URL" EBOK_SESSIONS__REDIS_PREFIX="$redis_prefix")
    fi
    echo "== ebok run --demo: $label"
    echo "  ${env[*]} $EBOK run --demo"
    env "${env[@]}" "$EBOK" run --demo >"$dir/ebok.log" 2>&1 &
    server_pid=$!
    base="http://127.0.0.1:$port"
    for _ in $(seq 600); do
        grep -q "Jan Kowalski's line" "$dir/ebok.log" && break
        kill -0 "$server_pid" 2>/dev/null || { cat "$dir/ebok.log" >&2; return 1; }
        sleep 0.1
    done
    wait_http "$base/" "$server_pid" || { cat "$dir/ebok.log" >&2; return 1; }
    cookie=$(login_jan "$base" "$dburl")
    check_panel "$base" "$cookie"
    "$BENCH" billing-history --database-url "$dburl" | sed 's/^/  /'
    check_page "$base" "$cookie" /platnosci 'Saldo'
    check_page "$base" "$cookie" /statystyki 'Ruch wszystkich Twoich kont PPPoE'
    if wants login; then bench "$label-login" "$server_pid" "$base/logowanie"; fi
    if wants panel; then bench "$label-panel" "$server_pid" "$base/panel" -H "Cookie: $cookie"; fi
    if wants home; then bench "$label-home" "$server_pid" "$base/"; fi
    if wants payments; then bench "$label-payments" "$server_pid" "$base/platnosci" -H "Cookie: $cookie"; fi
    if wants stats; then bench "$label-stats" "$server_pid" "$base/statystyki" -H "Cookie: $cookie"; fi
    check_panel "$base" "$cookie" # still logged in: wrk measured the real page throughout
    if [ "$label" = sqlite ]; then
        echo "== invoice PDF generation time (Jan's newest invoice)"
        "$BENCH" pdf --database-url "$dburl" --n "$PDF_N" | tee -a "$results"
    fi
    stop_pid "$server_pid"
    server_pid=""
}

echo "== machine: $(nproc) cores, $(uname -sr)"
started=$(date +%s)

hport=$("$BENCH" free-port)
reference hello
run_panel sqlite "sqlite://$tmp/ebok.sqlite"

if [ "$SKIP_POSTGRES" != 1 ]; then
    pg_db="ebok_bench_web_$$"
    if psql "$POSTGRES_URL/postgres" -q -c "CREATE DATABASE \"$pg_db\"" >/dev/null; then
        reference hello
        run_panel postgres "$POSTGRES_URL/$pg_db"
        drop_pg
    else
        echo "== PostgreSQL at $POSTGRES_URL unreachable: skipped"
        pg_db=""
    fi
fi

if [ "$SKIP_REDIS" != 1 ]; then
    if redis-cli -u "$REDIS_URL" ping >/dev/null 2>&1; then
        reference hello
        run_panel redis "sqlite://$tmp/ebok-redis.sqlite" redis
        clean_redis_prefix
    else
        echo "== Redis at $REDIS_URL unreachable: skipped"
    fi
fi

reference hello

echo "== argon2id verification cost"
"$BENCH" argon2 --n "$ARGON2_N" | tee -a "$results"

echo
echo "== summary ($(nproc) cores; wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s; $(($(date +%s) - started)) s)"
# Each page's ratio is to the mean of the hello-world runs just before and after its backend;
# "× hello CPU" is hello-world's CPU per request over the page's (1 = as cheap).
awk '
    $1 != "RESULT" {
        n++; name[n] = $1; rps[n] = $2; p50[n] = $3; p99[n] = $4; cpu[n] = $5
        err[n] = $6; for (f = 7; f <= NF; f++) err[n] = err[n] " " $f
    }
    END {
        printf "| %-18s | %10s | %8s | %8s | %14s | %8s | %11s | %s\n", "run", "req/s", "p50 ms", "p99 ms", \
            "× hello-world", "µs CPU", "× hello CPU", "non-2xx"
        for (i = 1; i <= n; i++) {
            if (name[i] == "hello") { printf "| %-18s | %10.0f | %8.2f | %8.2f | %14s | %8.1f | %11s | %s\n", \
                name[i], rps[i], p50[i], p99[i], "", cpu[i], "", err[i]; continue }
            b = 0; a = 0
            for (j = i - 1; j >= 1; j--) if (name[j] == "hello") { b = j; break }
            for (j = i + 1; j <= n; j++) if (name[j] == "hello") { a = j; break }
            k = (b > 0) + (a > 0)
            r = k ? (rps[b] + rps[a]) / k : 0; c = k ? (cpu[b] + cpu[a]) / k : 0
            printf "| %-18s | %10.0f | %8.2f | %8.2f | %14.2f | %8.1f | %11.2f | %s\n", name[i], rps[i], \
                p50[i], p99[i], r ? rps[i] / r : 0, cpu[i], cpu[i] ? c / cpu[i] : 0, err[i]
        }
    }' "$results"
grep '^RESULT argon2' "$results" || true
grep '^RESULT pdf' "$results" || true
