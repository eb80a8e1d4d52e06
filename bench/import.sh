#!/usr/bin/env bash
# CSV import benchmark: ROWS contacts (default 100000) into a fresh SQLite database with
# `newsdesk subscribers import`, timed, with the process's peak memory (max RSS).
# Run again with ROWS=1000000 to see memory stay flat as the file grows.
# NEWSDESK_BIN=path/to/newsdesk measures a given binary (e.g. an older build).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${ROWS:-100000}"
if [ ! -x /usr/bin/time ]; then
  apt-get update -qq && apt-get install -y -qq time >/dev/null
fi
if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  bin="$NEWSDESK_BIN"
else
  cargo build --release --quiet
  bin="${CARGO_TARGET_DIR:-$PWD/target}/release/newsdesk"
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export DATABASE_URL="sqlite://$work/bench.db" RUST_LOG=warn
"$bin" demo >/dev/null
python3 - "$ROWS" "$work/contacts.csv" <<'PY'
import sys
rows, path = int(sys.argv[1]), sys.argv[2]
partners = ["Temasek Polytechnic of Singapore", "University Tun Hussein Onn Malaysia", ""]
with open(path, "w", encoding="utf-8") as f:
    f.write("email,name,partner,language,department\n")
    for n in range(rows):
        f.write(f"contact{n}@staff{n % 97}.example.edu,Contact Number {n},{partners[n % 3]},en,Dept {n % 13}\n")
PY
size=$(stat -c %s "$work/contacts.csv")
echo "file: $ROWS rows, $size bytes"
run() {
  /usr/bin/time -f "%e s, peak RSS %M KiB" "$bin" subscribers import "$work/contacts.csv" --list partners 2>"$work/time.txt" | tail -n 1
  tail -n 1 "$work/time.txt"
}
echo "first import (all rows new):"
run
echo "second import of the same file (nothing changes):"
run
