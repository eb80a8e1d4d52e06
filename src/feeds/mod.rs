//! Feeds as pure functions: a `FeedMeta` and `FeedEntry` values in, bytes out.
//! Nothing here touches the database or the network, so every format is unit-tested
//! and golden-filed on its own.

pub mod atom;
pub mod cache;
pub mod ics;
pub mod jsonfeed;
pub mod opml;
pub mod rss;

use crate::domain::{CategoryRef, IdAuthority, Item, language_matches};
use crate::i18n::{PageWords, Words};
use chrono::{DateTime, Utc};

/// The formats a feed is served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FeedFormat {
    Rss,
    Atom,
    Json,
    Ics,
}

impl FeedFormat {
    pub const ALL: [FeedFormat; 4] = [Self::Rss, Self::Atom, Self::Json, Self::Ics];

    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext {
            "rss" => Some(Self::Rss),
            "atom" => Some(Self::Atom),
            "json" => Some(Self::Json),
            "ics" => Some(Self::Ics),
            _ => None,
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Rss => "rss",
            Self::Atom => "atom",
            Self::Json => "json",
            Self::Ics => "ics",
        }
    }

    pub fn media_type(self) -> &'static str {
        match self {
            Self::Rss => "application/rss+xml; charset=utf-8",
            Self::Atom => "application/atom+xml; charset=utf-8",
            Self::Json => "application/feed+json; charset=utf-8",
            Self::Ics => "text/calendar; charset=utf-8",
        }
    }

    /// Human name, for autodiscovery titles and OPML.
    pub fn label(self) -> &'static str {
        match self {
            Self::Rss => "RSS",
            Self::Atom => "Atom",
            Self::Json => "JSON Feed",
            Self::Ics => "iCalendar",
        }
    }
}

/// RFC 5005 paging links, absolute URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paging {
    pub first: String,
    pub last: String,
    pub previous: Option<String>,
    pub next: Option<String>,
}

/// What a feed says about itself.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMeta {
    /// A permanent `tag:` URI for the feed.
    pub id: String,
    pub title: String,
    pub description: String,
    /// The absolute URL of this very document (this page of this format).
    pub self_url: String,
    /// The HTML page the feed mirrors.
    pub html_url: String,
    /// When the feed's content last changed.
    pub updated: DateTime<Utc>,
    /// Name of the site, used as the feed author where entries name none.
    pub site_name: String,
    pub paging: Paging,
    /// The language the feed is in (a feed of `?lang=`); `None`: each entry in its
    /// original, the feed declaring a language only when they all share one.
    pub language: Option<String>,
}

/// Event details, ready for display.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryEvent {
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// IANA name, for local times.
    pub timezone: chrono_tz::Tz,
    pub venue: Option<String>,
    pub online_url: Option<String>,
    /// "In person", "Online", "Hybrid (in person and online)".
    pub mode_label: String,
    /// Absolute URL of the single-event `.ics`.
    pub ics_url: String,
}

/// One entry of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    /// A permanent `tag:` URI (RFC 4151) built from the site's id authority (fixed
    /// when the database was created), the item's creation day and its numeric id; it
    /// does not change when the title, the slug or the base URL does.
    pub id: String,
    /// The item's page.
    pub url: String,
    pub title: String,
    pub summary: String,
    /// Sanitised HTML: the event block (when there is one) followed by the body.
    pub content_html: String,
    pub author: String,
    pub org_unit: String,
    pub language: String,
    pub published: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub categories: Vec<CategoryRef>,
    /// Absolute URL of the category scheme: `{base}/categories/`.
    pub category_scheme: String,
    pub tags: Vec<String>,
    pub event: Option<EntryEvent>,
}

impl FeedEntry {
    /// Builds an entry from a visible item, in its original language: its id under the
    /// site's fixed authority, its links under `base_url` (no trailing slash); its
    /// event block in the built-in words.
    pub fn from_item(item: &Item, base_url: &str, ids: &IdAuthority) -> Self {
        Self::localized(item, None, base_url, ids, PageWords::builtin())
    }

