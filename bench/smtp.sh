#!/usr/bin/env bash
# SMTP sending benchmark: newsdesk's Mailer against Postfix's smtp-source, both sending to
# Postfix's smtp-sink on loopback.
#
#   bash bench/smtp.sh
#   MESSAGES=50000 SIZE=8000 POOL=4 bash bench/smtp.sh
#
# smtp-sink (-c: counts, never writes a message anywhere) listens on a free port of
# 127.0.0.1. Measured, in this order:
#   smtp-source -s POOL -m MESSAGES -l SIZE       one connection per message (its default)
#   smtp-source -s POOL -m MESSAGES -l SIZE -d    POOL connections reused for every message
#   examples/mailer_bench (Mailer, pool POOL)      MESSAGES messages of SIZE bytes, TASKS tasks
#   smtp-source ... -d again                       to even out drift; its figure is the mean
# The ratio that counts is Mailer / smtp-source -d: both keep their connections open.
# smtp-source's SIZE is its payload, to which it adds a few short headers; the Mailer's
# SIZE is the whole message (headers, MIME parts, text and HTML).
#
# Needs root for `apt-get install postfix` (only its smtp-sink and smtp-source are used;
# the Postfix daemon is never started: Debian's policy-rc.d or the stop below sees to it).
# Exits 0 when Mailer >= TARGET x smtp-source -d, 3 when not, 1 on any error. Every
# process it starts is stopped on exit, also on Ctrl-C. Loopback only, bounded in count.
set -euo pipefail
cd "$(dirname "$0")/.."

MESSAGES="${MESSAGES:-20000}"
SIZE="${SIZE:-8000}"
POOL="${POOL:-4}"
TASKS="${TASKS:-32}"
TARGET="${TARGET:-0.8}"
# Longest any one measured run may take; a hung run is killed and the script fails.
RUN_LIMIT="${RUN_LIMIT:-300}"

if [[ ! -x /usr/sbin/smtp-sink || ! -x /usr/sbin/smtp-source ]]; then
  echo "installing postfix for smtp-sink and smtp-source"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postfix >/dev/null
  # Installing may have started the daemon where services can start; it is not wanted.
  postfix stop >/dev/null 2>&1 || true
fi

echo "building examples/mailer_bench (release)"
cargo build --release --quiet --example mailer_bench
BENCH_BIN=target/release/examples/mailer_bench

work="$(mktemp -d)"
sink_pid=""
cleanup() {
  if [[ -n "$sink_pid" ]] && kill -0 "$sink_pid" 2>/dev/null; then
    kill "$sink_pid" 2>/dev/null || true
    wait "$sink_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
# -c counters on stdout; -u root: smtp-sink drops privileges to this user, which must
# exist; 1000: the listen backlog.
/usr/sbin/smtp-sink -c -u root "127.0.0.1:$port" 1000 >"$work/sink.out" 2>&1 &
sink_pid=$!
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.1
done
kill -0 "$sink_pid" || { echo "smtp-sink did not start:" >&2; cat "$work/sink.out" >&2; exit 1; }

# Seconds (with decimals) that a command takes; fails when it fails or exceeds RUN_LIMIT.
seconds() {
  local start end
  start=$(date +%s.%N)
  timeout "$RUN_LIMIT" "$@" >"$work/last.out" 2>&1 || { echo "failed: $*" >&2; cat "$work/last.out" >&2; return 1; }
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.3f}')"
}
rate() { python3 -c "print(f'{$1 / $2:.1f}')"; }

echo "--- smtp-sink on 127.0.0.1:$port; $MESSAGES messages per run, $POOL sessions/connections"
src_cmd=(/usr/sbin/smtp-source -s "$POOL" -m "$MESSAGES" -l "$SIZE" -f news@partners.example.edu -t reader@example.org)

t=$(seconds "${src_cmd[@]}" "127.0.0.1:$port")
src_new=$(rate "$MESSAGES" "$t")
echo "    smtp-source        $src_new msg/s  ($t s; a new connection per message)"

t=$(seconds "${src_cmd[@]}" -d "127.0.0.1:$port")
src_d1=$(rate "$MESSAGES" "$t")
echo "    smtp-source -d     $src_d1 msg/s  ($t s; connections reused)"

timeout "$RUN_LIMIT" "$BENCH_BIN" "smtp://127.0.0.1:$port" "$MESSAGES" "$SIZE" "$POOL" "$TASKS" >"$work/mailer.out" 2>&1 \
  || { echo "mailer_bench failed:" >&2; cat "$work/mailer.out" >&2; exit 1; }
mailer=$(awk '/^RATE /{print $2}' "$work/mailer.out")
grep -v '^RATE ' "$work/mailer.out" | sed 's/^/    /'
echo "    Mailer             $mailer msg/s"

t=$(seconds "${src_cmd[@]}" -d "127.0.0.1:$port")
src_d2=$(rate "$MESSAGES" "$t")
echo "    smtp-source -d     $src_d2 msg/s  ($t s; again)"

# smtp-sink's last counter line: it counts every message it took.
counted=$(tr '\r' '\n' <"$work/sink.out" | grep -E '[0-9]' | tail -n 1 || true)

python3 - "$mailer" "$src_d1" "$src_d2" "$src_new" "$TARGET" "$SIZE" "$POOL" "$MESSAGES" "$counted" <<'PY'
import sys
mailer, d1, d2, new, target = map(float, sys.argv[1:6])
size, pool, messages, counted = sys.argv[6:10]
d = (d1 + d2) / 2
ratio = mailer / d
print()
print(f"=== SMTP benchmark: {messages} messages of ~{size} bytes, {pool} connections, loopback")
print(f"    Mailer               {mailer:9.1f} msg/s")
print(f"    smtp-source -d       {d:9.1f} msg/s  (mean of {d1:.1f} and {d2:.1f})")
print(f"    smtp-source          {new:9.1f} msg/s  (a new connection per message)")
print(f"    smtp-sink counters:  {counted.strip()}  (all runs: mesg={4 * int(messages)} expected)")
print(f"    ratio Mailer/smtp-source    = {mailer / new:.3f}")
verdict = "MET" if ratio >= target else "MISSED"
print(f"    ratio Mailer/smtp-source -d = {ratio:.3f}   target >= {target}: {verdict}")
sys.exit(0 if ratio >= target else 3)
PY
