#!/usr/bin/env bash
# Delivery under failure: three `newsdesk serve` instances on one PostgreSQL database
# and one recording SMTP server on loopback (bench/chaos_smtp.py) deliver one digest
# while bench/chaos.py kills, skews or pauses them; every copy is counted at the SMTP
# server. Scenarios (each on a fresh copy of the prepared database):
#   kills  10 random SIGKILLs of the instances, each restarted (3 with --short)
#   skew   one instance's clock 90 s ahead (libfaketime, Debian's faketime package)
#   pause  one instance SIGSTOPped for its lease + 5 s, then SIGCONT
# One RESULT line per scenario; exits 1 when a scenario misses its target (0 gaps
# always; 0 duplicates with skew and with the pause; after kills, duplicates only from
# kills; those at most the messages in flight per kill, each byte-identical to its first
# copy), 2 on a harness error.
#
#   bash bench/chaos.sh                  # 20,000 readers, about 3 to 4 minutes
#   bash bench/chaos.sh --short          # CI form: 2,000 readers, 3 kills; under 3 minutes
#   bash bench/chaos.sh --scenarios kills --readers 5000 --seed 7 --keep
#   NEWSDESK_BIN=path/to/newsdesk bash bench/chaos.sh   (default: the release build)
#
# PostgreSQL at NEWSDESK_CHAOS_POSTGRES (default postgres://postgres@127.0.0.1:5432);
# databases newsdesk_chaos_* are made and dropped. Every process started is stopped on
# exit. Needs root only to install faketime and psql when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v psql >/dev/null || need+=(postgresql-client)
libfaketime="$(ls /usr/lib/*/faketime/libfaketime.so.1 2>/dev/null | head -n 1 || true)"
[[ -n "$libfaketime" ]] || need+=(faketime)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  libfaketime="$(ls /usr/lib/*/faketime/libfaketime.so.1 | head -n 1)"
fi

if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  bin="$NEWSDESK_BIN"
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/newsdesk"
fi
[[ -x "$bin" ]] || { echo "no newsdesk binary at $bin" >&2; exit 2; }

exec python3 bench/chaos.py --bin "$(realpath "$bin")" --libfaketime "$libfaketime" \
  --postgres "${NEWSDESK_CHAOS_POSTGRES:-postgres://postgres@127.0.0.1:5432}" "$@"
