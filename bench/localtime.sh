#!/usr/bin/env bash
# Reader-local delivery: READERS readers (default 100000) in 40 time zones on a list sent
# "Mondays 08:00 in each reader's zone", the real server and workers, a real database,
# an SMTP sink on loopback, and a test clock stepping through the week (real time plus
# an offset that the database's clock follows: see examples/localtime_bench.rs).
# Prints each message's lateness against its reader's 08:00 (p50, p99, max, how many
# later than 60 s, how many early) and the time of one outbox claim of 200 rows with the
# week's rows due across the week, against the same claim with every row due at once
# (a list-zone digest, as before), in the same run.
#
#   bash bench/localtime.sh [READERS]
#   LOCALTIME_LAYOUT=blocks bash bench/localtime.sh   (each zone's readers together;
#                              by default reader N is in zone N mod 40)
#
# SQLite always; PostgreSQL too when NEWSDESK_TEST_POSTGRES_URL is set (a fresh database
# is made on that server and dropped afterwards). Release build. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
READERS="${1:-100000}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --example localtime_bench
bin="$target/release/examples/localtime_bench"
work="$(mktemp -d)"
pg_name=""
cleanup() {
  if [[ -n "$pg_name" ]]; then
    psql "$NEWSDESK_TEST_POSTGRES_URL" -qc "DROP DATABASE IF EXISTS $pg_name" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "--- SQLite, $READERS readers"
"$bin" "sqlite://$work/bench.db" "$READERS"
if [[ -n "${NEWSDESK_TEST_POSTGRES_URL:-}" ]]; then
  pg_name="newsdesk_localtime_$$"
  psql "$NEWSDESK_TEST_POSTGRES_URL" -qc "CREATE DATABASE $pg_name" >/dev/null
  echo "--- PostgreSQL, $READERS readers"
  "$bin" "${NEWSDESK_TEST_POSTGRES_URL%/*}/$pg_name" "$READERS"
fi
