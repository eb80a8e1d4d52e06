#!/usr/bin/env bash
# Feed throughput: newsdesk serving /feeds/all.rss against nginx serving the very same
# bytes as a static file, both on loopback, measured with wrk. Run by hand, not in CI.
# See bench/README.md.
#
# Environment (all optional):
#   DURATION=15       seconds per measured wrk run
#   THREADS=2         wrk threads
#   CONNECTIONS=64    wrk connections
#   FEED=/feeds/all.rss   the feed path to measure
#   TARGET=0.8        the newsdesk/nginx ratio to meet
#   ROUNDS=2          rounds of (newsdesk, nginx); newsdesk runs once more at the end
#   NEWSDESK_BIN=...  use this binary instead of building target/release/newsdesk
#   ACCESS_LOG=on     on: newsdesk logs every request (target newsdesk::access, as in
#                     production) to a file in the temp dir; off: warnings only
#   KEEP=1            keep the temp dir (logs, nginx.conf, the feed file)
#
# Exit status: 0 target met, 3 target missed, 1 error.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
DURATION="${DURATION:-15}"
THREADS="${THREADS:-2}"
CONNECTIONS="${CONNECTIONS:-64}"
FEED="${FEED:-/feeds/all.rss}"
TARGET="${TARGET:-0.8}"
ROUNDS="${ROUNDS:-2}"
ACCESS_LOG="${ACCESS_LOG:-on}"
case "$ACCESS_LOG" in
  on) ND_LOG="warn,newsdesk::access=info" ;;
  off) ND_LOG="warn" ;;
  *) echo "bench: ACCESS_LOG must be on or off" >&2; exit 1 ;;
esac

die() { echo "bench: $*" >&2; exit 1; }
[[ "$DURATION" =~ ^[0-9]+$ && "$DURATION" -ge 1 && "$DURATION" -le 300 ]] || die "DURATION must be 1..300 seconds"
[[ "$ROUNDS" =~ ^[0-9]+$ && "$ROUNDS" -ge 1 && "$ROUNDS" -le 10 ]] || die "ROUNDS must be 1..10"

# --- tools ---------------------------------------------------------------------------
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
command -v curl >/dev/null || missing+=(curl)
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "--- installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  BIN="$NEWSDESK_BIN"
else
  echo "--- cargo build --release"
  cargo build --release --quiet --bin newsdesk
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/newsdesk"
fi
[[ -x "$BIN" ]] || die "no executable at $BIN"

