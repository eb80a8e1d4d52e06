#!/usr/bin/env bash
# Time from the SMTP server's acceptance of a digest message to the commit of its mark,
# as the delivery recorder logs it, on SQLite and (when NEWSDESK_TEST_POSTGRES_URL is set)
# PostgreSQL. Usage: bash bench/mark_latency.sh [READERS]   (default 2000)
set -euo pipefail
cd "$(dirname "$0")/.."
READERS="${1:-2000}"
BIN="${NEWSDESK_BIN:-target/release/newsdesk}"
[ -x "$BIN" ] || cargo build --release --quiet
work="$(mktemp -d)"
trap 'kill "$sink" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$port" <<'PY' &
import asyncio, sys
async def session(r, w):
    w.write(b"220 sink\r\n"); await w.drain()
    data = False
    while True:
        line = await r.readline()
        if not line: return
        if data:
            if line == b".\r\n": data = False; w.write(b"250 ok\r\n"); await w.drain()
            continue
        cmd = line[:4].upper()
        if cmd == b"DATA": data = True; w.write(b"354 go\r\n")
        elif cmd == b"QUIT": w.write(b"221 bye\r\n"); await w.drain(); return
        elif cmd == b"EHLO": w.write(b"250-sink\r\n250 8BITMIME\r\n")
        else: w.write(b"250 ok\r\n")
        await w.drain()
async def main():
    s = await asyncio.start_server(session, "127.0.0.1", int(sys.argv[1]))
    async with s: await s.serve_forever()
asyncio.run(main())
PY
sink=$!
python3 -c "print('email,name'); [print(f'r{n}@example.org,R {n}') for n in range($READERS)]" > "$work/c.csv"
run() {
  local db="$1"
  export DATABASE_URL="$db" NEWSDESK_SMTP_URL="smtp://127.0.0.1:$port" RUST_LOG="newsdesk::delivery=info,warn"
  "$BIN" demo >/dev/null 2>&1
  "$BIN" subscribers import "$work/c.csv" --list partners --consent-source bench >/dev/null 2>&1
  "$BIN" digest send --list partners --period 2023-W45 2>&1 >/dev/null | grep "committed mark" | sed 's/\x1b\[[0-9;]*m//g'
}
echo "--- SQLite, $READERS+8 readers"
run "sqlite://$work/bench.db"
if [ -n "${NEWSDESK_TEST_POSTGRES_URL:-}" ]; then
  name="newsdesk_marks_$$"
  psql "$NEWSDESK_TEST_POSTGRES_URL" -qc "CREATE DATABASE $name" >/dev/null
  echo "--- PostgreSQL, $READERS+8 readers"
  run "${NEWSDESK_TEST_POSTGRES_URL%/*}/$name"
  psql "$NEWSDESK_TEST_POSTGRES_URL" -qc "DROP DATABASE $name" >/dev/null
fi
