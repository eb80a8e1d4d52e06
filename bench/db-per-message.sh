#!/usr/bin/env bash
# Database work per digest message, on SQLite and PostgreSQL: one digest to SUBSCRIBERS
# readers (default 2000), built and sent by `newsdesk digest send` to Postfix's smtp-sink
# on loopback, twice per backend:
#   1. with sqlx's statement log on (RUST_LOG=sqlx::query=debug): every call newsdesk
#      makes to the database, with the time it took as newsdesk saw it (round trip
#      included), counted and summed; on PostgreSQL also the server's own log
#      (log_min_duration_statement=0 on a throwaway database only): statements executed
#      and the time the server spent on them.
#   2. without any log: wall time and newsdesk's CPU time (user + system) per message.
# Prints one line per backend and measure.
#
#   bash bench/db-per-message.sh
#   SUBSCRIBERS=20000 NEWSDESK_BIN=target/release/newsdesk bash bench/db-per-message.sh
#   PG_ADMIN_URL=postgres://postgres@127.0.0.1:5432/postgres  (default; needs superuser)
#
# Needs smtp-sink (Debian's postfix), psql, /usr/bin/time, and read access to the
# PostgreSQL server log (PG_LOG, default /var/log/postgresql/postgresql-15-main.log).
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBERS="${SUBSCRIBERS:-2000}"
PG_ADMIN_URL="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PG_LOG="${PG_LOG:-/var/log/postgresql/postgresql-15-main.log}"
if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  bin="$NEWSDESK_BIN"
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/newsdesk"
fi
work="$(mktemp -d)"
sink_pid=""
dbs=()
cleanup() {
  [[ -n "$sink_pid" ]] && { kill "$sink_pid" 2>/dev/null || true; wait "$sink_pid" 2>/dev/null || true; }
  for d in "${dbs[@]}"; do psql "$PG_ADMIN_URL" -qc "DROP DATABASE IF EXISTS $d" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

python3 - "$SUBSCRIBERS" "$work/contacts.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
with open(path, "w", encoding="utf-8") as f:
    f.write("email,name\n")
    for i in range(n):
        f.write(f"reader{i}@staff{i % 97}.example.edu,Reader {i}\n")
PY
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
/usr/sbin/smtp-sink -u root "127.0.0.1:$port" 1000 >/dev/null 2>&1 &
sink_pid=$!
sleep 0.3
export NEWSDESK_SMTP_URL="smtp://127.0.0.1:$port" NEWSDESK_SEND_BATCH=1000 NEWSDESK_SEND_CONCURRENCY=16
export NEWSDESK_MAIL_FROM="SZPU News <news@szpu.example.edu>" NEWSDESK_BASE_URL="https://news.example.edu"
messages=$(( SUBSCRIBERS + 8 ))

# A fresh database of the backend, with the demo and the readers: its URL.
fresh() {
  local backend="$1" run="$2"
  if [[ "$backend" == sqlite ]]; then
    echo "sqlite://$work/$run.db"
  else
    local name="nd_measure_${run}_$$"
    psql "$PG_ADMIN_URL" -qc "CREATE DATABASE $name" >/dev/null
    dbs+=("$name")
    echo "${PG_ADMIN_URL%/*}/$name"
  fi
}

setup() {
  DATABASE_URL="$1" RUST_LOG=warn "$bin" demo >/dev/null
  DATABASE_URL="$1" RUST_LOG=warn "$bin" subscribers import "$work/contacts.csv" --list partners --consent-source bench >/dev/null
}

send() {
  DATABASE_URL="$1" "$bin" digest send --list partners --period 2023-W45
}

for backend in sqlite postgres; do
  # 1. Every database call, counted.
  url="$(fresh "$backend" counted)"
  setup "$url"
  mark=0
  if [[ "$backend" == postgres ]]; then
    name="${url##*/}"
    psql "$PG_ADMIN_URL" -qc "ALTER DATABASE $name SET log_min_duration_statement = 0" >/dev/null
    mark=$(stat -c %s "$PG_LOG")
  fi
  RUST_LOG="warn,sqlx::query=debug" send "$url" >"$work/out" 2>"$work/sqlx.log"
  python3 - "$backend" "$messages" "$work/sqlx.log" <<'PY'
import re, sys
backend, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
calls, secs = 0, 0.0
for line in open(path, encoding="utf-8", errors="replace"):
    if "sqlx::query" in line:
        m = re.search(r"elapsed_secs=([0-9.e-]+)", line)
        if m:
            calls += 1
            secs += float(m.group(1))
print(f"{backend}: {n} messages; database calls {calls} ({calls / n:.2f} per message), "
      f"time in them as newsdesk saw it {secs:.2f} s ({secs / n * 1e6:.0f} us per message)")
PY
  if [[ "$backend" == postgres ]]; then
    psql "$PG_ADMIN_URL" -qc "ALTER DATABASE $name RESET log_min_duration_statement" >/dev/null
    tail -c +"$((mark + 1))" "$PG_LOG" >"$work/server.log"
    python3 - "$name" "$messages" "$work/server.log" <<'PY'
import re, sys
name, n = sys.argv[1], int(sys.argv[2])
statements, ms = 0, 0.0
for line in open(sys.argv[3], encoding="utf-8", errors="replace"):
    if f"@{name} " not in line:
        continue
    m = re.search(r"duration: ([0-9.]+) ms\s+(execute|statement|parse|bind)", line)
    if m:
        ms += float(m.group(1))
        if m.group(2) in ("execute", "statement"):
            statements += 1
print(f"postgres server: {statements} statements executed ({statements / n:.2f} per message), "
      f"{ms / 1000:.2f} s in them ({ms / n * 1000:.0f} us per message, parse+bind+execute)")
PY
  fi
  # 2. Wall and CPU time, nothing logged.
  url="$(fresh "$backend" timed)"
  setup "$url"
  start=$(date +%s.%N)
  RUST_LOG=warn /usr/bin/time -f "%U %S %M" -o "$work/time" bash -c "DATABASE_URL='$url' '$bin' digest send --list partners --period 2023-W45" >"$work/out" 2>/dev/null
  end=$(date +%s.%N)
  read -r user sys rss <"$work/time"
  python3 -c "
n=$messages; wall=$end-$start; cpu=$user+$sys
print(f'$backend: {n} messages in {wall:.2f} s ({n/wall:.0f}/s); newsdesk CPU {cpu:.2f} s ({cpu/n*1e6:.0f} us per message), peak RSS {$rss/1024:.0f} MiB; $(tail -n1 "$work/out")')"
done