# --- processes and clean-up ----------------------------------------------------------
WORK="$(mktemp -d -t newsdesk-bench.XXXXXX)"
chmod 755 "$WORK"   # nginx workers run as an unprivileged user and must read the file
NEWSDESK_PID=""
NGINX_PID=""
stop() {
  local pid=$1
  [[ -n "$pid" ]] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  stop "$NGINX_PID"
  stop "$NEWSDESK_PID"
  if [[ "${KEEP:-0}" == 1 ]]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
wait_http() {  # url pid name
  for _ in $(seq 300); do
    kill -0 "$2" 2>/dev/null || die "$3 exited during start-up (logs in $WORK; KEEP=1 keeps them)"
    curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "$3 did not answer $1 within 30 s"
}

# --- newsdesk ------------------------------------------------------------------------
ND_PORT="$(free_port)"
ND="http://127.0.0.1:$ND_PORT"
echo "--- starting newsdesk on $ND ($(basename "$BIN"), RUST_LOG=$ND_LOG, demo content)"
env DATABASE_URL="sqlite://$WORK/newsdesk.db" NEWSDESK_BIND="127.0.0.1:$ND_PORT" RUST_LOG="$ND_LOG" \
  "$BIN" serve --demo >"$WORK/newsdesk.log" 2>&1 </dev/null &
NEWSDESK_PID=$!
wait_http "$ND/readyz" "$NEWSDESK_PID" newsdesk

mkdir -p "$WORK/www" "$WORK/nginx/tmp"
# One file, served by nginx at the path (rewritten to it): any path works, `/` too.
FILE="$WORK/www/body"
curl -fsS -D "$WORK/feed.headers" -o "$FILE" "$ND$FEED" || die "GET $ND$FEED failed"
chmod -R a+rX "$WORK/www"
CTYPE="$(grep -i '^content-type:' "$WORK/feed.headers" | head -n1 | cut -d' ' -f2- | tr -d '\r')"
BYTES="$(wc -c <"$FILE")"
[[ "$BYTES" -gt 0 ]] || die "$FEED is empty"
echo "    $FEED: $BYTES bytes, Content-Type: $CTYPE"
if [[ "$BYTES" -lt 1000 ]]; then
  echo "    warning: the feed is under 1000 bytes; are the feed renderers still stubs?" >&2
fi

# --- nginx ---------------------------------------------------------------------------
NG_PORT="$(free_port)"
NG="http://127.0.0.1:$NG_PORT"
cat >"$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    # As newsdesk (hyper) does, keep a connection for as many requests as it carries.
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server_tokens off;
    client_body_temp_path $WORK/nginx/tmp/client;
    proxy_temp_path $WORK/nginx/tmp/proxy;
    fastcgi_temp_path $WORK/nginx/tmp/fastcgi;
    uwsgi_temp_path $WORK/nginx/tmp/uwsgi;
    scgi_temp_path $WORK/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$NG_PORT;
        root $WORK/www;
        location = $FEED {
            types { }
            default_type "$CTYPE";
            rewrite ^ /body break;
        }
    }
}
EOF
echo "--- starting nginx on $NG (worker_processes auto, access_log off)"
"$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" \
  >"$WORK/nginx/stdout.log" 2>&1 </dev/null &
NGINX_PID=$!
wait_http "$NG$FEED" "$NGINX_PID" nginx
curl -fsS -o "$WORK/nginx-copy" "$NG$FEED"
cmp -s "$FILE" "$WORK/nginx-copy" || die "nginx does not serve the same bytes as newsdesk"
NG_CTYPE="$(curl -fsS -o /dev/null -w '%{content_type}' "$NG$FEED")"
[[ "$NG_CTYPE" == "$CTYPE" ]] || die "nginx serves Content-Type '$NG_CTYPE', newsdesk '$CTYPE'"

# --- measure -------------------------------------------------------------------------
CLK_TCK="$(getconf CLK_TCK)"
server_ticks() {  # CPU time (user + system, clock ticks) of a process and its children
  local p f sum=0
  local -a a
  for p in "$1" $(pgrep -P "$1" || true); do
    f="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
    f="${f##*) }"              # after "pid (comm) ": field 3 (state) is a[0]
    read -r -a a <<<"$f"
    sum=$((sum + a[11] + a[12]))  # utime (field 14), stime (field 15)
  done
  echo "$sum"
}
# run_wrk label url seconds server_pid: prints Requests/sec; wrk's output goes to
# $WORK/wrk-label.txt and the server's CPU microseconds per request to $WORK/cpu-label.txt.
run_wrk() {
  local label=$1 url=$2 seconds=$3 pid=$4 out="$WORK/wrk-$1.txt" before after
  before="$(server_ticks "$pid")"
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" --latency "$url" >"$out" 2>&1 \
    || die "wrk failed against $url: $(tail -n 3 "$out")"
  after="$(server_ticks "$pid")"
  if grep -qE 'Non-2xx|Socket errors' "$out"; then
    echo "    warning ($label): $(grep -E 'Non-2xx|Socket errors' "$out" | tr -s ' ')" >&2
  fi
  awk -v t=$((after - before)) -v hz="$CLK_TCK" '/ requests in / { printf "%.1f\n", (t / hz) * 1e6 / $1 }' \
    "$out" >"$WORK/cpu-$label.txt"
  awk '/^Requests\/sec:/ {print $2}' "$out"
}
show() {  # label rps
  local out="$WORK/wrk-$1.txt"
  printf '    %-11s %11s req/s  server CPU %6s us/req  latency p50 %s p99 %s\n' "$1" "$2" \
    "$(cat "$WORK/cpu-$1.txt")" \
    "$(awk '$1 == "50%" {print $2}' "$out")" "$(awk '$1 == "99%" {print $2}' "$out")"
}

