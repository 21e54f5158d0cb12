#!/usr/bin/env bash
# Benchmark of the billing import (not a timed test): import of N subscribers with one
# contract, PPPoE account and IP each and MONTHS monthly invoices and payments, through
# `ebok import KIND FILE` (one process and one transaction per file), on SQLite (a fresh
# file) and PostgreSQL (a fresh database, dropped afterwards). Prints elapsed time and peak
# RSS (/usr/bin/time -v) per kind and in total, and the file sizes. Runs at SIZES
# subscribers to show that memory does not grow with the file.
#
# Environment knobs (defaults in brackets):
#   SIZES ["50000 10000"] subscriber counts, one full run each; MONTHS [12]
#   PG_HOST [127.0.0.1] PG_PORT [5432] PG_USER [postgres] (trust auth); SKIP_PG=1,
#   SKIP_SQLITE=1; WORK [a new temp dir, removed at the end]
#   EBOK [target/release/ebok] the binary to measure (e.g. a copy of an older build)
# Needs: cargo, /usr/bin/time (package `time`), psql for PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZES=${SIZES:-"50000 10000"}
MONTHS=${MONTHS:-12}
PG_HOST=${PG_HOST:-127.0.0.1}
PG_PORT=${PG_PORT:-5432}
PG_USER=${PG_USER:-postgres}
SKIP_PG=${SKIP_PG:-0}
SKIP_SQLITE=${SKIP_SQLITE:-0}
EBOK=${EBOK:-target/release/ebok}
KINDS="subscribers contracts pppoe-accounts ips invoices payments"

[ -x /usr/bin/time ] || { echo "bench-import: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }
cargo build --release --bin ebok --bin ebok-bench >&2

OWN_WORK=0
if [ -z "${WORK:-}" ]; then
  WORK=$(mktemp -d)
  OWN_WORK=1
fi
PG_DB=""
cleanup() {
  if [ -n "$PG_DB" ]; then
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAtc \
      "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true
  fi
  if [ "$OWN_WORK" = 1 ]; then rm -rf "$WORK"; fi
}
trap cleanup EXIT

# run_kinds LABEL URL DIR: import every kind in order; prints one line per kind and a total.
run_kinds() {
  local label=$1 url=$2 dir=$3 total_s=0 peak_kb=0
  for kind in $KINDS; do
    local file="$dir/$kind.csv" log="$WORK/time.log"
    if ! /usr/bin/time -v -o "$log" "$EBOK" --database-url "$url" \
        import "$kind" "$file" >"$WORK/out.log" 2>&1; then
      cat "$WORK/out.log" "$log" >&2
      echo "bench-import: $label $kind failed" >&2
      exit 1
    fi
    local wall rss secs
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$log")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$log")
    # m:ss.ss or h:mm:ss → seconds
    secs=$(awk -v t="$wall" 'BEGIN { n = split(t, p, ":"); s = 0;
      for (i = 1; i <= n; i++) s = s * 60 + p[i]; printf "%.2f", s }')
    total_s=$(awk -v a="$total_s" -v b="$secs" 'BEGIN { printf "%.2f", a + b }')
    [ "$rss" -gt "$peak_kb" ] && peak_kb=$rss
    printf '%-8s %-15s %8.2f s  %7.1f MB RSS  %s\n' "$label" "$kind" "$secs" \
      "$(awk -v k="$rss" 'BEGIN { print k / 1024 }')" "$(tail -n 1 "$WORK/out.log")"
  done
  printf '%-8s %-15s %8.2f s  %7.1f MB peak RSS\n' "$label" "TOTAL" "$total_s" \
    "$(awk -v k="$peak_kb" 'BEGIN { print k / 1024 }')"
}

for n in $SIZES; do
  dir="$WORK/data-$n"
  echo "== $n subscribers, $MONTHS months of invoices and payments =="
  target/release/ebok-bench gen-import --subscribers "$n" --months "$MONTHS" --dir "$dir"
  for kind in $KINDS; do
    printf '  %-20s %10d bytes %9d lines\n' "$kind.csv" "$(stat -c %s "$dir/$kind.csv")" \
      "$(wc -l <"$dir/$kind.csv")"
  done
  if [ "$SKIP_SQLITE" != 1 ]; then
    db="$WORK/import-$n.db"
    rm -f "$db" "$db-wal" "$db-shm"
    run_kinds sqlite "sqlite://$db" "$dir"
    rm -f "$db" "$db-wal" "$db-shm"
  fi
  if [ "$SKIP_PG" != 1 ]; then
    PG_DB="ebok_bench_import_$$_$n"
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAtc "CREATE DATABASE $PG_DB"
    run_kinds postgres "postgres://$PG_USER@$PG_HOST:$PG_PORT/$PG_DB" "$dir"
    psql -h "$PG_HOST" -p "$PG_PORT" -U "$PG_USER" -d postgres -qAtc "DROP DATABASE $PG_DB"
    PG_DB=""
  fi
  rm -rf "$dir"
done
