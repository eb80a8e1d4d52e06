//! iCalendar (RFC 5545) for the entries that are events, written by hand: the format is
//! small, and doing it here keeps escaping and line folding in plain sight.
//!
//! Times are written in UTC (`…Z`), which RFC 5545 allows without a `VTIMEZONE`; the
//! calendar app shows them in the reader's own zone. An event's words (`SUMMARY`,
//! `DESCRIPTION`) carry the `LANGUAGE` parameter (RFC 5545 3.2.10) of the entry's
//! language; the calendar as a whole has no language property to set.

use super::{EntryEvent, FeedEntry, is_language_tag};
use crate::i18n::PageWords;
use chrono::{DateTime, Utc};

/// Renders a calendar with one `VEVENT` per entry that has an event; other entries are
/// skipped. `dtstamp` is when this calendar was generated (RFC 5545 §3.8.7.2).
pub fn render(
    calendar_name: &str,
    prodid_host: &str,
    entries: &[FeedEntry],
    dtstamp: DateTime<Utc>,
    words: &PageWords,
) -> Vec<u8> {
    let mut out = String::new();
    let mut line = |name: &str, value: &str| {
        out.push_str(&fold_line(&format!("{name}:{value}")));
    };
    line("BEGIN", "VCALENDAR");
    line("VERSION", "2.0");
    line(
        "PRODID",
        &format!("-//newsdesk//{}//EN", escape_text(prodid_host)),
    );
    line("CALSCALE", "GREGORIAN");
    line("METHOD", "PUBLISH");
    line("X-WR-CALNAME", &escape_text(calendar_name));
    for entry in entries {
        if let Some(event) = &entry.event {
            vevent(&mut line, entry, event, dtstamp, words);
        }
    }
    line("END", "VCALENDAR");
    out.into_bytes()
}

fn vevent(
    line: &mut impl FnMut(&str, &str),
    entry: &FeedEntry,
    event: &EntryEvent,
    dtstamp: DateTime<Utc>,
    words: &PageWords,
) {
    line("BEGIN", "VEVENT");
    // UID is TEXT, so the comma in a tag: URI is escaped like any other.
    line("UID", &escape_text(&entry.id));
    line("DTSTAMP", &utc(dtstamp));
    line("DTSTART", &utc(event.starts_at));
    // DTEND must be later than DTSTART; without one the event is an instant (§3.6.1).
    if let Some(end) = event.ends_at.filter(|&end| end > event.starts_at) {
        line("DTEND", &utc(end));
    }
    // The venue is a name, often the original's in every version: no language claimed.
    let language = Some(entry.language.as_str())
        .filter(|l| is_language_tag(l))
        .map(|l| format!(";LANGUAGE={l}"))
        .unwrap_or_default();
    line(&format!("SUMMARY{language}"), &escape_text(&entry.title));
    line(
        &format!("DESCRIPTION{language}"),
        &escape_text(&description(entry, event, words)),
    );
    if let Some(location) = event.venue.as_ref().or(event.online_url.as_ref()) {
        line("LOCATION", &escape_text(location));
    }
    // URI values are not TEXT: written as they are.
    line("URL", &entry.url);
    let categories: Vec<String> = entry
        .categories
        .iter()
        .map(|c| escape_text(&c.name))
        .filter(|c| !c.is_empty())
        .collect();
    if !categories.is_empty() {
        line("CATEGORIES", &categories.join(","));
    }
    line("LAST-MODIFIED", &utc(entry.updated));
    line("END", "VEVENT");
}

/// The summary, then the links a calendar app would otherwise lose: how to join online
/// and where the full item lives, in the words of the entry's language.
fn description(entry: &FeedEntry, event: &EntryEvent, words: &PageWords) -> String {
    let w = words.get(&entry.language);
    let label = |key: &str| w.fill("field_label", &[("name", w.get(key))]);
    let mut parts = Vec::new();
    if !entry.summary.trim().is_empty() {
        parts.push(entry.summary.clone());
    }
    let mut links = Vec::new();
    if let Some(online) = &event.online_url {
        links.push(format!("{} {online}", label("join_online")));
    }
    links.push(format!("{} {}", label("details"), entry.url));
    parts.push(links.join("\n"));
    parts.join("\n\n")
}

/// DATE-TIME in UTC form (`20231109T060000Z`); iCalendar has no fractional seconds.
fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// Escapes a TEXT value (RFC 5545 §3.3.11): backslash, semicolon and comma get a
/// backslash, every line break becomes `\n`. Other control characters cannot appear in
/// TEXT at all, so they are dropped; tab is allowed and kept.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                // CRLF is one line break, not two.
                chars.next_if_eq(&'\n');
                out.push_str("\\n");
            }
            '\n' => out.push_str("\\n"),
            '\t' => out.push('\t'),
            c if c.is_ascii_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds one content line (which must hold no line break) so no physical line exceeds