    /// The entry a reader of `wanted` reads (`None`: the original): that version's
    /// words, links to the pages in `wanted` (`/{wanted}/items/...`), and, when the item
    /// has no such version, the original led by a note in `wanted` saying so. The event
    /// block is in the words of the language the entry is in, like the rest of its
    /// content. The id is the item's in every language: a version is the same entry
    /// (RFC 4287 4.2.6), so a reader following two languages' feeds is not shown an item
    /// twice, and the calendar's `UID` is the same event's. The words are `words`: the
    /// templates' in use ([`crate::templates::Templates::page_words`]).
    pub fn localized(
        item: &Item,
        wanted: Option<&str>,
        base_url: &str,
        ids: &IdAuthority,
        words: &PageWords,
    ) -> Self {
        let shown = match wanted {
            Some(l) => item.localized(l),
            None => std::borrow::Cow::Borrowed(item),
        };
        let prefix = wanted.map(|l| format!("/{l}")).unwrap_or_default();
        let url = format!("{base_url}{prefix}/items/{}", item.slug);
        let entry_words = words.get(&shown.language);
        let event = shown.event.as_ref().map(|e| EntryEvent {
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            timezone: e.timezone.tz(),
            venue: e.venue.clone(),
            online_url: e.online_url.clone(),
            mode_label: e
                .mode_text
                .clone()
                .unwrap_or_else(|| e.mode.label_in(&shown.language).to_owned()),
            ics_url: format!("{url}.ics"),
        });
        let mut content_html = String::new();
        if let Some(wanted) = wanted
            && !language_matches(&shown.language, wanted)
        {
            content_html.push_str(&fallback_note_html(wanted, &shown.language, words));
        }
        if let Some(e) = &event {
            content_html.push_str(&event_html_in(e, entry_words));
        }
        content_html.push_str(&shown.body_html);
        Self {
            id: ids.item(item.id, item.created_at),
            url,
            title: shown.title.clone(),
            summary: shown.summary.clone(),
            content_html,
            author: item.author.clone(),
            org_unit: item.org_unit.clone(),
            language: shown.language.clone(),
            published: item.published_at.unwrap_or(item.created_at),
            updated: item.updated_at,
            // Named in the feed's language (the slugs, the scheme's terms, stay).
            categories: shown.categories.clone(),
            category_scheme: format!("{base_url}/categories/"),
            tags: item.tags.clone(),
            event,
        }
    }
}

/// The note leading an item shown in its original `original` to a reader of `wanted`,
/// in `wanted`'s words and marked as in that language.
pub fn fallback_note_html(wanted: &str, original: &str, words: &PageWords) -> String {
    let w = words.get(wanted);
    let note = w.fill(
        "not_in_language",
        &[("language", &w.language_name(original))],
    );
    format!(
        "<p class=\"translation-note\" lang=\"{}\"><em>{}</em></p>",
        escape_html(wanted),
        escape_html(&note)
    )
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// When the event is, in the event's own zone, as `w`'s language writes it.
pub fn event_when_in(e: &EntryEvent, w: &Words) -> String {
    w.event_when(e.starts_at, e.ends_at, e.timezone)
}

/// The event block that leads an entry's HTML content, so every reader shows when,
/// where and how to join, whatever it knows of events; in `w`'s words.
pub fn event_html_in(e: &EntryEvent, w: &Words) -> String {
    let label = |key: &str| {
        let name = w.fill("field_label", &[("name", w.get(key))]);
        // "When: ", but "时间：" (a full-width colon carries its own space).
        let space = if name.ends_with(|c: char| c.is_ascii()) {
            " "
        } else {
            ""
        };
        format!("<strong>{}</strong>{space}", escape_html(&name))
    };
    let mut html = format!("<div class=\"event\"><p>{}", label("when"));
    html.push_str(&escape_html(&event_when_in(e, w)));
    html.push_str("<br>");
    html.push_str(&label("format"));
    html.push_str(&escape_html(&e.mode_label));
    if let Some(venue) = &e.venue {
        html.push_str("<br>");
        html.push_str(&label("where"));
        html.push_str(&escape_html(venue));
    }
    if let Some(link) = &e.online_url {
        let link = escape_html(link);
        html.push_str("<br>");
        html.push_str(&label("online"));
        html.push_str(&format!("<a href=\"{link}\">{link}</a>"));
    }
    html.push_str(&format!(
        "<br><a href=\"{}\">{}</a></p></div>",
        escape_html(&e.ics_url),
        escape_html(w.get("add_to_calendar"))
    ));
    html
}

/// Drops the characters XML 1.0 cannot carry at all (C0 controls other than tab, LF and
/// CR, and U+FFFE/U+FFFF): a single one would make the whole document unreadable to
/// every reader, so losing it is the lesser harm.
pub fn xml_safe(s: &str) -> std::borrow::Cow<'_, str> {
    let forbidden = |c: char| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    };
    if s.contains(forbidden) {
        s.chars()
            .filter(|&c| !forbidden(c))
            .collect::<String>()
            .into()
    } else {
        s.into()
    }
}

