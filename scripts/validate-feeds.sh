#!/usr/bin/env bash
# Starts newsdesk on a loopback port with the demo content plus one hostile item, then
# checks the feeds it serves:
#   - every Atom feed (all, news-events, news, events, and page 2 of all) against the
#     Atom RELAX NG schema with jing;
#   - RSS, Atom and JSON Feed with scripts/check_feeds.py (feedparser: well-formed, no
#     bozo, ids/titles/links, the hostile title intact, no script left in the HTML);
#   - the iCalendar feeds and the OPML list for basic shape;
#   - the feeds per language (?lang=zh, ?lang=en; an item with a Chinese version is
#     posted too): the same checks, plus their language (the feed's and each entry's,
#     as feedparser reads them) and the iCalendar LANGUAGE parameters.
# The page size is 3, so paging links (first/previous/next/last) are exercised.
#
# Environment:
#   ATOM_RNG       the Atom schema (default: tests/schema/atom.rng, the RFC 4287 grammar)
#   NEWSDESK_BIN   a built binary to use instead of building target/debug/newsdesk
#   PYTHON         the Python with feedparser (default: python3)
#   KEEP_FEEDS=1   keep the downloaded feeds and the server log (path printed)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-python3}"
ATOM_RNG="${ATOM_RNG:-$ROOT/tests/schema/atom.rng}"

die() { echo "validate-feeds: $*" >&2; exit 1; }

[[ -f "$ATOM_RNG" ]] || die "the Atom schema was not found at $ATOM_RNG (set ATOM_RNG)"
command -v jing >/dev/null || die "jing is not installed (apt-get install jing; .ci/run installs it)"
command -v curl >/dev/null || die "curl is not installed (apt-get install curl)"
"$PYTHON" -c 'import feedparser' 2>/dev/null \
  || die "the Python package feedparser is missing for $PYTHON ($PYTHON -m pip install feedparser; .ci/run installs it)"

if [[ -n "${NEWSDESK_BIN:-}" ]]; then
  BIN="$NEWSDESK_BIN"
else
  echo "--- building newsdesk (debug)"
  cargo build --quiet --bin newsdesk
  BIN="${CARGO_TARGET_DIR:-$ROOT/target}/debug/newsdesk"
fi
[[ -x "$BIN" ]] || die "no executable at $BIN"

WORK="$(mktemp -d -t newsdesk-feeds.XXXXXX)"
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "$WORK/server.log" ]]; then
    echo "--- last lines of the server log" >&2
    tail -n 30 "$WORK/server.log" >&2 || true
  fi
  if [[ "${KEEP_FEEDS:-0}" == 1 ]]; then
    echo "feeds and server log kept in $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