/// 75 octets, breaking only between characters so UTF-8 sequences stay whole, and ends
/// it with CRLF. Continuation lines start with a single space, which counts toward
/// their 75 octets (RFC 5545 §3.1).
pub fn fold_line(line: &str) -> String {
    const MAX_OCTETS: usize = 75;
    let mut out = String::with_capacity(line.len() + line.len() / 24 + 2);
    let mut used = 0;
    for c in line.chars() {
        if used + c.len_utf8() > MAX_OCTETS {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += c.len_utf8();
    }
    out.push_str("\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::testdata::{self, HOSTILE_SUMMARY, HOSTILE_TITLE, at};

    const STAMP: &str = "2023-11-10T09:30:00Z";

    fn render_sample(entries: &[FeedEntry]) -> String {
        let bytes = render(
            "Example News: events",
            "news.example.org",
            entries,
            at(STAMP),
            PageWords::builtin(),
        );
        String::from_utf8(bytes).expect("calendar is UTF-8")
    }

    /// Undoes folding (§3.1): CRLF followed by one space joins the lines.
    fn unfold(ics: &str) -> Vec<String> {
        ics.replace("\r\n ", "")
            .split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                match chars.next() {
                    Some('n' | 'N') => out.push('\n'),
                    Some(other) => out.push(other),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        out
    }

    /// The values of property `name` in order, across all components, whatever its
    /// parameters.
    fn values<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
        lines
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                let value_at = rest.find(':')?;
                (rest.starts_with(':') || rest.starts_with(';')).then(|| &rest[value_at + 1..])
            })
            .collect()
    }

    /// The parameters of property `name` in order (`;LANGUAGE=en`, or "").
    fn params<'a>(lines: &'a [String], name: &str) -> Vec<&'a str> {
        lines
            .iter()
            .filter_map(|l| {
                let rest = l.strip_prefix(name)?;
                (rest.starts_with(':') || rest.starts_with(';'))
                    .then(|| &rest[..rest.find(':').unwrap_or(0)])
            })
            .collect()
    }

    /// The sample with the hostile entry turned into an online event, so its text goes
    /// through every escaped property.
    fn entries_with_hostile_event() -> Vec<FeedEntry> {
        let mut entries = testdata::entries();
        let mut event = testdata::event();
        event.venue = None;
        event.ends_at = None;
        event.mode_label = "Online".into();
        entries[1].event = Some(event);
        entries
    }

    #[test]
    fn calendar_has_the_required_properties_in_order() {
        let lines = unfold(&render_sample(&testdata::entries()));
        assert_eq!(
            lines[..6],
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//newsdesk//news.example.org//EN",
                "CALSCALE:GREGORIAN",
                "METHOD:PUBLISH",
                "X-WR-CALNAME:Example News: events",
            ]
        );
        assert_eq!(lines.last().map(String::as_str), Some("END:VCALENDAR"));
    }

    #[test]
    fn only_entries_with_events_become_vevents() {
        let lines = unfold(&render_sample(&testdata::entries()));
        assert_eq!(values(&lines, "BEGIN"), ["VCALENDAR", "VEVENT"]);
        assert_eq!(values(&lines, "END"), ["VEVENT", "VCALENDAR"]);
    }

    #[test]
    fn event_properties() {
        let lines = unfold(&render_sample(&testdata::entries()));
        assert_eq!(
            values(&lines, "UID"),
            ["tag:news.example.org\\,2023-10-20:item/41"]
        );
        assert_eq!(values(&lines, "DTSTAMP"), ["20231110T093000Z"]);
        // 14:00–17:30 in Shanghai is 06:00–09:30 UTC.
        assert_eq!(values(&lines, "DTSTART"), ["20231109T060000Z"]);
        assert_eq!(values(&lines, "DTEND"), ["20231109T093000Z"]);
        assert_eq!(
            values(&lines, "SUMMARY"),
            ["2023 UNEVOC Network Coaction Initiative: final session"]
        );
        assert_eq!(
            values(&lines, "LOCATION"),
            ["Liuxiandong Campus\\, Shenzhen Polytechnic University"]
        );
        assert_eq!(
            values(&lines, "URL"),
            ["https://news.example.org/items/unevoc-final-session"]
        );
        assert_eq!(values(&lines, "CATEGORIES"), ["Events,UNEVOC Network"]);
        assert_eq!(values(&lines, "LAST-MODIFIED"), ["20231025T101500Z"]);
        assert_eq!(
            values(&lines, "DESCRIPTION")
                .iter()
                .map(|d| unescape(d))
                .collect::<Vec<_>>(),
            ["The closing session of the 2023 Coaction Initiative.\n\n\
              Join online: https://meet.example.org/unevoc\n\
              Details: https://news.example.org/items/unevoc-final-session"]
        );
    }

    #[test]
    fn words_carry_their_language_and_the_description_is_in_it() {
        let mut entries = entries_with_hostile_event();
        entries[1].language = "zh".into();
        let lines = unfold(&render_sample(&entries));
        assert_eq!(params(&lines, "SUMMARY"), [";LANGUAGE=en", ";LANGUAGE=zh"]);
        assert_eq!(
            params(&lines, "DESCRIPTION"),
            [";LANGUAGE=en", ";LANGUAGE=zh"]
        );
        assert_eq!(params(&lines, "LOCATION"), ["", ""]);
        let zh = unescape(values(&lines, "DESCRIPTION")[1]);
        assert!(
            zh.contains("线上参加： https://meet.example.org/unevoc"),
            "{zh}"
        );
        assert!(
            zh.contains("详情： https://news.example.org/items/hostile"),
            "{zh}"
        );
        // A tag of another shape is left out, not written broken.
        entries[1].language = "zh_CN".into();
        let lines = unfold(&render_sample(&entries));
        assert_eq!(params(&lines, "SUMMARY")[1], "");
    }

    #[test]
    fn hostile_text_is_escaped_and_comes_back_exactly() {
        let entries = entries_with_hostile_event();
        let lines = unfold(&render_sample(&entries));
        let summaries = values(&lines, "SUMMARY");
        assert_eq!(summaries[1], escape_text(HOSTILE_TITLE));
        assert_eq!(unescape(summaries[1]), HOSTILE_TITLE);
        let description = unescape(values(&lines, "DESCRIPTION")[1]);
        assert!(description.starts_with(&format!("{HOSTILE_SUMMARY}\n\n")));
        assert_eq!(
            values(&lines, "UID")
                .iter()
                .map(|u| unescape(u))
                .collect::<Vec<_>>(),
            [entries[0].id.as_str(), entries[1].id.as_str()]
        );
        // One category whose name holds a comma: escaped, so still one category.
        assert_eq!(
            values(&lines, "CATEGORIES")[1],
            "Research\\, Policy & <Practice>"
        );
        // No venue: the online link is where it happens. No end: no DTEND.
        assert_eq!(values(&lines, "LOCATION")[1], testdata::ONLINE);
        assert_eq!(values(&lines, "DTEND").len(), 1);
    }

    #[test]
    fn every_line_is_crlf_terminated_and_at_most_75_octets() {
        let mut entries = entries_with_hostile_event();
        entries[0].title = "研讨会".repeat(40);
        entries[0].summary = format!("{}\r\n{}", "long ".repeat(40), "🎉".repeat(30));
        let ics = render_sample(&entries);
        assert!(ics.ends_with("\r\n"));
        assert!(
            !ics.replace("\r\n", "").contains(['\r', '\n']),
            "no bare CR or LF"
        );
        for physical in ics.split_terminator("\r\n") {
            assert!(
                physical.len() <= 75,
                "{} octets: {physical:?}",
                physical.len()
            );
        }
        let lines = unfold(&ics);
        assert_eq!(unescape(values(&lines, "SUMMARY")[0]), "研讨会".repeat(40));
        let description = unescape(values(&lines, "DESCRIPTION")[0]);
        assert!(description.starts_with(&format!(
            "{}\n{}\n\n",
            "long ".repeat(40),
            "🎉".repeat(30)
        )));
    }

    #[test]
    fn cjk_is_folded_between_characters() {
        let line = format!("SUMMARY:{}", "研".repeat(30));
        let folded = fold_line(&line);
        let physical: Vec<&str> = folded.split_terminator("\r\n").collect();
        // 8 octets of name, then 22 three-octet characters = 74; a 23rd would make 77.
        assert_eq!(physical[0], format!("SUMMARY:{}", "研".repeat(22)));
        assert_eq!(physical[0].len(), 74);
        assert_eq!(physical[1], format!(" {}", "研".repeat(8)));
        assert_eq!(physical.len(), 2);
        assert_eq!(folded.replace("\r\n ", ""), format!("{line}\r\n"));
    }

    #[test]
    fn ascii_fills_each_line_to_75_octets() {
        let line = "x".repeat(75 + 74 + 10);
        let folded = fold_line(&line);
        let physical: Vec<&str> = folded.split_terminator("\r\n").collect();
        assert_eq!(
            physical.iter().map(|l| l.len()).collect::<Vec<_>>(),
            [75, 75, 11]
        );
        assert_eq!(fold_line("END:VEVENT"), "END:VEVENT\r\n");
        assert_eq!(
            fold_line(&"y".repeat(75)),
            format!("{}\r\n", "y".repeat(75))
        );
    }

    #[test]
    fn text_escaping_follows_rfc_5545() {
        assert_eq!(escape_text("a\\b;c,d"), "a\\\\b\\;c\\,d");
        assert_eq!(
            escape_text("one\ntwo\r\nthree\rfour"),
            "one\\ntwo\\nthree\\nfour"
        );
        assert_eq!(
            escape_text("tab\tbell\u{7}del\u{7f}:\"q\""),
            "tab\tbelldel:\"q\""
        );
        assert_eq!(escape_text("研讨会 🎉"), "研讨会 🎉");
    }

    #[test]
    fn an_end_not_after_the_start_is_left_out() {
        let mut entries = testdata::entries();
        if let Some(ev) = entries[0].event.as_mut() {
            ev.ends_at = Some(ev.starts_at);
        }
        let lines = unfold(&render_sample(&entries));
        assert!(values(&lines, "DTEND").is_empty());
        assert_eq!(values(&lines, "DTSTART"), ["20231109T060000Z"]);
    }
}
