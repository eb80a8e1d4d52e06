use crate::helpers::{Db, HOSTILE_TITLE, TestApp, hostile_event, spawn_app, spawn_app_with};
use reqwest::StatusCode;
use reqwest::header::{
    ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH,
    LAST_MODIFIED,
};
use serde_json::json;
use std::io::Read;

async fn demo_app() -> TestApp {
    let app = spawn_app().await;
    app.load_demo().await;
    app
}

#[tokio::test]
async fn every_feed_format_is_served_with_its_media_type() {
    let app = demo_app().await;
    let cases = [
        ("rss", "application/rss+xml"),
        ("atom", "application/atom+xml"),
        ("json", "application/feed+json"),
        ("ics", "text/calendar"),
    ];
    for scope in ["all", "news-events", "news", "events"] {
        for (ext, media) in cases {
            let r = app
                .get(&format!("/feeds/{scope}.{ext}"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{scope}.{ext}");
            let ct = r.headers()[CONTENT_TYPE].to_str().unwrap().to_owned();
            assert!(ct.starts_with(media), "{scope}.{ext} has {ct}");
            assert!(r.headers().contains_key(ETAG), "{scope}.{ext} has no ETag");
            assert!(
                r.headers().contains_key(LAST_MODIFIED),
                "{scope}.{ext} has no Last-Modified"
            );
            assert!(!r.bytes().await.unwrap().is_empty());
        }
    }
}

#[tokio::test]
async fn unknown_feeds_are_404() {
    let app = demo_app().await;
    for path in [
        "/feeds/nope.rss",
        "/feeds/news.xml",
        "/feeds/news",
        "/feeds/News.rss",
        "/feeds/all.rss?page=99",
    ] {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = app.get("/feeds/all.rss?page=zero").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_category_feed_holds_its_descendants_and_nothing_else() {
    let app = demo_app().await;
    let titles = |c: rss::Channel| {
        c.items()
            .iter()
            .map(|i| i.title().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    let events = titles(app.rss("events").await);
    let news = titles(app.rss("news").await);
    let parent = titles(app.rss("news-events").await);
    let all = titles(app.rss("all").await);
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(news.len(), 3, "{news:?}");
    assert_eq!(parent.len(), 7);
    assert_eq!(all.len(), 7);
    assert!(events.iter().all(|t| !news.contains(t)));
    for t in events.iter().chain(&news) {
        assert!(parent.contains(t), "{t} missing from news-events");
    }
}

#[tokio::test]
async fn feeds_are_newest_first() {
    let app = demo_app().await;
    let feed = app.atom("all").await;
    let published: Vec<_> = feed
        .entries()
        .iter()
        .map(|e| *e.published().unwrap())
        .collect();
    let mut sorted = published.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(published, sorted);
}

#[tokio::test]
async fn a_written_item_appears_exactly_in_every_format_of_every_affected_feed() {
    let app = demo_app().await;
    let item = app.create_item(hostile_event()).await;
    let id = item["id"].as_i64().unwrap();
    let page = format!("{}/items/{}", app.address, item["slug"].as_str().unwrap());

    for scope in ["events", "news-events", "all"] {
        // RSS
        let channel = app.rss(scope).await;
        let entry = channel
            .items()
            .iter()
            .find(|i| i.title() == Some(HOSTILE_TITLE))
            .unwrap_or_else(|| panic!("{scope}.rss lacks the item"));
        assert_eq!(entry.link(), Some(page.as_str()));
        let guid = entry.guid().unwrap();
        assert!(!guid.is_permalink());
        assert!(
            guid.value().starts_with("tag:127.0.0.1,"),
            "{}",
            guid.value()
        );
        assert!(guid.value().ends_with(&format!(":item/{id}")));
        let content = entry.content().unwrap();
        assert!(content.contains("<strong>bold</strong>"), "{content}");
        assert!(content.contains("🎉 研讨会"));
        for bad in ["<script", "onerror", "javascript:"] {
            assert!(
                !content.contains(bad),
                "{scope}.rss content has {bad}: {content}"
            );
        }
        assert!(
            content.contains("Liuxiandong Campus"),
            "event venue missing: {content}"
        );
        assert!(
            content.contains("https://meet.example.org/unevoc"),
            "online link missing"
        );
        let cats: Vec<&str> = entry.categories().iter().map(|c| c.name()).collect();
        assert!(cats.contains(&"Events"), "{cats:?}");

        // Atom
        let feed = app.atom(scope).await;
        let entry = feed
            .entries()
            .iter()
            .find(|e| e.title().as_str() == HOSTILE_TITLE)
            .unwrap_or_else(|| panic!("{scope}.atom lacks the item"));
        assert_eq!(entry.id(), guid.value(), "Atom and RSS ids agree");
        assert_eq!(
            entry
                .links()
                .iter()
                .find(|l| l.rel() == "alternate")
                .unwrap()
                .href(),
            page
        );
        let content = entry.content().unwrap();
        assert_eq!(content.content_type(), Some("html"));
        assert!(content.value().unwrap().contains("Liuxiandong Campus"));
        assert!(!content.value().unwrap().contains("<script"));
        assert_eq!(entry.authors()[0].name(), "Pan Liucheng");
        assert!(
            entry
                .categories()
                .iter()
                .any(|c| c.term() == "events" && c.label() == Some("Events"))
        );

        // JSON Feed
        let json = app.json_feed(scope).await;
        assert_eq!(json["version"], "https://jsonfeed.org/version/1.1");
        let entry = json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"] == HOSTILE_TITLE)
            .unwrap_or_else(|| panic!("{scope}.json lacks the item"));
        assert_eq!(entry["id"], guid.value());
        assert_eq!(entry["url"], page);
        let html = entry["content_html"].as_str().unwrap();
        assert!(html.contains("Liuxiandong Campus") && !html.contains("<script"));
        assert_eq!(entry["_event"]["venue"], "Liuxiandong Campus");

        // iCalendar
        let (status, ics) = app.feed(scope, "ics").await;
        assert_eq!(status, StatusCode::OK);
        let unfolded = ics.replace("\r\n ", "");
        // UID is TEXT: its comma is escaped (RFC 5545 3.3.11).
        assert!(
            unfolded.contains(&format!("UID:{}", guid.value().replace(',', "\\,"))),
            "{ics}"
        );
        assert!(unfolded.contains("DTSTART:20231123T060000Z"), "{ics}");
        assert!(unfolded.contains("DTEND:20231123T093000Z"), "{ics}");
        assert!(
            unfolded.contains(
                "SUMMARY;LANGUAGE=en:<script>alert(\"x\")</script> & ]]> \"quotes\" 'apos' 🎉 研讨会"
            ),
            "{ics}"
        );
        assert!(unfolded.contains("LOCATION:Liuxiandong Campus"));
    }
    // Not in the sibling category.
    let news = app.rss("news").await;
    assert!(
        news.items()
            .iter()
            .all(|i| i.title() != Some(HOSTILE_TITLE))
    );
}

#[tokio::test]
async fn an_edit_keeps_the_entry_id_and_shows_at_once() {
    let app = demo_app().await;
    let warm = app.atom("events").await; // cached now
    assert!(!warm.entries().is_empty());
    let item = app.create_item(hostile_event()).await;
    let id = item["id"].as_i64().unwrap();
    let before = app.atom("events").await;
    let old_id = before
        .entries()
        .iter()
        .find(|e| e.title().as_str() == HOSTILE_TITLE)
        .unwrap()
        .id()
        .to_owned();

    let mut edited = hostile_event();
    edited["title"] = json!("Renamed seminar");
    edited["slug"] = json!("renamed-seminar");
    let r = app
        .admin(reqwest::Method::PUT, &format!("/api/v1/items/{id}"))
        .json(&edited)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let after = app.atom("events").await;
    let entry = after
        .entries()
        .iter()
        .find(|e| e.title().as_str() == "Renamed seminar")
        .expect("edit shows at once");
    assert_eq!(entry.id(), old_id, "the id survives a new title and slug");
    assert!(
        after
            .entries()
            .iter()
            .all(|e| e.title().as_str() != HOSTILE_TITLE)
    );
}

#[tokio::test]
async fn unpublishing_and_deleting_remove_the_item_from_cached_feeds() {
    let app = demo_app().await;
    let item = app.create_item(hostile_event()).await;
    let id = item["id"].as_i64().unwrap();
    let has = |c: &rss::Channel| c.items().iter().any(|i| i.title() == Some(HOSTILE_TITLE));
    assert!(has(&app.rss("all").await));
    let r = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/items/{id}/unpublish"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        !has(&app.rss("all").await),
        "unpublished item still in the feed"
    );
    let r = app
        .admin(
            reqwest::Method::POST,
            &format!("/api/v1/items/{id}/publish"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(has(&app.rss("events").await));
    let r = app
        .admin(reqwest::Method::DELETE, &format!("/api/v1/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert!(
        !has(&app.rss("events").await),
        "deleted item still in the feed"
    );
}

#[tokio::test]
async fn a_future_item_appears_when_its_time_comes() {
    let app = demo_app().await;
    let mut body = hostile_event();
    body["published_at"] = json!("2023-11-20T10:00:00Z"); // an hour after the test clock
    app.create_item(body).await;
    let has = |c: &rss::Channel| c.items().iter().any(|i| i.title() == Some(HOSTILE_TITLE));
    assert!(!has(&app.rss("events").await), "shown before its time");
    let page = app.get("/").send().await.unwrap().text().await.unwrap();
    assert!(
        !page.contains("&lt;script&gt;alert"),
        "front page shows it early"
    );
    app.clock.advance(chrono::Duration::hours(1));
    assert!(
        has(&app.rss("events").await),
        "not shown when its time came"
    );
}

#[tokio::test]
async fn conditional_get_answers_304_and_moves_after_a_write() {
    let app = demo_app().await;
    let first = app.get("/feeds/news.atom").send().await.unwrap();
    let etag = first.headers()[ETAG].to_str().unwrap().to_owned();
    let modified = first.headers()[LAST_MODIFIED].to_str().unwrap().to_owned();

    let r = app
        .get("/feeds/news.atom")
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(r.bytes().await.unwrap().is_empty(), "a 304 has no body");

    let r = app
        .get("/feeds/news.atom")
        .header(IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);

    // If-None-Match wins over If-Modified-Since.
    let r = app
        .get("/feeds/news.atom")
        .header(IF_NONE_MATCH, "\"something-else\"")
        .header(IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // Each feed has its own validators.
    let events = app.get("/feeds/events.atom").send().await.unwrap();
    assert_ne!(events.headers()[ETAG].to_str().unwrap(), etag);

    // A write to news changes the news feed's validators.
    app.clock.advance(chrono::Duration::seconds(5));
    let mut body = hostile_event();
    body["categories"] = json!(["news"]);
    body.as_object_mut().unwrap().remove("event");
    app.create_item(body).await;
    let r = app
        .get("/feeds/news.atom")
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .get("/feeds/news.atom")
        .header(IF_MODIFIED_SINCE, &modified)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_ne!(r.headers()[LAST_MODIFIED].to_str().unwrap(), modified);
}

#[tokio::test]
async fn feeds_are_compressed_with_gzip_and_brotli_on_request() {
    let app = demo_app().await;
    let plain = app
        .get("/feeds/all.rss")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();

    let r = app
        .get("/feeds/all.rss")
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_ENCODING], "gzip");
    let gz = r.bytes().await.unwrap();
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&gz[..])
        .read_to_end(&mut out)
        .unwrap();
    assert_eq!(out, plain);
    assert!(gz.len() < plain.len());

    let r = app
        .get("/feeds/all.rss")
        .header(ACCEPT_ENCODING, "gzip, br")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_ENCODING], "br");
    let etag = r.headers()[ETAG].to_str().unwrap().to_owned();
    let br = r.bytes().await.unwrap();
    let mut out = Vec::new();
    brotli::BrotliDecompress(&mut &br[..], &mut out).unwrap();
    assert_eq!(out, plain);

    let r = app
        .get("/feeds/all.rss")
        .header(ACCEPT_ENCODING, "gzip, br")
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
}

#[tokio::test]
async fn older_pages_are_linked_in_every_format() {
    let app = spawn_app_with(Db::Sqlite, |s| s.feed_page_size = 3)
        .await
        .unwrap();
    app.load_demo().await;
    // 7 items, 3 per page: pages 1..=3.
    let feed = app.atom("all").await;
    assert_eq!(feed.entries().len(), 3);
    let link = |f: &atom_syndication::Feed, rel: &str| {
        f.links()
            .iter()
            .find(|l| l.rel() == rel)
            .map(|l| l.href().to_owned())
    };
    let base = format!("{}/feeds/all.atom", app.address);
    assert_eq!(link(&feed, "self").as_deref(), Some(base.as_str()));
    assert_eq!(link(&feed, "first").as_deref(), Some(base.as_str()));
    assert_eq!(link(&feed, "next"), Some(format!("{base}?page=2")));
    assert_eq!(link(&feed, "last"), Some(format!("{base}?page=3")));
    assert_eq!(link(&feed, "previous"), None);

    let body = app
        .get("/feeds/all.atom?page=3")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let last = atom_syndication::Feed::read_from(body.as_bytes()).unwrap();
    assert_eq!(last.entries().len(), 1);
    assert_eq!(link(&last, "previous"), Some(format!("{base}?page=2")));
    assert_eq!(link(&last, "next"), None);

    let json = app.json_feed("all").await;
    assert_eq!(
        json["next_url"],
        format!("{}/feeds/all.json?page=2", app.address)
    );
    let page3: serde_json::Value = app
        .get("/feeds/all.json?page=3")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(page3.get("next_url").is_none_or(|v| v.is_null()));

    // Every item once across the pages.
    let mut ids = Vec::new();
    for page in 1..=3 {
        let body = app
            .get(&format!("/feeds/all.rss?page={page}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let c = rss::Channel::read_from(body.as_bytes()).unwrap();
        ids.extend(
            c.items()
                .iter()
                .map(|i| i.guid().unwrap().value().to_owned()),
        );
    }
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!((n, ids.len()), (7, 7));
}

/// The feed URLs an OPML answer lists, in order.
async fn opml_urls(app: &crate::helpers::TestApp, query: &str) -> Vec<String> {
    let r = app
        .get(&format!("/feeds.opml{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{query}");
    assert!(r.headers()[CONTENT_TYPE].to_str().unwrap().contains("opml"));
    let body = r.text().await.unwrap();
    let doc = opml::OPML::from_str(&body).unwrap();
    doc.body
        .outlines
        .iter()
        .flat_map(|o| std::iter::once(o).chain(o.outlines.iter()))
        .filter_map(|o| o.xml_url.clone())
        .collect()
}

/// Issue 12, finding 7: one feed per category (and the site's), Atom unless asked
/// otherwise, so that a reader importing it gets each item once per feed.
#[tokio::test]
async fn opml_lists_each_category_once_in_one_format() {
    let app = demo_app().await;
    let scopes = ["all", "news-events", "news", "events"];
    for (query, ext) in [
        ("", "atom"),
        ("?format=atom", "atom"),
        ("?format=rss", "rss"),
        ("?format=json", "json"),
    ] {
        let urls = opml_urls(&app, query).await;
        // The originals' feeds, then each site language's (in a group of its own).
        let address = &app.address;
        let expected: Vec<String> = ["", "?lang=en", "?lang=zh"]
            .iter()
            .flat_map(|lang| {
                scopes
                    .iter()
                    .map(move |scope| format!("{address}/feeds/{scope}.{ext}{lang}"))
            })
            .collect();
        assert_eq!(urls, expected, "{query}");
    }
    for bad in ["?format=xml", "?format=ics", "?format=", "?format=ATOM"] {
        let r = app.get(&format!("/feeds.opml{bad}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(r.text().await.unwrap().contains("rss"), "{bad}");
    }
}

#[tokio::test]
async fn feeds_work_the_same_on_postgres() {
    let Some(app) = spawn_app_with(Db::Postgres, |_| {}).await else {
        return;
    };
    app.load_demo().await;
    let item = app.create_item(hostile_event()).await;
    for scope in ["events", "news-events", "all"] {
        let c = app.rss(scope).await;
        assert!(
            c.items().iter().any(|i| i.title() == Some(HOSTILE_TITLE)),
            "{scope}"
        );
    }
    let feed = app.atom("events").await;
    assert_eq!(feed.entries().len(), 5);
    let id = item["id"].as_i64().unwrap();
    app.admin(reqwest::Method::DELETE, &format!("/api/v1/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(app.atom("events").await.entries().len(), 4);
}

/// Issue 12, finding 5: line ends are normalised where text comes in, so a CR written
/// in a summary, a body or a category description reads the same (LF) in the API, JSON
/// Feed, Atom and RSS; XML would otherwise turn it into LF and JSON keep it.
async fn carriage_returns_read_the_same_in_every_format(app: TestApp) {
    const WRITTEN: &str = "a\r\nb\rc";
    const READ: &str = "a\nb\nc";
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/categories")
        .json(&json!({"slug": "crlf", "name": "CRLF", "description": WRITTEN}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let created = app
        .create_item(json!({
            "title": "Line ends",
            "summary": WRITTEN,
            "body": WRITTEN,
            "categories": ["crlf"],
            "status": "published",
        }))
        .await;
    assert_eq!(created["summary"], READ);
    assert_eq!(created["body"], READ);
    let id = created["id"].as_i64().unwrap();
    let stored: serde_json::Value = app
        .admin(reqwest::Method::GET, &format!("/api/v1/items/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["summary"], READ);
    assert_eq!(stored["body"], READ);
    assert!(!stored["body_html"].as_str().unwrap().contains('\r'));

    let json_feed = app.json_feed("crlf").await;
    assert_eq!(json_feed["description"], READ);
    assert_eq!(json_feed["items"][0]["summary"], READ);
    let html = json_feed["items"][0]["content_html"].as_str().unwrap();
    assert!(html.contains(READ) && !html.contains('\r'), "{html:?}");

    let atom = app.atom("crlf").await;
    assert_eq!(atom.subtitle().map(|t| t.as_str()), Some(READ));
    let entry = &atom.entries()[0];
    assert_eq!(entry.summary().map(|t| t.as_str()), Some(READ));
    let content = entry.content().and_then(|c| c.value()).unwrap();
    assert!(
        content.contains(READ) && !content.contains('\r'),
        "{content:?}"
    );

    let rss = app.rss("crlf").await;
    assert_eq!(rss.description(), READ);
    assert_eq!(rss.items()[0].description(), Some(READ));
    let (_, raw) = app.feed("crlf", "rss").await;
    assert!(!raw.contains('\r') && !raw.contains("&#13;"), "{raw}");
}

#[tokio::test]
async fn carriage_returns_read_the_same_in_every_format_on_sqlite() {
    carriage_returns_read_the_same_in_every_format(spawn_app().await).await;
}

#[tokio::test]
async fn carriage_returns_read_the_same_in_every_format_on_postgres() {
    let Some(app) = spawn_app_with(Db::Postgres, |_| {}).await else {
        return;
    };
    carriage_returns_read_the_same_in_every_format(app).await;
}