TOKEN="validate-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
PORT=""
for attempt in 1 2 3; do
  PORT="$(free_port)"
  BASE="http://127.0.0.1:$PORT"
  echo "--- starting newsdesk on $BASE (attempt $attempt)"
  env DATABASE_URL="sqlite://$WORK/newsdesk.db" \
      NEWSDESK_BIND="127.0.0.1:$PORT" \
      NEWSDESK_ADMIN_TOKEN="$TOKEN" \
      NEWSDESK_FEED_PAGE_SIZE=3 \
      NEWSDESK_OUTBOX_DIR="$WORK/outbox" \
      RUST_LOG="${RUST_LOG:-info}" \
      "$BIN" serve --demo >>"$WORK/server.log" 2>&1 </dev/null &
  SERVER_PID=$!
  ready=0
  for _ in $(seq 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then break; fi
    if curl -fsS -o /dev/null --max-time 2 "$BASE/readyz" 2>/dev/null; then ready=1; break; fi
    sleep 0.2
  done
  [[ $ready == 1 ]] && break
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    die "newsdesk did not become ready within 60 s"
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  # The port may have been taken between choosing and binding: try another.
  grep -q "binding" "$WORK/server.log" || die "newsdesk exited before it was ready"
done
[[ -n "$SERVER_PID" ]] || die "newsdesk could not bind a port"
echo "ready"

# The quotes are meant literally: they are part of the test.
# shellcheck disable=SC2089,SC2090
export HOSTILE_TITLE=$'<script>alert("x")</script> & ]]> "quotes" \'apos\' 🎉 研讨会'
"$PYTHON" - "$WORK/hostile.json" <<'EOF'
import json, os, sys
body = (
    "Hostile body: <img src=x onerror=alert(1)> and "
    "[a link](javascript:alert(2)) and <a href=\"javascript:alert(3)\">another</a>.\n\n"
    "CDATA end ]]> and an <iframe src=\"https://evil.example/\"></iframe> and "
    "<b onclick=\"alert(4)\">bold</b>; 研讨会 🎉 & \"quotes\" 'apos'\n"
)
item = {
    "title": os.environ["HOSTILE_TITLE"],
    "summary": "Summary with <b>markup</b> & ]]> and 研讨会",
    "body": body,
    "categories": ["events"],
    "status": "published",
    "event": {
        "starts_at": "2023-11-09T14:00",
        "ends_at": "2023-11-09T17:30",
        "timezone": "Asia/Shanghai",
        "venue": "Liuxiandong Campus <b>&</b> \"Hall\"",
        "online_url": "https://meet.example.org/x?a=1&b=2",
        "mode": "hybrid",
    },
}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(item, f, ensure_ascii=False)
EOF
echo "--- posting the hostile item"
status="$(curl -sS -o "$WORK/hostile-response.json" -w '%{http_code}' \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data-binary @"$WORK/hostile.json" "$BASE/api/v1/items")"
if [[ "$status" != 200 && "$status" != 201 ]]; then
  cat "$WORK/hostile-response.json" >&2 || true
  die "POST /api/v1/items answered $status"
fi
echo "created (HTTP $status)"

# An event with a Chinese version, posted after the hostile one: the newest of events.
export TRANSLATED_EN="Open day on campus"
export TRANSLATED_ZH="校园开放日"
"$PYTHON" - "$WORK/translated.json" <<'EOF'
import json, os, sys
item = {
    "title": os.environ["TRANSLATED_EN"],
    "summary": "Visit the labs",
    "body": "Come and **see** the labs.",
    "language": "en",
    "categories": ["events"],
    "status": "published",
    "event": {
        "starts_at": "2023-11-23T14:00",
        "ends_at": "2023-11-23T17:30",
        "timezone": "Asia/Shanghai",
        "venue": "Main Hall",
        "online_url": "https://meet.example.org/open-day",
        "mode": "hybrid",
    },
    "translations": [{
        "language": "zh",
        "title": os.environ["TRANSLATED_ZH"],
        "summary": "欢迎参观实验室",
        "body": "欢迎来**参观**实验室。",
        "venue": "大礼堂",
    }],
}
with open(sys.argv[1], "w", encoding="utf-8") as f:
    json.dump(item, f, ensure_ascii=False)
EOF
echo "--- posting an item with a Chinese version"
status="$(curl -sS -o "$WORK/translated-response.json" -w '%{http_code}' \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data-binary @"$WORK/translated.json" "$BASE/api/v1/items")"
if [[ "$status" != 201 ]]; then
  cat "$WORK/translated-response.json" >&2 || true
  die "POST /api/v1/items (translated) answered $status"
fi
echo "created (HTTP $status)"

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

# name -> path; page 2 of "all" exists with 9 items at 3 per page.
declare -a FETCHES=()
for scope in all news-events news events; do
  for ext in atom rss json ics; do
    FETCHES+=("$scope.$ext=/feeds/$scope.$ext")
  done
done
for ext in atom rss json; do
  FETCHES+=("all-page2.$ext=/feeds/all.$ext?page=2")
done
for lang in zh en; do
  for scope in all events; do
    for ext in atom rss json ics; do
      FETCHES+=("$scope.$lang.$ext=/feeds/$scope.$ext?lang=$lang")
    done
  done
  for ext in atom rss json; do
    FETCHES+=("all-page2.$lang.$ext=/feeds/all.$ext?lang=$lang&page=2")
  done
  FETCHES+=("feeds.$lang.opml=/feeds.opml?lang=$lang")
done
FETCHES+=("feeds.opml=/feeds.opml")
FETCHES+=("digests.atom=/digests/partners.atom")
FETCHES+=("digests.zh.atom=/digests/partners.atom?lang=zh")

echo "--- sending the 2023-W45 digest of partners (to .eml files), for the archive feed"
code="$(curl -sS -o "$WORK/digest.json" -w '%{http_code}' --max-time 30 -X POST \
  -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  -d '{"period": "2023-W45"}' "$BASE/api/v1/lists/partners/digests")" || code=error
[[ "$code" == 201 ]] || fail "POST /api/v1/lists/partners/digests: HTTP $code $(cat "$WORK/digest.json" 2>/dev/null)"

echo "--- downloading feeds"
for pair in "${FETCHES[@]}"; do
  name="${pair%%=*}"
  path="${pair#*=}"
  if code="$(curl -sS -o "$WORK/$name" -D "$WORK/$name.headers" -w '%{http_code}' --max-time 30 "$BASE$path")" \
     && [[ "$code" == 200 ]]; then
    ctype="$(grep -i '^content-type:' "$WORK/$name.headers" | head -n1 | cut -d' ' -f2- | tr -d '\r')"
    printf '  %-34s %7s bytes  %s\n' "$path" "$(wc -c <"$WORK/$name")" "$ctype"
    [[ -s "$WORK/$name" ]] || fail "$path: empty body"
  else
    fail "$path: HTTP ${code:-error}"
  fi
done

echo "--- jing (Atom RELAX NG: $ATOM_RNG)"
for name in all.atom news-events.atom news.atom events.atom all-page2.atom digests.atom digests.zh.atom \
            all.zh.atom events.zh.atom all-page2.zh.atom all.en.atom events.en.atom all-page2.en.atom; do
  [[ -s "$WORK/$name" ]] || { fail "jing $name: nothing to validate"; continue; }
  if out="$(jing "$ATOM_RNG" "$WORK/$name" 2>&1)"; then
    echo "  ok   $name"
  else
    fail "jing $name"
    printf '%s\n' "$out" | sed "s|$WORK/||" | head -n 40
  fi
done

echo "--- feedparser / JSON Feed (scripts/check_feeds.py)"
check() {
  if ! (cd "$WORK" && "$PYTHON" "$ROOT/scripts/check_feeds.py" \
       --forbid onerror --forbid onclick --forbid 'javascript:' --forbid iframe "$@"); then
    fail "check_feeds.py ${*: -3}"
  fi
}
# The hostile item is the newest and is filed under events, so it leads page 1 of these.
# The forbidden words are looked for in the raw bytes: they occur only in the hostile
# body's markup, which the sanitiser must have removed (escaped or not, none may remain).
for scope in all news-events events; do
  check --expect-title "$HOSTILE_TITLE" "$scope.rss" "$scope.atom" "$scope.json"
done
check news.rss news.atom news.json
check --expect-rel first --expect-rel previous --expect-rel next --expect-rel last \
  all-page2.rss all-page2.atom all-page2.json

echo "--- feeds per language (feedparser / JSON Feed: the feed's language and each entry's)"
# Page 1 of events: the translated item, the hostile one (English only), the demo's
# final session (English, with a Chinese version). Without lang each entry is its
# original; in zh the versions, the hostile one its English original marked en; every
# entry says its language.
EN_ONLY="2023 UNEVOC Network Coaction Initiative: final session and closing ceremony"
FINAL_ZH="2023 UNEVOC网络协作倡议项目：最后一场研讨会暨闭幕式"
check --every-entry-language --expect-title "$HOSTILE_TITLE" \
  --expect-entry "$TRANSLATED_EN=en" --expect-entry "$EN_ONLY=en" \
  events.rss events.atom events.json
check --expect-language zh --every-entry-language --expect-title "$HOSTILE_TITLE" \
  --expect-entry "$TRANSLATED_ZH=zh" --expect-entry "$HOSTILE_TITLE=en" --expect-entry "$FINAL_ZH=zh" \
  events.zh.rss events.zh.atom events.zh.json
check --expect-language en --every-entry-language --expect-title "$HOSTILE_TITLE" \
  --expect-entry "$TRANSLATED_EN=en" --expect-entry "$EN_ONLY=en" \
  events.en.rss events.en.atom events.en.json
check --expect-language zh --every-entry-language --expect-entry "$TRANSLATED_ZH=zh" \
  all.zh.rss all.zh.atom all.zh.json
check --expect-language en --every-entry-language --expect-entry "$TRANSLATED_EN=en" \
  all.en.rss all.en.atom all.en.json
check --expect-language zh --every-entry-language \
  --expect-rel first --expect-rel previous --expect-rel next --expect-rel last \
  all-page2.zh.rss all-page2.zh.atom all-page2.zh.json
check --expect-language en --every-entry-language \
  --expect-rel first --expect-rel previous --expect-rel next --expect-rel last \
  all-page2.en.rss all-page2.en.atom all-page2.en.json

# The archive of past digests in Chinese: the list and the week named in it.
check --expect-language zh --every-entry-language \
  --expect-entry "合作院校通讯：2023年11月6日 – 2023年11月12日=zh" digests.zh.atom
check --expect-entry "Partner institutions digest: 6–12 November 2023=en" digests.atom

echo "--- iCalendar and OPML shape"
for name in all.ics news-events.ics news.ics events.ics all.zh.ics events.zh.ics all.en.ics events.en.ics; do
  [[ -s "$WORK/$name" ]] || continue
  if "$PYTHON" - "$WORK/$name" <<'EOF'
import sys
data = open(sys.argv[1], "rb").read()
text = data.decode("utf-8")
problems = []
if not text.startswith("BEGIN:VCALENDAR\r\n"):
    problems.append("does not start with BEGIN:VCALENDAR CRLF")
if not text.rstrip("\r\n").endswith("END:VCALENDAR"):
    problems.append("does not end with END:VCALENDAR")
if "\n" in text.replace("\r\n", ""):
    problems.append("bare LF line ending")
long_lines = [l for l in text.split("\r\n") if len(l.encode("utf-8")) > 75]
if long_lines:
    # RFC 5545 3.1: SHOULD NOT, so a warning only.
    print(f"  warn {sys.argv[1].rsplit('/', 1)[-1]}: {len(long_lines)} lines longer than 75 octets (unfolded)")
unfolded = text.replace("\r\n ", "").split("\r\n")
name = sys.argv[1].rsplit('/', 1)[-1]
summaries = [l for l in unfolded if l.startswith("SUMMARY")]
if any(not l.startswith("SUMMARY;LANGUAGE=") for l in summaries):
    problems.append("a SUMMARY without its LANGUAGE parameter")
if ".zh." in name and "SUMMARY;LANGUAGE=zh:校园开放日" not in summaries:
    problems.append("no SUMMARY;LANGUAGE=zh: of the Chinese version")
if problems:
    print("     - " + "\n     - ".join(problems))
    sys.exit(1)
print(f"  ok   {name}: {text.count('BEGIN:VEVENT')} events, every SUMMARY with its LANGUAGE")
EOF
  then :; else fail "iCalendar shape of $name"; fi
done
if [[ -s "$WORK/feeds.opml" ]]; then
  # One Atom feed per category (and the site's), the originals' at the top and each
  # language's in a group of its own: a reader importing it must not get an item once
  # per format. With ?lang=, that language's feeds only.
  if "$PYTHON" - "$WORK/feeds.opml" "$WORK/feeds.zh.opml" "$WORK/feeds.en.opml" <<'EOF'
import sys, xml.dom.minidom as m
def children(node):
    return [c for c in node.childNodes if c.nodeType == c.ELEMENT_NODE and c.tagName == "outline"]
def body(path):
    return m.parse(path).getElementsByTagName("body")[0]
top = children(body(sys.argv[1]))
originals = [o for o in top if o.getAttribute("xmlUrl")]
groups = [o for o in top if not o.getAttribute("xmlUrl")]
assert originals, "no outlines"
names = [g.getAttribute("text") for g in groups]
assert names == ["English", "中文"], names
every = originals + [f for g in groups for f in children(g)]
pages = [o.getAttribute("htmlUrl") for o in every]
assert len(pages) == len(set(pages)), "a category is listed more than once"
assert all(o.getAttribute("xmlUrl").split("?")[0].endswith(".atom") for o in every), "not all Atom"
for g, lang in zip(groups, ["en", "zh"]):
    assert len(children(g)) == len(originals), lang
    assert all(f.getAttribute("xmlUrl").endswith("?lang=" + lang) for f in children(g)), lang
# The demo's categories have Chinese names: the Chinese group names them so, the
# English one (and the originals) by their default names.
zh_titles = [f.getAttribute("title") for f in children(groups[1])]
assert any("活动" in t for t in zh_titles), zh_titles
assert not any("活动" in o.getAttribute("title") for o in originals + children(groups[0])), "Chinese names outside the Chinese group"
for path, lang in zip(sys.argv[2:], ["zh", "en"]):
    only = children(body(path))
    assert len(only) == len(originals), path
    assert all(o.getAttribute("xmlUrl").endswith("?lang=" + lang) for o in only), path
print(f"  ok   feeds.opml: {len(originals)} outlines, one Atom feed each, and a group like it per language ({', '.join(names)})")
EOF
  then
    :
  else
    fail "feeds.opml is not one well-formed Atom outline per category and language"
  fi
fi

echo
if [[ $failures -gt 0 ]]; then
  echo "validate-feeds: $failures check(s) failed"
  exit 1
fi
echo "validate-feeds: all feed checks passed"
