use crate::helpers::{HOSTILE_TITLE, hostile_event, spawn_app};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

#[tokio::test]
async fn the_front_page_lists_latest_items_and_categories() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app.get("/").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    assert!(html.contains("The 2023 UNEVOC Network Coaction Initiative ends with shared cases"));
    // The report is one item in English and Chinese, not a second item in Chinese.
    assert_eq!(html.matches("ends with shared cases").count(), 1);
    assert!(!html.contains(newsdesk::demo::REPORT_TITLE_ZH));
    assert!(html.contains("News &amp; Events"));
    // `/` is the front page of the reader's language (English without Accept-Language):
    // its links stay in that language.
    assert!(html.contains(&format!("href=\"{}/en/categories/events\"", app.address)));
    assert!(
        html.contains(&format!("href=\"{}/en/subscribe\"", app.address)),
        "the front page links to the subscribe form in its language"
    );
    assert!(html.contains(&format!(
        "type=\"application/atom+xml\" title=\"SZPU News · English (Atom)\" href=\"{}/feeds/all.atom?lang&#x3D;en\"",
        app.address
    )));
}

#[tokio::test]
async fn a_category_page_lists_its_items_and_advertises_its_feeds() {
    let app = spawn_app().await;
    app.load_demo().await;
    let html = app
        .get("/categories/events")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for ext_type in [
        ("rss", "application/rss+xml"),
        ("atom", "application/atom+xml"),
        ("json", "application/feed+json"),
        ("ics", "text/calendar"),
    ] {
        let link = format!(
            "<link rel=\"alternate\" type=\"{}\" title=\"SZPU News: Events ({})\" href=\"{}/feeds/events.{}\">",
            ext_type.1,
            match ext_type.0 {
                "rss" => "RSS",
                "atom" => "Atom",
                "json" => "JSON Feed",
                _ => "iCalendar",
            },
            app.address,
            ext_type.0
        );
        assert!(html.contains(&link), "missing {link}");
    }
    assert!(
        html.contains(
            "2023 UNEVOC Network Coaction Initiative: final session and closing ceremony"
        )
    );
    assert!(
        !html.contains("ends with shared cases"),
        "a news item on the events page"
    );
    let parent = app
        .get("/categories/news-events")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(parent.contains("ends with shared cases") && parent.contains("final session"));
    assert_eq!(
        app.get("/categories/nope").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn an_item_page_shows_date_author_categories_and_event() {
    let app = spawn_app().await;
    app.load_demo().await;
    let html = app
        .get("/items/unevoc-coaction-initiative-2023-final-session")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains(
        "<h1>2023 UNEVOC Network Coaction Initiative: final session and closing ceremony</h1>"
    ));
    assert!(
        html.contains("Thu 9 November 2023, 14:00 – 17:30"),
        "local time of the event"
    );
    assert!(html.contains("Liuxiandong Campus"));
    assert!(html.contains("Hybrid"));
    assert!(html.contains("1 November 2023"), "publication date");
    assert!(html.contains(&format!(
        "{}/items/unevoc-coaction-initiative-2023-final-session.ics",
        app.address
    )));
    assert!(html.contains(">Events</a>"));
}

#[tokio::test]
async fn a_hostile_item_is_escaped_and_sanitised_on_its_page() {
    let app = spawn_app().await;
    app.load_demo().await;
    let item = app.create_item(hostile_event()).await;
    let html = app
        .get(&format!("/items/{}", item["slug"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains(HOSTILE_TITLE),
        "the raw title reached the page"
    );
    assert!(html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; ]]&gt;"));
    assert!(!html.contains("<script>alert"));
    assert!(!html.contains("onerror"));
    assert!(!html.contains("javascript:"));
    assert!(html.contains("🎉 研讨会"));
}

#[tokio::test]
async fn an_event_has_its_own_calendar_file() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .get("/items/unevoc-coaction-initiative-2023-final-session.ics")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    let ics = r.text().await.unwrap();
    assert!(ics.starts_with("BEGIN:VCALENDAR\r\n"));
    assert!(ics.contains("VERSION:2.0\r\n") && ics.contains("METHOD:PUBLISH\r\n"));
    assert!(ics.contains("DTSTART:20231109T060000Z\r\n"), "{ics}");
    assert_eq!(ics.matches("BEGIN:VEVENT").count(), 1);
    assert!(ics.lines().all(|l| l.len() <= 75), "long line in {ics}");
    // A news item has no calendar.
    let r = app
        .get("/items/unevoc-coaction-initiative-2023-concludes.ics")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn unknown_pages_get_a_plain_404_page() {
    let app = spawn_app().await;
    for path in ["/items/nope", "/nowhere", "/items/nope.ics"] {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(r.text().await.unwrap().contains("<h1>Not found</h1>"));
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/healthz").send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::OK
    );
    app.state.store.close().await;
    assert_eq!(
        app.get("/readyz").send().await.unwrap().status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
}

/// Finding 3 of issue 12: every kind of public page carries the security headers, and
/// the stylesheet they link is allowed by their policy.
#[tokio::test]
async fn every_public_page_carries_the_security_headers() {
    let app = spawn_app().await;
    app.load_demo().await;
    let pages = [
        ("/", StatusCode::OK),
        ("/categories/events", StatusCode::OK),
        (
            "/items/unevoc-coaction-initiative-2023-final-session",
            StatusCode::OK,
        ),
        ("/subscribe", StatusCode::OK),
        ("/subscribe/confirm/not-a-token", StatusCode::NOT_FOUND),
        ("/unsubscribe/not-a-token", StatusCode::NOT_FOUND),
        ("/preferences/not-a-token", StatusCode::NOT_FOUND),
        ("/digests/partners", StatusCode::OK),
        ("/no/such/page", StatusCode::NOT_FOUND),
    ];
    for (path, status) in pages {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.status(), status, "{path}");
        let h = r.headers();
        let csp = h
            .get("content-security-policy")
            .unwrap_or_else(|| panic!("{path}: no CSP"))
            .to_str()
            .unwrap();
        for directive in [
            "default-src 'none'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
            "base-uri 'none'",
        ] {
            assert!(
                csp.contains(directive),
                "{path}: {directive} missing in {csp}"
            );
        }
        assert!(!csp.contains("unsafe"), "{path}: {csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        let html = r.text().await.unwrap();
        // The policy allows no inline style: none may be left in a template.
        assert!(!html.contains("<style"), "{path}: inline <style>");
        assert!(!html.contains(" style="), "{path}: a style attribute");
        assert!(!html.contains("<script"), "{path}: a script");
    }
    let css = app.get("/static/site.css").send().await.unwrap();
    assert_eq!(css.status(), StatusCode::OK);
    assert!(
        css.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert_eq!(css.headers()["x-content-type-options"], "nosniff");
}

/// Finding 3 of issue 12: every feed format, the OPML, an item's `.ics` and a feed's
/// error answer are `nosniff`.
#[tokio::test]
async fn every_feed_is_nosniff() {
    let app = spawn_app().await;
    app.load_demo().await;
    for path in [
        "/feeds/all.rss",
        "/feeds/all.atom",
        "/feeds/all.json",
        "/feeds/events.ics",
        "/feeds.opml",
        "/items/unevoc-coaction-initiative-2023-final-session.ics",
        "/digests/partners.atom",
        "/feeds/no-such-category.rss",
    ] {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.headers()["x-content-type-options"], "nosniff", "{path}");
    }
    // A conditional GET answered 304 from the cache carries it as well.
    let first = app.get("/feeds/all.atom").send().await.unwrap();
    let etag = first.headers()["etag"].clone();
    let again = app
        .get("/feeds/all.atom")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["x-content-type-options"], "nosniff");
}
