#!/usr/bin/env bash
# Several instances on one PostgreSQL: delivery rate of one digest with 1 and 3
# `newsdesk serve` instances to Postfix's smtp-sink on loopback, the CPU time per
# message of newsdesk beside that of the PostgreSQL backends serving it, and each
# instance's peak memory (VmHWM). bench/multi.py does the work; see bench/README.md.
#
#   bash bench/multi.sh                                  # 100,000 readers, 1 then 3 instances
#   bash bench/multi.sh --readers 1000000 --instances 3  # the million-reader digest
#   NEWSDESK_BIN=path/to/newsdesk bash bench/multi.sh    (default: the release build)
#
# PostgreSQL at NEWSDESK_CHAOS_POSTGRES (default postgres://postgres@127.0.0.1:5432);
# databases newsdesk_chaos_* are made and dropped. Loopback only; every process started
# is stopped on exit. Needs root only to install postfix (for smtp-sink) and psql.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v psql >/dev/null || need+=(postgresql-client)
[[ -x /usr/sbin/smtp-sink ]] || need+=(postfix)
if [[ ${#need[@]} -gt 0 ]]; then
  echo "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  postfix stop >/dev/null 2>&1 || true
fi

if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  bin="$NEWSDESK_BIN"
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/newsdesk"
fi
[[ -x "$bin" ]] || { echo "no newsdesk binary at $bin" >&2; exit 2; }

exec python3 bench/multi.py --bin "$(realpath "$bin")" \
  --postgres "${NEWSDESK_CHAOS_POSTGRES:-postgres://postgres@127.0.0.1:5432}" "$@"