/// The schema's `atomLanguageTag` (RFC 4287), which RFC 5545's `LANGUAGE` and RSS's
/// `language` accept too: `[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*`. Tags of another shape
/// are left out of every format rather than make a document invalid.
pub fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary_ok = parts
        .next()
        .is_some_and(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphabetic()));
    primary_ok
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// The language every entry shares, to declare for the feed as a whole; `None` when
/// they differ or there are none, as a wrong feed-level language is worse than none.
pub fn common_language(entries: &[FeedEntry]) -> Option<&str> {
    let first = entries.first()?.language.as_str();
    (!first.is_empty() && entries.iter().all(|e| e.language == first)).then_some(first)
}

impl FeedMeta {
    /// The name to credit for the feed as a whole: the site, or the feed's title if the
    /// site has no name, since formats that name an author want a non-empty one.
    pub fn author_name(&self) -> &str {
        if self.site_name.trim().is_empty() {
            &self.title
        } else {
            &self.site_name
        }
    }
}

impl FeedEntry {
    /// A name to credit: readers show an empty author badly and Atom forbids one, so
    /// fall back to the unit, then to the site.
    pub fn byline<'a>(&'a self, site_name: &'a str) -> &'a str {
        [self.author.trim(), self.org_unit.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or(site_name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_of_the_atom_schema() {
        assert!(is_language_tag("zh-Hans"));
        assert!(is_language_tag("en"));
        assert!(!is_language_tag("toolonglang"));
        assert!(!is_language_tag("en-"));
        assert!(!is_language_tag("en_GB"));
        assert!(!is_language_tag(""));
    }
}

/// One shared set of sample data, so every format is checked against the same facts.
#[cfg(test)]
pub(crate) mod testdata {
    use super::{EntryEvent, FeedEntry, FeedMeta, Paging, event_html_in};
    use crate::domain::CategoryRef;
    use chrono::{DateTime, TimeZone, Utc};

    pub const HOSTILE_TITLE: &str =
        "<script>alert(\"x\")</script> & ]]> \"quotes\" 'apos' 🎉 研讨会";
    pub const HOSTILE_SUMMARY: &str =
        "Summary with <b>tags</b> & ]]> &amp; \"quotes\", 'apos'; a\\b 🎉 中文摘要";
    pub const HOSTILE_BODY: &str = "<p>Body with ]]> and &lt;escaped&gt; text &amp; 研讨会 🎉</p>";
    pub const EVENT_TITLE: &str = "2023 UNEVOC Network Coaction Initiative: final session";
    pub const VENUE: &str = "Liuxiandong Campus, Shenzhen Polytechnic University";
    pub const ONLINE: &str = "https://meet.example.org/unevoc";
    pub const BASE: &str = "https://news.example.org";

    pub fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("test timestamps are valid RFC 3339")
            .with_timezone(&Utc)
    }

    /// Page 2 of 3 of the feed of everything, in the given format's extension.
    pub fn meta(ext: &str) -> FeedMeta {
        let page = |n: u32| format!("{BASE}/feeds/all.{ext}?page={n}");
        FeedMeta {
            id: "tag:news.example.org,2023-01-01:feed/all".into(),
            title: "Example News: all items".into(),
            description: "Everything the newsroom publishes".into(),
            self_url: page(2),
            html_url: format!("{BASE}/"),
            updated: at("2023-11-10T09:30:00Z"),
            site_name: "Example News".into(),
            language: None,
            paging: Paging {
                first: format!("{BASE}/feeds/all.{ext}"),
                last: page(3),
                previous: Some(page(1)),
                next: Some(page(3)),
            },
        }
    }

    pub fn event() -> EntryEvent {
        let shanghai = chrono_tz::Asia::Shanghai;
        let local = |h, m| {
            shanghai
                .with_ymd_and_hms(2023, 11, 9, h, m, 0)
                .single()
                .expect("Shanghai has no DST gaps")
                .with_timezone(&Utc)
        };
        EntryEvent {
            starts_at: local(14, 0),
            ends_at: Some(local(17, 30)),
            timezone: shanghai,
            venue: Some(VENUE.into()),
            online_url: Some(ONLINE.into()),
            mode_label: "Hybrid (in person and online)".into(),
            ics_url: format!("{BASE}/items/unevoc-final-session.ics"),
        }
    }

    /// An event, a hostile entry and a plain one with no summary, in that order.
    pub fn entries() -> Vec<FeedEntry> {
        let event = event();
        let cat = |slug: &str, name: &str| CategoryRef {
            slug: slug.into(),
            name: name.into(),
            names: Default::default(),
        };
        vec![
            FeedEntry {
                id: "tag:news.example.org,2023-10-20:item/41".into(),
                url: format!("{BASE}/items/unevoc-final-session"),
                title: EVENT_TITLE.into(),
                summary: "The closing session of the 2023 Coaction Initiative.".into(),
                content_html: format!(
                    "{}<p>Join us in Shenzhen.</p>",
                    event_html_in(&event, crate::i18n::words("en"))
                ),
                author: "Li Wei".into(),
                org_unit: "International Office".into(),
                language: "en".into(),
                published: at("2023-10-20T08:00:00Z"),
                updated: at("2023-10-25T10:15:00Z"),
                categories: vec![cat("events", "Events"), cat("unevoc", "UNEVOC Network")],
                category_scheme: format!("{BASE}/categories/"),
                tags: vec!["tvet".into(), "hybrid".into()],
                event: Some(event),
            },
            FeedEntry {
                id: "tag:news.example.org,2023-11-02:item/42".into(),
                url: format!("{BASE}/items/hostile"),
                title: HOSTILE_TITLE.into(),
                summary: HOSTILE_SUMMARY.into(),
                content_html: HOSTILE_BODY.into(),
                author: String::new(),
                org_unit: "Press Office".into(),
                language: "zh-Hans".into(),
                published: at("2023-11-02T01:02:03Z"),
                updated: at("2023-11-03T04:05:06Z"),
                categories: vec![cat("research", "Research, Policy & <Practice>")],
                category_scheme: format!("{BASE}/categories/"),
                tags: vec!["研讨会".into(), "a;b,c".into()],
                event: None,
            },
            FeedEntry {
                id: "tag:news.example.org,2023-11-05:item/43".into(),
                url: format!("{BASE}/items/plain"),
                title: "Library opening hours".into(),
                summary: String::new(),
                content_html: "<p>The library&nbsp;opens at <em>08:00</em> &amp; closes \
                               at 22:00.</p>\n<p>Second   paragraph.</p>"
                    .into(),
                author: "Maria Santos".into(),
                org_unit: "Library".into(),
                language: "en".into(),
                published: at("2023-11-05T07:00:00Z"),
                updated: at("2023-11-06T12:00:00.123Z"),
                categories: Vec::new(),
                category_scheme: format!("{BASE}/categories/"),
                tags: Vec::new(),
                event: None,
            },
        ]
    }
}