cpu_busy() {  # percent of CPU time not idle over $1 seconds, from /proc/stat
  local a b
  a="$(head -n1 /proc/stat)"; sleep "$1"; b="$(head -n1 /proc/stat)"
  awk -v a="$a" -v b="$b" 'BEGIN {
    na = split(a, x); split(b, y); total = 0
    for (i = 2; i <= na; i++) total += y[i] - x[i]
    idle = (y[5] - x[5]) + (y[6] - x[6])
    printf "%.0f", (total > 0 ? 100 * (total - idle) / total : 0) }'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { printf "%.2f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

BUSY="$(cpu_busy 2)"
if [[ "$BUSY" -gt 15 ]]; then
  echo "    warning: the CPUs were ${BUSY}% busy with other work just before measuring; the figures will be skewed" >&2
fi
echo "--- warming up (3 s each)"
run_wrk warm-newsdesk "$ND$FEED" 3 "$NEWSDESK_PID" >/dev/null
run_wrk warm-nginx "$NG$FEED" 3 "$NGINX_PID" >/dev/null

CMD="wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency URL"
echo "--- measuring: $CMD  ($ROUNDS rounds of newsdesk then nginx, then newsdesk once more)"
ND_ALL=""
NG_ALL=""
for round in $(seq "$ROUNDS"); do
  r="$(run_wrk "newsdesk-$round" "$ND$FEED" "$DURATION" "$NEWSDESK_PID")"; show "newsdesk-$round" "$r"; ND_ALL+="$r "
  r="$(run_wrk "nginx-$round" "$NG$FEED" "$DURATION" "$NGINX_PID")"; show "nginx-$round" "$r"; NG_ALL+="$r "
done
last=$((ROUNDS + 1))
r="$(run_wrk "newsdesk-$last" "$ND$FEED" "$DURATION" "$NEWSDESK_PID")"; show "newsdesk-$last" "$r"; ND_ALL+="$r "
[[ "$(wc -w <<<"$ND_ALL")" -eq $((ROUNDS + 1)) && "$(wc -w <<<"$NG_ALL")" -eq "$ROUNDS" ]] \
  || die "could not read Requests/sec from wrk (KEEP=1 keeps $WORK/wrk-*.txt)"

ND_MED="$(median <<<"$ND_ALL")"
NG_MED="$(median <<<"$NG_ALL")"
ND_CPU="$(cat "$WORK"/cpu-newsdesk-[0-9]*.txt | tr '\n' ' ' | median)"
NG_CPU="$(cat "$WORK"/cpu-nginx-[0-9]*.txt | tr '\n' ' ' | median)"
read -r RATIO MET < <(awk -v n="$ND_MED" -v g="$NG_MED" -v t="$TARGET" \
  'BEGIN { r = n / g; printf "%.3f %s\n", r, (r >= t ? "yes" : "no") }')

echo
echo "=== feed benchmark: $FEED, $BYTES bytes, $CTYPE"
echo "    cores: $(nproc)   wrk: -t$THREADS -c$CONNECTIONS -d${DURATION}s   CPU busy before: ${BUSY}%"
echo "    newsdesk access log: $ACCESS_LOG ($(grep -c 'newsdesk::access' "$WORK/newsdesk.log" || true) lines written)"
printf '    newsdesk  %12s req/s   (median of %s)\n' "$ND_MED" "${ND_ALL% }"
printf '    nginx     %12s req/s   (median of %s; same bytes, static file)\n' "$NG_MED" "${NG_ALL% }"
printf '    server CPU per request: newsdesk %s us, nginx %s us (medians; less sensitive to other load)\n' \
  "$ND_CPU" "$NG_CPU"
printf '    ratio newsdesk/nginx = %s   target >= %s: %s\n' "$RATIO" "$TARGET" \
  "$([[ $MET == yes ]] && echo MET || echo MISSED)"

[[ $MET == yes ]] || exit 3
