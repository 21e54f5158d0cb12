#!/usr/bin/env bash
# The test command: every test of the crate (the unit tests and the one integration binary
# tests/it), then the list of service tests skipped because Redis or PostgreSQL was
# unreachable (none under CI, where EBOK_REQUIRE_SERVICES=1 turns a missing service into a
# failure).
set -euo pipefail
cd "$(dirname "$0")/.."
rm -f target/ebok-skipped.txt
status=0
cargo test --workspace --lib --test it "$@" || status=$?
if [ -s target/ebok-skipped.txt ]; then
  echo
  echo "Skipped service tests (start Redis/PostgreSQL to run them):"
  sed 's/^/  - /' target/ebok-skipped.txt
fi
exit $status
