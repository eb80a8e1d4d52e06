//! Feeds as pure functions: a `FeedMeta` and `FeedEntry` values in, bytes out.
//! Nothing here touches the database or the network, so every format is unit-tested
//! and golden-filed on its own.

pub mod atom;
pub mod cache;
pub mod ics;
pub mod jsonfeed;
pub mod opml;
pub mod rss;

use crate::domain::{CategoryRef, Item};
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
    /// A permanent `tag:` URI (RFC 4151) built from the host and the numeric item id;
    /// it does not change when the title or slug does.
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

/// The host part of the base URL, for `tag:` URIs.
pub fn tag_authority(base_url: &str) -> String {
    url::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "localhost".into())
}

/// `tag:host,YYYY-MM-DD:item/ID`, the date being the item's creation day: neither
/// changes for the life of the item.
pub fn item_tag_uri(base_url: &str, item: &Item) -> String {
    format!(
        "tag:{},{}:item/{}",
        tag_authority(base_url),
        item.created_at.format("%Y-%m-%d"),
        item.id
    )
}

/// `tag:host,2023-01-01:feed/SCOPE` for a category slug or `all`.
pub fn feed_tag_uri(base_url: &str, scope: &str) -> String {
    format!("tag:{},2023-01-01:feed/{scope}", tag_authority(base_url))
}

impl FeedEntry {
    /// Builds an entry from a visible item. `base_url` has no trailing slash.
    pub fn from_item(item: &Item, base_url: &str) -> Self {
        let url = format!("{base_url}/items/{}", item.slug);
        let event = item.event.as_ref().map(|e| EntryEvent {
            starts_at: e.starts_at,
            ends_at: e.ends_at,
            timezone: e.timezone.tz(),
            venue: e.venue.clone(),
            online_url: e.online_url.clone(),
            mode_label: e.mode.label().to_owned(),
            ics_url: format!("{url}.ics"),
        });
        let mut content_html = String::new();
        if let Some(e) = &event {
            content_html.push_str(&event_html(e));
        }
        content_html.push_str(&item.body_html);
        Self {
            id: item_tag_uri(base_url, item),
            url,
            title: item.title.clone(),
            summary: item.summary.clone(),
            content_html,
            author: item.author.clone(),
            org_unit: item.org_unit.clone(),
            language: item.language.clone(),
            published: item.published_at.unwrap_or(item.created_at),
            updated: item.updated_at,
            categories: item.categories.clone(),
            category_scheme: format!("{base_url}/categories/"),
            tags: item.tags.clone(),
            event,
        }
    }
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

/// "Thu 9 November 2023, 14:00 – 17:00 CST (UTC+08:00)" in the event's own zone.
pub fn event_when(e: &EntryEvent) -> String {
    let start = e.starts_at.with_timezone(&e.timezone);
    let mut s = start.format("%a %-d %B %Y, %H:%M").to_string();
    if let Some(end) = e.ends_at {
        let end = end.with_timezone(&e.timezone);
        if end.date_naive() == start.date_naive() {
            s.push_str(&end.format(" – %H:%M").to_string());
        } else {
            s.push_str(&end.format(" – %a %-d %B %Y, %H:%M").to_string());
        }
    }
    s.push_str(&start.format(" %Z (UTC%:z)").to_string());
    s
}

/// The event block that leads an entry's HTML content, so every reader shows when,
/// where and how to join, whatever it knows of events.
pub fn event_html(e: &EntryEvent) -> String {
    let mut html = String::from("<div class=\"event\"><p><strong>When:</strong> ");
    html.push_str(&escape_html(&event_when(e)));
    html.push_str("<br><strong>Format:</strong> ");
    html.push_str(&escape_html(&e.mode_label));
    if let Some(venue) = &e.venue {
        html.push_str("<br><strong>Where:</strong> ");
        html.push_str(&escape_html(venue));
    }
    if let Some(link) = &e.online_url {
        let link = escape_html(link);
        html.push_str(&format!("<br><strong>Online:</strong> <a href=\"{link}\">{link}</a>"));
    }
    html.push_str(&format!(
        "<br><a href=\"{}\">Add to calendar</a></p></div>",
        escape_html(&e.ics_url)
    ));
    html
}
