#!/usr/bin/env bash
# The deployment pieces of deploy/ tried for real: `bash scripts/deploy-checks.sh [BIN]`
# (root, Debian; scripts/test.sh calls it with the binary cargo test built).
#
#  1. systemd: `systemd-analyze verify` accepts deploy/newsdesk.service (in a scratch
#     root that holds the binary at the unit's ExecStart path) with no warning at all,
#     and `systemd-analyze security` scores it "OK" or better (exposure below 2.0).
#  2. backup: `newsdesk backup` taken while a writer adds items through the API; the
#     copy passes `PRAGMA integrity_check`, holds every item written before it began,
#     and a second newsdesk started on the copy serves those items in its feeds.
#  3. nginx: deploy/nginx.conf (only its host name, ports, certificate and upstream
#     replaced) in front of a real newsdesk on loopback, TLS with a self-signed
#     certificate: feeds (200, content type, 304 on If-None-Match), admin sign-in
#     (cookies HttpOnly and Secure), nothing private cached, and the per-address
#     subscribe limit applied per client address nginx saw (127.0.0.2 and 127.0.0.3).
#  4. container: builds Containerfile with podman and runs `newsdesk --version` in the
#     image; where the machine refuses (no base image, no user namespaces, ...) it says
#     exactly what refused and carries on (NEWSDESK_REQUIRE_CONTAINER=1 makes it fail).
#
# Installs what is missing from Debian: nginx, openssl, sqlite3, curl, podman, runc.
# NEWSDESK_DEPLOY_CHECKS="systemd backup nginx container" picks some of them.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$PWD"
export DEBIAN_FRONTEND=noninteractive
BIN="${1:-${NEWSDESK_BIN:-${CARGO_TARGET_DIR:-target}/debug/newsdesk}}"
if [[ ! -x "$BIN" ]]; then
  echo "deploy-checks: no newsdesk binary at $BIN (cargo build first, or pass its path)" >&2
  exit 1
fi
BIN="$(readlink -f "$BIN")"
CHECKS="${NEWSDESK_DEPLOY_CHECKS:-systemd backup nginx container}"

WORK="$(mktemp -d /tmp/newsdesk-deploy.XXXXXX)"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "deploy-checks: FAILED: $*" >&2
  exit 1
}
ok() { echo "  ok: $*"; }
elapsed() { echo "  ($(($(date +%s) - $1)) s)"; }

