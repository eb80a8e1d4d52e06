#!/usr/bin/env bash
# Page throughput (issue 12 #6): the front page and an item page, each beside nginx
# serving the very same bytes, and the feed for reference, with bench/feeds.sh (one
# build, one run per path). Run by hand, not in CI. See bench/README.md.
#
# Environment: as bench/feeds.sh (DURATION, THREADS, CONNECTIONS, ROUNDS, TARGET,
# NEWSDESK_BIN, KEEP), and PAGES="/ /items/SLUG ..." for the paths to measure.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PAGES="${PAGES:-/ /items/unevoc-coaction-initiative-2023-approved /feeds/all.rss}"
if [[ -z "${NEWSDESK_BIN:-}" ]]; then
  echo "--- cargo build --release"
  cargo build --release --quiet --bin newsdesk
  export NEWSDESK_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/newsdesk"
fi
OUT="$(mktemp -t newsdesk-pages.XXXXXX)"
trap 'rm -f "$OUT"' EXIT
status=0
for path in $PAGES; do
  echo
  echo "##### $path"
  rc=0
  FEED="$path" bash "$ROOT/bench/feeds.sh" | tee -a "$OUT" || rc=$?
  [[ $rc -eq 0 || $rc -eq 3 ]] || exit "$rc"
  [[ $rc -eq 0 ]] || status=3
done
echo
echo "=== summary (newsdesk, nginx serving the same bytes, ratio)"
awk '/^=== feed benchmark:/ { path = $4; sub(/,$/, "", path) }
     /^    newsdesk  / { nd = $2 }
     /^    nginx     / { ng = $2 }
     /ratio newsdesk\/nginx/ { printf "    %-55s newsdesk %10s req/s  nginx %10s req/s  ratio %s\n", path, nd, ng, $4 }' "$OUT"
exit "$status"
