#!/usr/bin/env python3
"""Checks newsdesk feeds the way a feed reader sees them.

Usage:
    check_feeds.py [--expect-title TITLE] [--expect-rel REL ...] [--forbid TEXT ...]
                   [--expect-language LANG] [--expect-entry TITLE=LANG ...]
                   [--every-entry-language] FEED...

Each FEED is an http(s) URL or a file. A feed whose body starts with `{` is read as a
JSON Feed, anything else as RSS/Atom through feedparser.

RSS and Atom: feedparser must report `bozo == 0` (no XML or feed error), there must be
at least one entry, and every entry must have an id, a title and a link.
JSON Feed: it must parse as JSON, name a jsonfeed.org `version`, and hold at least one
item, each with an `id` and a `content_html`.

--expect-title  exactly one entry's title must equal this text, character for character
                (checks that escaping survives the round trip).
--expect-rel    the feed must carry a link with this rel (e.g. first, next, previous,
                last); JSON Feed maps `next` to `next_url`, other rels are not checked.
--forbid        this text (case-insensitive) must not appear anywhere in the raw feed
                (e.g. `onerror`, `javascript:` after sanitisation).
--expect-language
                the feed's own language must be LANG: RSS `<language>`, Atom `xml:lang`
                on `<feed>` (feedparser's `feed.language`), JSON Feed's top-level
                `language`.
--expect-entry  an entry titled exactly TITLE must be in LANG (the last `=` splits):
                Atom the language of its title as feedparser reads it (its own
                `xml:lang`, else the feed's), RSS its `dc:language` else the channel's,
                JSON Feed its `language` else the feed's.
--every-entry-language
                every entry must have a language, found as for --expect-entry.

One summary line per feed; exit status 1 if any feed fails, 2 on bad usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.request
from pathlib import Path

try:
    import feedparser
except ImportError:  # pragma: no cover - reported to the user
    print(
        "check_feeds.py: the Python package 'feedparser' is missing "
        "(python3 -m pip install feedparser)",
        file=sys.stderr,
    )
    sys.exit(2)

JSONFEED_VERSIONS = ("https://jsonfeed.org/version/1", "https://jsonfeed.org/version/1.1")


def load(source: str) -> tuple[bytes, dict[str, str]]:
    """The body and (for URLs) the response headers, lower-cased."""
    if source.startswith(("http://", "https://")):
        req = urllib.request.Request(source, headers={"User-Agent": "newsdesk-check-feeds/1"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            headers = {k.lower(): v for k, v in resp.headers.items()}
            return resp.read(), headers
    return Path(source).read_bytes(), {}


def short(text: str, limit: int = 60) -> str:
    text = text.replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_xml(body: bytes, headers: dict[str, str], args) -> tuple[list[str], str]:
    errors: list[str] = []
    # Only the content type matters to feedparser's decoding; other headers are noise.
    response_headers = {"content-type": headers["content-type"]} if "content-type" in headers else {}
    parsed = feedparser.parse(body, response_headers=response_headers)
    if parsed.bozo:
        errors.append(f"bozo={parsed.bozo}: {parsed.get('bozo_exception')!r}")
    entries = parsed.entries
    if not entries:
        errors.append("no entries")
    for n, entry in enumerate(entries, 1):
        missing = [k for k in ("id", "title", "link") if not entry.get(k)]
        if missing:
            errors.append(f"entry {n} ({short(entry.get('title', '?'))!r}) lacks {', '.join(missing)}")
    titles = [e.get("title", "") for e in entries]
    if args.expect_title is not None:
        errors.extend(title_errors(titles, args.expect_title))
    feed_language = parsed.feed.get("language")
    is_atom = str(parsed.get("version", "")).startswith("atom")

    def entry_language(entry) -> str | None:
        if is_atom:
            return entry.get("title_detail", {}).get("language") or feed_language
        return entry.get("language") or feed_language

    languages = [(e.get("title", ""), entry_language(e)) for e in entries]
    errors.extend(language_errors(feed_language, languages, args))
    rels = {link.get("rel") for link in parsed.feed.get("links", [])}
    for rel in args.expect_rel:
        if rel not in rels:
            errors.append(f"no feed link with rel={rel!r} (found {sorted(r for r in rels if r)})")
    version = parsed.get("version") or "unknown"
    lang = f", language {feed_language}" if feed_language else ""
    return errors, f"{version}{lang}, {len(entries)} entries, links {sorted(r for r in rels if r)}"


def check_json(body: bytes, args) -> tuple[list[str], str]:
    errors: list[str] = []
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return [f"not JSON: {e}"], "json"
    if not isinstance(doc, dict):
        return ["top level is not an object"], "json"
    version = doc.get("version")
    if version not in JSONFEED_VERSIONS:
        errors.append(f"version is {version!r}, want one of {JSONFEED_VERSIONS}")
    if not doc.get("title"):
        errors.append("feed has no title")
    items = doc.get("items")
    if not isinstance(items, list):
        errors.append("items is not a list")
        items = []
    elif not items:
        errors.append("no items")
    for n, item in enumerate(items, 1):
        if not isinstance(item, dict):
            errors.append(f"item {n} is not an object")
            continue
        missing = [k for k in ("id", "content_html") if not item.get(k)]
        if missing:
            errors.append(f"item {n} ({short(str(item.get('title', '?')))!r}) lacks {', '.join(missing)}")
        if "id" in item and not isinstance(item["id"], str):
            errors.append(f"item {n}: id must be a string, got {type(item['id']).__name__}")
    titles = [str(i.get("title", "")) for i in items if isinstance(i, dict)]
    if args.expect_title is not None:
        errors.extend(title_errors(titles, args.expect_title))
    feed_language = doc.get("language")
    languages = [
        (str(i.get("title", "")), i.get("language") or feed_language)
        for i in items
        if isinstance(i, dict)
    ]
    errors.extend(language_errors(feed_language, languages, args))
    if "next" in args.expect_rel and not doc.get("next_url"):
        errors.append("no next_url")
    lang = f", language {feed_language}" if feed_language else ""
    return errors, f"JSON Feed {str(version).rsplit('/', 1)[-1]}{lang}, {len(items)} items"


def language_errors(feed_language, languages: list[tuple[str, str | None]], args) -> list[str]:
    """The feed's language and its entries' against --expect-language, --expect-entry
    and --every-entry-language."""
    errors: list[str] = []
    if args.expect_language is not None and feed_language != args.expect_language:
        errors.append(f"feed language is {feed_language!r}, want {args.expect_language!r}")
    for expected in args.expect_entry:
        title, _, want = expected.rpartition("=")
        found = [lang for t, lang in languages if t == title]
        if len(found) != 1:
            errors.append(f"entry {short(title)!r} found {len(found)} times, want once")
        elif found[0] != want:
            errors.append(f"entry {short(title)!r} is in {found[0]!r}, want {want!r}")
    if args.every_entry_language:
        for title, lang in languages:
            if not lang:
                errors.append(f"entry {short(title)!r} has no language")
    return errors


def title_errors(titles: list[str], expected: str) -> list[str]:
    hits = sum(1 for t in titles if t == expected)
    if hits == 1:
        return []
    near = [t for t in titles if "alert" in t or "script" in t or expected[:10] in t]
    detail = f"; closest: {near[0]!r}" if near else ""
    return [f"expected title found in {hits} entries, want exactly 1{detail}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("feeds", nargs="+", metavar="FEED", help="URL or file")
    parser.add_argument("--expect-title", help="exactly one entry must have this title")
    parser.add_argument("--expect-rel", action="append", default=[], help="a feed link rel that must be present")
    parser.add_argument("--forbid", action="append", default=[], help="text that must not appear in the raw feed")
    parser.add_argument("--expect-language", help="the feed's own language")
    parser.add_argument("--expect-entry", action="append", default=[], metavar="TITLE=LANG",
                        help="the entry with this title is in this language")
    parser.add_argument("--every-entry-language", action="store_true",
                        help="every entry has a language")
    args = parser.parse_args()

    failed = 0
    for source in args.feeds:
        try:
            body, headers = load(source)
        except Exception as e:  # noqa: BLE001 - any failure to fetch is a failed feed
            print(f"FAIL {source}: cannot read: {e}")
            failed += 1
            continue
        if body.lstrip().startswith(b"{"):
            errors, summary = check_json(body, args)
        else:
            errors, summary = check_xml(body, headers, args)
        lowered = body.decode("utf-8", "replace").lower()
        for text in args.forbid:
            if text.lower() in lowered:
                errors.append(f"forbidden text {text!r} present")
        if not body.strip():
            errors.insert(0, "empty body")
        if errors:
            failed += 1
            print(f"FAIL {source}: {summary}, {len(body)} bytes")
            for e in errors:
                print(f"     - {e}")
        else:
            print(f"ok   {source}: {summary}, {len(body)} bytes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
