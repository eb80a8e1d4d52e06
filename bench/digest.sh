#!/usr/bin/env bash
# Digest delivery benchmark: one digest to SUBSCRIBERS confirmed subscribers (default
# 100000), built and delivered by `newsdesk digest send` (SQLite, release build) to
# Postfix's smtp-sink on loopback; in the same run, Postfix's smtp-source sends the same
# number of messages of the same size over the same number of connections (-d: kept
# open, as newsdesk keeps its pool). Prints messages per second for both, their ratio,
# and newsdesk's peak memory (max RSS).
#
#   bash bench/digest.sh
#   SUBSCRIBERS=20000 POOL=4 bash bench/digest.sh
#   NEWSDESK_BIN=path/to/newsdesk bash bench/digest.sh   (a given binary, e.g. an older build)
#
# Loopback only; every process started is stopped on exit. Needs root for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

SUBSCRIBERS="${SUBSCRIBERS:-100000}"
POOL="${POOL:-4}"
CONCURRENCY="${CONCURRENCY:-16}"
TARGET="${TARGET:-0.8}"

if [[ ! -x /usr/sbin/smtp-sink || ! -x /usr/sbin/smtp-source ]]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
  postfix stop >/dev/null 2>&1 || true
fi
[[ -x /usr/bin/time ]] || { apt-get update -qq; apt-get install -y -qq time >/dev/null; }

if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  bin="$NEWSDESK_BIN"
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/newsdesk"
fi
work="$(mktemp -d)"
sink_pid=""
cleanup() {
  if [[ -n "$sink_pid" ]]; then
    kill "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export DATABASE_URL="sqlite://$work/bench.db" RUST_LOG=warn NEWSDESK_OUTBOX_DIR="$work/outbox"
export NEWSDESK_MAIL_FROM="SZPU News <news@szpu.example.edu>" NEWSDESK_BASE_URL="https://news.example.edu"
"$bin" demo >/dev/null
python3 - "$SUBSCRIBERS" "$work/contacts.csv" <<'PY'
import sys
n, path = int(sys.argv[1]), sys.argv[2]
partners = ["Temasek Polytechnic of Singapore", "University Tun Hussein Onn Malaysia", "Zhejiang Technical Institute of Economics", ""]
with open(path, "w", encoding="utf-8") as f:
    f.write("email,name,partner\n")
    for i in range(n):
        f.write(f"reader{i}@staff{i % 97}.example.edu,Reader {i},{partners[i % 4]}\n")
PY
"$bin" subscribers import "$work/contacts.csv" --list partners --consent-source "benchmark" | tail -n 1

# The size of one digest as sent: one message through the .eml outbox.
"$bin" digest preview --list partners --period 2023-W45 --subscriber reader0@staff0.example.edu --format html >"$work/p.html"
"$bin" digest preview --list partners --period 2023-W45 --subscriber reader0@staff0.example.edu --format text >"$work/p.txt"
size=$(( $(stat -c %s "$work/p.html") + $(stat -c %s "$work/p.txt") + 1200 ))

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
/usr/sbin/smtp-sink -c -u root "127.0.0.1:$port" 1000 >"$work/sink.out" 2>&1 &
sink_pid=$!
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done

echo "--- newsdesk digest send: $SUBSCRIBERS+8 recipients, ~$size bytes each, pool $POOL, $CONCURRENCY at once"
start=$(date +%s.%N)
NEWSDESK_SMTP_URL="smtp://127.0.0.1:$port" NEWSDESK_SMTP_POOL_SIZE="$POOL" NEWSDESK_SEND_CONCURRENCY="$CONCURRENCY" \
  NEWSDESK_SEND_BATCH=1000 /usr/bin/time -f "%M" -o "$work/rss" \
  "$bin" digest send --list partners --period 2023-W45 | tail -n 1
end=$(date +%s.%N)
nd_secs=$(python3 -c "print(f'{$end - $start:.3f}')")
rss_kib=$(tail -n 1 "$work/rss")
messages=$(( SUBSCRIBERS + 8 ))

echo "--- smtp-source -d: $messages messages of $size bytes, $POOL connections"
start=$(date +%s.%N)
/usr/sbin/smtp-source -d -s "$POOL" -m "$messages" -l "$size" -f news@szpu.example.edu -t reader@example.org "127.0.0.1:$port"
end=$(date +%s.%N)
src_secs=$(python3 -c "print(f'{$end - $start:.3f}')")

python3 - "$messages" "$nd_secs" "$src_secs" "$rss_kib" "$TARGET" <<'PY'
import sys
messages = int(sys.argv[1]); nd, src = float(sys.argv[2]), float(sys.argv[3]); rss = int(sys.argv[4]); target = float(sys.argv[5])
a, b = messages / nd, messages / src
print()
print(f"=== one digest, {messages} recipients, loopback smtp-sink")
print(f"    newsdesk digest send   {a:9.1f} msg/s  ({nd:.1f} s, building included)")
print(f"    smtp-source -d         {b:9.1f} msg/s  ({src:.1f} s)")
print(f"    ratio                  {a / b:.3f}   target >= {target}: {'MET' if a / b >= target else 'MISSED'}")
print(f"    newsdesk peak memory   {rss / 1024:.1f} MiB (max RSS)   target < 100 MB: {'MET' if rss * 1024 < 100e6 else 'MISSED'}")
PY
