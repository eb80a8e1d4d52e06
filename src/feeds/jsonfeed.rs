//! JSON Feed 1.1 (jsonfeed.org/version/1.1). Event details travel in an `_event`
//! extension object (the spec reserves keys starting with `_` for extensions) as well
//! as in the HTML, so readers that know nothing of events still show them.

use super::{EntryEvent, FeedEntry, FeedMeta, common_language};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;

const VERSION: &str = "https://jsonfeed.org/version/1.1";

#[derive(Serialize)]
struct JsonFeed<'a> {
    version: &'static str,
    title: &'a str,
    home_page_url: &'a str,
    feed_url: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_url: Option<&'a str>,
    authors: [Author<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    items: Vec<JsonItem<'a>>,
}

#[derive(Serialize)]
struct Author<'a> {
    name: &'a str,
}

#[derive(Serialize)]
struct JsonItem<'a> {
    id: &'a str,
    url: &'a str,
    title: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    summary: &'a str,
    content_html: &'a str,
    date_published: String,
    date_modified: String,
    authors: [Author<'a>; 1],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tags: Vec<&'a str>,
    #[serde(skip_serializing_if = "str::is_empty")]
    language: &'a str,
    #[serde(rename = "_event", skip_serializing_if = "Option::is_none")]
    event: Option<JsonEvent<'a>>,
}

#[derive(Serialize)]
struct JsonEvent<'a> {
    starts_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    ends_at: Option<String>,
    /// IANA name, so a client can show local times the way the page does.
    timezone: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    venue: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    online_url: Option<&'a str>,
    mode: &'a str,
    ics_url: &'a str,
}

/// Renders one page of a feed as a JSON Feed 1.1 document.
pub fn render(meta: &FeedMeta, entries: &[FeedEntry]) -> Vec<u8> {
    let feed = JsonFeed {
        version: VERSION,
        title: &meta.title,
        home_page_url: &meta.html_url,
        // JSON Feed makes feed_url the feed's identity and has no `self` of a page, so
        // every page names the feed's first page, the URL to subscribe to.
        feed_url: &meta.paging.first,
        description: &meta.description,
        next_url: meta.paging.next.as_deref(),
        authors: [Author {
            name: meta.author_name(),
        }],
        language: meta
            .language
            .as_deref()
            .or_else(|| common_language(entries)),
        items: entries
            .iter()
            .map(|e| item(meta.author_name(), e))
            .collect(),
    };
    serde_json::to_vec(&feed).expect("plain structs of strings always serialise")
}

fn item<'a>(site_name: &'a str, e: &'a FeedEntry) -> JsonItem<'a> {
    let tags = e
        .categories
        .iter()
        .map(|c| c.name.as_str())
        .chain(e.tags.iter().map(String::as_str))
        .filter(|t| !t.is_empty())
        .collect();
    JsonItem {
        id: &e.id,
        url: &e.url,
        title: &e.title,
        summary: &e.summary,
        content_html: &e.content_html,
        date_published: rfc3339(e.published),
        date_modified: rfc3339(e.updated),
        authors: [Author {
            name: e.byline(site_name),
        }],
        tags,
        language: &e.language,
        event: e.event.as_ref().map(event),
    }
}

fn event(ev: &EntryEvent) -> JsonEvent<'_> {
    JsonEvent {
        starts_at: rfc3339(ev.starts_at),
        ends_at: ev.ends_at.map(rfc3339),
        timezone: ev.timezone.name(),
        venue: ev.venue.as_deref(),
        online_url: ev.online_url.as_deref(),
        mode: &ev.mode_label,
        ics_url: &ev.ics_url,
    }
}