APT_UPDATED=0
apt_install() {
  if [[ $APT_UPDATED == 0 ]]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  echo "apt-get install $*"
  apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v sqlite3 >/dev/null || missing+=(sqlite3)
command -v systemd-analyze >/dev/null || missing+=(systemd)
[[ -x /usr/sbin/nginx ]] || missing+=(nginx)
if [[ " $CHECKS " == *" container "* ]]; then
  command -v podman >/dev/null || missing+=(podman uidmap slirp4netns fuse-overlayfs)
  # runc: where crun cannot set the container's rlimits (deploy/container-build.sh).
  command -v runc >/dev/null || missing+=(runc)
  command -v objcopy >/dev/null || missing+=(binutils)
  [[ -s /etc/ssl/certs/ca-certificates.crt ]] || missing+=(ca-certificates)
fi
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "${missing[@]}"
fi

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits until URL answers (any HTTP status), or fails naming LOG.
wait_http() {
  local url="$1" log="$2"
  for _ in $(seq 150); do
    if curl -sk -o /dev/null "$url"; then
      return 0
    fi
    sleep 0.1
  done
  cat "$log" >&2 || true
  fail "nothing answered at $url"
}

# Starts `newsdesk serve` in the background with the variables given; its pid is
# in $SERVED.
serve() {
  local log="$1"
  shift
  env "$@" RUST_LOG=warn NEWSDESK_WORKERS=off "$BIN" serve >"$log" 2>&1 &
  SERVED=$!
  PIDS+=("$SERVED")
}

# ---------------------------------------------------------------------------
check_systemd() {
  echo "== systemd: deploy/newsdesk.service"
  local t0 root unit out score
  t0=$(date +%s)
  root="$WORK/systemd-root"
  unit=/etc/systemd/system/newsdesk.service
  mkdir -p "$root/usr/lib/systemd" "$root/etc/systemd/system" "$root/usr/local/bin"
  # The system's own units (targets the unit's dependencies name), the binary where
  # ExecStart expects it, the EnvironmentFile.
  cp -a /usr/lib/systemd/system "$root/usr/lib/systemd/"
  exec_start="$(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' deploy/newsdesk.service)"
  mkdir -p "$root$(dirname "$exec_start")"
  cp "$BIN" "$root$exec_start"
  env_file="$(sed -n 's/^EnvironmentFile=-\{0,1\}//p' deploy/newsdesk.service)"
  install -D -m 0600 /dev/null "$root$env_file"
  cp deploy/newsdesk.service "$root$unit"
  if ! out="$(systemd-analyze verify --root="$root" "$unit" 2>&1)"; then
    echo "$out" >&2
    fail "systemd-analyze verify refused deploy/newsdesk.service"
  fi
  if [[ -n "$out" ]]; then
    echo "$out" >&2
    fail "systemd-analyze verify warned about deploy/newsdesk.service"
  fi
  ok "systemd-analyze verify: no error, no warning"
  out="$(systemd-analyze security --offline=yes --root="$root" "$unit" 2>&1)" ||
    { echo "$out" >&2; fail "systemd-analyze security failed"; }
  echo "$out" | grep -E '^✗' | sed 's/^/    /' || true
  score="$(echo "$out" | sed -n 's/.*Overall exposure level for newsdesk.service: \([0-9.]*\) \(.*\)/\1 \2/p')"
  [[ -n "$score" ]] || { echo "$out" >&2; fail "no exposure level in systemd-analyze security's answer"; }
  echo "  systemd-analyze security: exposure $score"
  awk -v s="${score%% *}" 'BEGIN { exit !(s < 2.0) }' ||
    fail "exposure ${score} is above 2.0 (not OK): harden the unit again"
  ok "exposure below 2.0"
  elapsed "$t0"
}

# ---------------------------------------------------------------------------
check_backup() {
  echo "== backup: newsdesk backup during writes, restored and served"
  local t0 dir port token base writer before after in_backup served out
  t0=$(date +%s)
  dir="$WORK/backup"
  mkdir -p "$dir"
  token="deploy-check-admin-token-0123"
  DATABASE_URL="sqlite://$dir/live.db" RUST_LOG=warn "$BIN" demo >/dev/null
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  serve "$dir/live.log" DATABASE_URL="sqlite://$dir/live.db" NEWSDESK_BIND="127.0.0.1:$port" \
    NEWSDESK_ADMIN_TOKEN="$token"
  local live=$SERVED
  wait_http "$base/healthz" "$dir/live.log"
  # The writer: published items, one after another, as fast as the API takes them.
  (
    n=0
    while :; do
      n=$((n + 1))
      if ! curl -sS -f -o /dev/null --max-time 30 -X POST "$base/api/v1/items" \
        -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
        -d "{\"title\":\"Backup check item $n\",\"categories\":[\"news\"],\"status\":\"published\",\"body\":\"Item $n, written during the backup.\"}" \
        2>>"$dir/writer.err"; then
        echo "item $n refused or not answered" >>"$dir/writer.err"
        exit 1
      fi
      # Written whole, then renamed: a reader never sees a half-written count.
      echo "$n" >"$dir/written.tmp" && mv -f "$dir/written.tmp" "$dir/written"
    done
  ) &
  writer=$!
  PIDS+=("$writer")
  written() { cat "$dir/written" 2>/dev/null || echo 0; }
  # Twenty items before the backup begins; a loaded machine gets 60 s for them.
  for _ in $(seq 600); do
    [[ $(written) -ge 20 ]] && break
    kill -0 "$writer" 2>/dev/null || break
    sleep 0.1
  done
  before="$(written)"
  if [[ $before -lt 20 ]]; then
    echo "  the writer's errors:" >&2
    sed 's/^/    /' "$dir/writer.err" >&2 2>/dev/null || true
    echo "  the server's log (last 20 lines):" >&2
    tail -n 20 "$dir/live.log" | sed 's/^/    /' >&2 || true
    fail "the writer wrote $before items before the backup (20 needed, 60 s allowed)"
  fi
  if ! out="$(DATABASE_URL="sqlite://$dir/live.db" RUST_LOG=warn "$BIN" backup "$dir/copy.db" 2>&1)"; then
    echo "$out" >&2
    fail "newsdesk backup failed"
  fi
  echo "  $out"
  sleep 0.5
  after="$(written)"
  kill "$writer"
  wait "$writer" 2>/dev/null || true
  [[ $after -gt $before ]] || fail "the writer stopped during the backup ($before, then $after items)"
  ok "the writer went on during the backup (items $before, then $after)"
  [[ "$(sqlite3 "$dir/copy.db" 'PRAGMA integrity_check')" == ok ]] ||
    fail "the backup fails sqlite3's PRAGMA integrity_check"
  ok "sqlite3 PRAGMA integrity_check: ok"
  in_backup="$(sqlite3 "$dir/copy.db" "SELECT COUNT(*) FROM items WHERE title LIKE 'Backup check item %'")"
  [[ $in_backup -ge $before && $in_backup -le $after ]] ||
    fail "the backup holds $in_backup written items; expected between $before and $after"
  # A consistent snapshot: items 1..N, no gap.
  [[ "$(sqlite3 "$dir/copy.db" "SELECT COUNT(*) FROM items WHERE title = 'Backup check item $in_backup'")" == 1 ]] ||
    fail "the backup's items are not the first $in_backup written"
  ok "the backup holds the first $in_backup items written ($before before it began)"
  kill "$live"
  wait "$live" 2>/dev/null || true
  # Restore: the copy is a database file; serve it.
  cp "$dir/copy.db" "$dir/restored.db"
  port="$(free_port)"
  serve "$dir/restored.log" DATABASE_URL="sqlite://$dir/restored.db" NEWSDESK_BIND="127.0.0.1:$port" \
    NEWSDESK_FEED_PAGE_SIZE=1000
  wait_http "http://127.0.0.1:$port/healthz" "$dir/restored.log"
  served="$(curl -sf "http://127.0.0.1:$port/feeds/all.json" |
    python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin)["items"] if i["title"].startswith("Backup check item ")))')"
  [[ $served == "$in_backup" ]] || fail "the restored newsdesk serves $served of the $in_backup items"
  # Read whole, then searched: `curl | grep -q` fails under pipefail when grep, done
  # early, closes the pipe on curl.
  local atom
  atom="$(curl -sf "http://127.0.0.1:$port/feeds/news.atom")" ||
    fail "the restored newsdesk does not serve news.atom"
  [[ $atom == *"Backup check item $in_backup<"* ]] ||
    fail "the restored news.atom lacks the last item backed up"
  ok "a newsdesk started on the restored copy serves all $served items (all.json, news.atom)"
  # The refusals: an existing file, PostgreSQL.
  if DATABASE_URL="sqlite://$dir/restored.db" "$BIN" backup "$dir/copy.db" >/dev/null 2>&1; then
    fail "backup overwrote an existing file"
  fi
  out="$(DATABASE_URL='postgres://newsdesk:secret@db.example/newsdesk' "$BIN" backup "$dir/pg.dump" 2>&1)" &&
    fail "backup of a PostgreSQL database did not refuse"
  [[ "$out" == *"pg_dump --format=custom"* && "$out" != *secret* ]] ||
    fail "the PostgreSQL refusal does not give the pg_dump line (or shows the password): $out"
  ok "refuses an existing file; for PostgreSQL prints the pg_dump line"
  elapsed "$t0"
}

# ---------------------------------------------------------------------------
check_nginx() {
  echo "== nginx: deploy/nginx.conf in front of newsdesk, TLS"
  local t0 dir app_port tls_port plain_port host base h code etag token
  t0=$(date +%s)
  dir="$WORK/nginx"
  mkdir -p "$dir/cache" "$dir/tmp" "$dir/tls"
  host=localhost
  app_port="$(free_port)"
  tls_port="$(free_port)"
  plain_port="$(free_port)"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$host" \
    -addext "subjectAltName=DNS:$host" \
    -keyout "$dir/tls/privkey.pem" -out "$dir/tls/fullchain.pem" 2>/dev/null
  # deploy/nginx.conf as shipped, with the marked values (and the ports) replaced.
  sed -e "s#server 127.0.0.1:8080;#server 127.0.0.1:$app_port;#" \
    -e "s#news.example.edu#$host#g" \
    -e "s#/etc/ssl/newsdesk/#$dir/tls/#g" \
    -e "s#/var/cache/nginx/newsdesk#$dir/cache#" \
    -e "s#listen 443 ssl http2;#listen 127.0.0.1:$tls_port ssl http2;#" \
    -e "s#listen 80;#listen 127.0.0.1:$plain_port;#" \
    -e "/listen \[::\]/d" \
    deploy/nginx.conf >"$dir/newsdesk.conf"
  grep -q "127.0.0.1:$app_port" "$dir/newsdesk.conf" || fail "deploy/nginx.conf: the upstream line changed; update this check"
  local user_line=""
  [[ $EUID == 0 ]] && user_line="user root;"
  cat >"$dir/nginx.conf" <<EOF
$user_line
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  access_log $dir/access.log;
  client_body_temp_path $dir/tmp/body;
  proxy_temp_path $dir/tmp/proxy;
  fastcgi_temp_path $dir/tmp/fastcgi;
  uwsgi_temp_path $dir/tmp/uwsgi;
  scgi_temp_path $dir/tmp/scgi;
  include $dir/newsdesk.conf;
}
EOF
  /usr/sbin/nginx -t -q -p "$dir" -c "$dir/nginx.conf" || fail "nginx -t refused deploy/nginx.conf"
  ok "nginx -t accepts deploy/nginx.conf"

  DATABASE_URL="sqlite://$dir/n.db" RUST_LOG=warn "$BIN" demo >/dev/null
  printf 'a long enough password\n' |
    DATABASE_URL="sqlite://$dir/n.db" RUST_LOG=warn "$BIN" user add ops --role admin --password-stdin >/dev/null
  serve "$dir/newsdesk.log" DATABASE_URL="sqlite://$dir/n.db" NEWSDESK_BIND="127.0.0.1:$app_port" \
    NEWSDESK_BASE_URL="https://$host:$tls_port" NEWSDESK_TRUST_FORWARDED_FOR=on \
    NEWSDESK_SUBSCRIBE_RATE_PER_HOUR=2 NEWSDESK_OUTBOX_DIR="$dir/outbox"
  wait_http "http://127.0.0.1:$app_port/healthz" "$dir/newsdesk.log"
  /usr/sbin/nginx -p "$dir" -c "$dir/nginx.conf" &
  PIDS+=("$!")
  base="https://$host:$tls_port"
  local C=(curl -s --cacert "$dir/tls/fullchain.pem" --resolve "$host:$tls_port:127.0.0.1")
  wait_http "$base/healthz" "$dir/error.log"

  # Plain HTTP is sent to HTTPS.
  h="$(curl -s -D - -o /dev/null "http://127.0.0.1:$plain_port/feeds/news.rss" -H "Host: $host")"
  [[ "$h" == *" 301 "* && "$h" == *"Location: https://$host/feeds/news.rss"* ]] ||
    fail "plain HTTP is not redirected to HTTPS: $h"
  ok "http:// answers 301 to https://"

  # Feeds through TLS (the certificate is checked: --cacert, no -k).
  local feed type
  for feed in "news.rss application/rss+xml" "events.atom application/atom+xml" \
    "all.json application/feed+json" "events.ics text/calendar"; do
    type="${feed#* }"
    feed="${feed%% *}"
    h="$("${C[@]}" -D - -o "$dir/body" "$base/feeds/$feed")"
    [[ "$h" == "HTTP/2 200"* ]] || fail "/feeds/$feed through nginx: $(head -n1 <<<"$h")"
    grep -qi "^content-type: $type" <<<"$h" || fail "/feeds/$feed: content type is not $type: $h"
    [[ -s "$dir/body" ]] || fail "/feeds/$feed: empty body"
  done
  ok "feeds over HTTP/2 and TLS: 200 with their content types"
  local rss
  rss="$("${C[@]}" "$base/feeds/news.rss")" || fail "news.rss through nginx failed"
  [[ $rss == *"<link>$base/"* ]] || fail "feed links do not use the public https:// address"
  ok "feed links use NEWSDESK_BASE_URL ($base)"
  h="$("${C[@]}" -D - -o /dev/null "$base/feeds/news.atom")"
  etag="$(sed -n 's/^etag: *//Ip' <<<"$h" | tr -d '\r')"
  [[ -n "$etag" ]] || fail "/feeds/news.atom has no ETag through nginx: $h"
  code="$("${C[@]}" -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$base/feeds/news.atom")"
  [[ $code == 304 ]] || fail "If-None-Match $etag got $code, not 304"
  code="$("${C[@]}" -o /dev/null -w '%{http_code}' -H 'If-None-Match: "stale"' "$base/feeds/news.atom")"
  [[ $code == 200 ]] || fail "a stale If-None-Match got $code, not 200"
  ok "If-None-Match: 304 for the current ETag ($etag), 200 for a stale one"
  for _ in 1 2; do
    h="$("${C[@]}" -D - -o /dev/null "$base/feeds/news.atom")"
  done
  grep -qi '^x-cache-status: HIT' <<<"$h" && fail "nginx served a feed (Cache-Control: no-cache) from its cache"
  for _ in 1 2; do
    h="$("${C[@]}" -D - -o /dev/null "$base/static/site.css")"
  done
  grep -qi '^x-cache-status: HIT' <<<"$h" || fail "the public stylesheet is not cached: $h"
  ok "nginx caches the public stylesheet, not the feeds"

  # Admin sign-in through TLS: the form's cookie and token, then the session.
  local jar="$dir/cookies"
  h="$("${C[@]}" -D - -o "$dir/signin.html" -c "$jar" "$base/admin/sign-in")"
  grep -qi '^set-cookie: nd_signin=.*HttpOnly.*Secure' <<<"$h" ||
    fail "the sign-in form's cookie is not HttpOnly and Secure: $h"
  token="$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$dir/signin.html")"
  [[ -n "$token" ]] || fail "no CSRF token in the sign-in form"
  h="$("${C[@]}" -D - -o /dev/null -b "$jar" -c "$jar" "$base/admin/sign-in" \
    --data-urlencode "csrf=$token" --data-urlencode "next=/admin" \
    --data-urlencode "name=ops" --data-urlencode "password=a long enough password")"
  [[ "$h" == "HTTP/2 303"* ]] || fail "signing in through nginx: $(head -n1 <<<"$h")"
  grep -qi '^set-cookie: nd_session=.*HttpOnly.*Secure' <<<"$h" ||
    fail "the session cookie is not HttpOnly and Secure: $h"
  grep -qi '^strict-transport-security: max-age=' <<<"$h" || fail "no Strict-Transport-Security"
  for _ in 1 2; do
    h="$("${C[@]}" -D - -o "$dir/admin.html" -b "$jar" "$base/admin")"
  done
  [[ "$h" == "HTTP/2 200"* ]] || fail "/admin with the session: $(head -n1 <<<"$h")"
  grep -qi '^cache-control: .*no-store' <<<"$h" || fail "/admin is not marked no-store: $h"
  grep -qi '^x-cache-status: \(HIT\|MISS\)' <<<"$h" && fail "nginx looked /admin up in its cache: $h"
  h="$("${C[@]}" -D - -o /dev/null "$base/admin")"
  [[ "$h" == "HTTP/2 303"* ]] || fail "/admin without the session: $(head -n1 <<<"$h") (served from a cache?)"
  ok "admin sign-in over TLS: 303, session cookie HttpOnly and Secure, pages no-store, never cached"

  # The subscribe limit (2 per hour here) counts the address nginx saw, for each
  # address apart; what a client writes in X-Forwarded-For changes nothing.
  subscribe() {
    "${C[@]}" --interface "$1" -o /dev/null -w '%{http_code}' "$base/subscribe" \
      -H 'X-Forwarded-For: 203.0.113.9' \
      --data-urlencode "email=$2@example.org" --data-urlencode "list=partners"
  }
  local a1 a2 a3 b1 b2 b3
  a1="$(subscribe 127.0.0.2 a1)"
  a2="$(subscribe 127.0.0.2 a2)"
  a3="$(subscribe 127.0.0.2 a3)"
  b1="$(subscribe 127.0.0.3 b1)"
  b2="$(subscribe 127.0.0.3 b2)"
  b3="$(subscribe 127.0.0.3 b3)"
  echo "  subscribe from 127.0.0.2: $a1 $a2 $a3; from 127.0.0.3: $b1 $b2 $b3"
  [[ $a1 == 200 && $a2 == 200 && $a3 == 429 ]] ||
    fail "127.0.0.2 was not limited after 2 sign-ups ($a1 $a2 $a3)"
  [[ $b1 == 200 && $b2 == 200 && $b3 == 429 ]] ||
    fail "127.0.0.3 was not limited on its own ($b1 $b2 $b3)"
  ok "the subscribe limit applies to each client address apart"
  elapsed "$t0"
}

# ---------------------------------------------------------------------------
check_container() {
  echo "== container: Containerfile with podman"
  local t0 out
  t0=$(date +%s)
  if ! out="$(bash deploy/container-build.sh "$BIN" 2>&1)"; then
    echo "$out" | sed 's/^/    /'
    if [[ "${NEWSDESK_REQUIRE_CONTAINER:-0}" == 1 ]]; then
      fail "the container build or run failed (above)"
    fi
    echo "  NOT CHECKED: the container could not be built or run on this machine (above says" \
      "what refused); NEWSDESK_REQUIRE_CONTAINER=1 makes this fail"
  else
    echo "$out" | sed 's/^/    /'
    ok "the image runs newsdesk --version"
  fi
  elapsed "$t0"
}

START=$(date +%s)
for check in $CHECKS; do
  "check_$check"
done
echo "deploy-checks: all passed ($CHECKS) in $(($(date +%s) - START)) s"