/// `Z` rather than `+00:00`, and sub-second digits only when there are any.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feeds::testdata::{self, HOSTILE_BODY, HOSTILE_SUMMARY, HOSTILE_TITLE};
    use serde_json::{Value, json};

    fn parse(meta: &FeedMeta, entries: &[FeedEntry]) -> Value {
        serde_json::from_slice(&render(meta, entries)).expect("rendered JSON parses")
    }

    #[test]
    fn top_level_fields() {
        let feed = parse(&testdata::meta("json"), &testdata::entries());
        let base = "https://news.example.org/feeds/all.json";
        assert_eq!(feed["version"], VERSION);
        assert_eq!(feed["title"], "Example News: all items");
        assert_eq!(feed["home_page_url"], "https://news.example.org/");
        // Page 2 still names the feed itself, not this page.
        assert_eq!(feed["feed_url"], base);
        assert_eq!(feed["description"], "Everything the newsroom publishes");
        assert_eq!(feed["next_url"], format!("{base}?page=3"));
        assert_eq!(feed["authors"], json!([{ "name": "Example News" }]));
        // Entries mix en and zh-Hans, so the feed claims no language.
        assert!(feed.get("language").is_none());
        assert_eq!(feed["items"].as_array().map(Vec::len), Some(3));
    }

    #[test]
    fn the_last_page_has_no_next_url_and_a_shared_language_is_declared() {
        let mut meta = testdata::meta("json");
        meta.paging.next = None;
        let entries: Vec<_> = testdata::entries()
            .into_iter()
            .filter(|e| e.language == "en")
            .collect();
        let feed = parse(&meta, &entries);
        assert!(feed.get("next_url").is_none());
        assert_eq!(feed["language"], "en");
    }

    #[test]
    fn a_feed_in_one_language_declares_it_whatever_its_items() {
        let mut meta = testdata::meta("json");
        meta.language = Some("zh".into());
        let feed = parse(&meta, &testdata::entries());
        assert_eq!(feed["language"], "zh");
        assert_eq!(feed["items"][0]["language"], "en");
        assert_eq!(feed["items"][1]["language"], "zh-Hans");
    }

    #[test]
    fn event_item_carries_the_extension() {
        let entries = testdata::entries();
        let feed = parse(&testdata::meta("json"), &entries);
        let item = &feed["items"][0];
        assert_eq!(item["id"], "tag:news.example.org,2023-10-20:item/41");
        assert_eq!(
            item["url"],
            "https://news.example.org/items/unevoc-final-session"
        );
        assert_eq!(item["title"], testdata::EVENT_TITLE);
        assert_eq!(item["content_html"], entries[0].content_html.as_str());
        assert_eq!(item["date_published"], "2023-10-20T08:00:00Z");
        assert_eq!(item["date_modified"], "2023-10-25T10:15:00Z");
        assert_eq!(item["authors"], json!([{ "name": "Li Wei" }]));
        assert_eq!(
            item["tags"],
            json!(["Events", "UNEVOC Network", "tvet", "hybrid"])
        );
        assert_eq!(item["language"], "en");
        assert_eq!(
            item["_event"],
            json!({
                // 14:00 and 17:30 in Shanghai (UTC+8).
                "starts_at": "2023-11-09T06:00:00Z",
                "ends_at": "2023-11-09T09:30:00Z",
                "timezone": "Asia/Shanghai",
                "venue": "Liuxiandong Campus, Shenzhen Polytechnic University",
                "online_url": "https://meet.example.org/unevoc",
                "mode": "Hybrid (in person and online)",
                "ics_url": "https://news.example.org/items/unevoc-final-session.ics",
            })
        );
    }

    #[test]
    fn hostile_item_round_trips_exactly() {
        let feed = parse(&testdata::meta("json"), &testdata::entries());
        let item = &feed["items"][1];
        assert_eq!(item["title"], HOSTILE_TITLE);
        assert_eq!(item["summary"], HOSTILE_SUMMARY);
        assert_eq!(item["content_html"], HOSTILE_BODY);
        assert_eq!(item["authors"], json!([{ "name": "Press Office" }]));
        assert_eq!(
            item["tags"],
            json!(["Research, Policy & <Practice>", "研讨会", "a;b,c"])
        );
        assert_eq!(item["language"], "zh-Hans");
        assert_eq!(item["date_published"], "2023-11-02T01:02:03Z");
        assert!(item.get("_event").is_none());
    }

    #[test]
    fn empty_fields_are_left_out_and_subseconds_kept() {
        let feed = parse(&testdata::meta("json"), &testdata::entries());
        let item = &feed["items"][2];
        assert!(item.get("summary").is_none());
        assert!(item.get("tags").is_none());
        assert_eq!(item["date_modified"], "2023-11-06T12:00:00.123Z");
    }

    #[test]
    fn an_event_without_end_venue_or_link_omits_them() {
        let mut entries = testdata::entries();
        if let Some(ev) = entries[0].event.as_mut() {
            ev.ends_at = None;
            ev.venue = None;
            ev.online_url = None;
        }
        let feed = parse(&testdata::meta("json"), &entries);
        let ev = &feed["items"][0]["_event"];
        assert!(ev.get("ends_at").is_none());
        assert!(ev.get("venue").is_none());
        assert!(ev.get("online_url").is_none());
        assert_eq!(ev["starts_at"], "2023-11-09T06:00:00Z");
    }
}
