//! Pages and feeds per language (`NEWSDESK_LANGUAGES`, default `en,zh`): `/{lang}/...`
//! pages with `hreflang` alternates, a switch and the original with a note where a
//! version is missing; `/` by `Accept-Language`; feeds with `?lang=`. On both backends.

use crate::helpers::{Db, TestApp, spawn_app_with};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LANGUAGE, ETAG, LOCATION, VARY};
use serde_json::{Value, json};

/// A demo event in English only.
const EN_ONLY: &str = "unevoc-coaction-session-3-digital-pedagogy";
const EN_ONLY_TITLE: &str =
    "Coaction Initiative session 3: digital education technology and pedagogy";
/// A news item in Chinese only (see [`chinese_only`]).
const ZH_ONLY: &str = "unevoc-coaction-initiative-2023-concludes-zh";
const ZH_ONLY_TITLE: &str = "2023 UNEVOC 网络协作倡议项目圆满落幕";

/// A news item in Chinese only, published just after the demo's report.
fn chinese_only() -> Value {
    json!({
        "slug": ZH_ONLY,
        "title": ZH_ONLY_TITLE,
        "summary": "11月9日下午，项目最后一场研讨会在留仙洞校区举行。",
        "body": "各合作院校在会上交流了数字化转型案例。",
        "language": "zh",
        "categories": ["news"],
        "status": "published",
        "published_at": "2023-11-10T01:05:00Z"
    })
}

/// An English event with a Chinese version, the newest item of `events`.
fn open_day() -> Value {
    json!({
        "title": "Open day on campus",
        "summary": "Visit the labs",
        "body": "Come and **see** the labs.",
        "language": "en",
        "categories": ["events"],
        "status": "published",
        "published_at": "2023-11-15T08:00:00Z",
        "event": {
            "starts_at": "2023-11-23T14:00",
            "ends_at": "2023-11-23T17:30",
            "timezone": "Asia/Shanghai",
            "venue": "Main Hall",
            "online_url": "https://meet.example.org/open-day",
            "mode": "hybrid"
        },
        "translations": [{
            "language": "zh",
            "title": "校园开放日",
            "summary": "欢迎参观实验室",
            "body": "欢迎来**参观**实验室。",
            "venue": "大礼堂"
        }]
    })
}

/// The demo, [`chinese_only`] and [`open_day`], whose id is returned.
async fn app_on(
    db: Db,
    adjust: impl FnOnce(&mut newsdesk::config::Settings),
) -> Option<(TestApp, Value)> {
    let app = spawn_app_with(db, adjust).await?;
    app.load_demo().await;
    app.create_item(chinese_only()).await;
    let item = app.create_item(open_day()).await;
    Some((app, item["id"].clone()))
}

/// Gives the Chinese version of [`open_day`] a new title.
async fn retitle_the_version(app: &TestApp, id: &Value, title: &str) {
    let mut edited = open_day();
    edited["translations"][0]["title"] = json!(title);
    let r = app
        .admin(reqwest::Method::PUT, &format!("/api/v1/items/{id}"))
        .json(&edited)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
}

async fn page(app: &TestApp, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let r = app.get(path).send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.text().await.unwrap())
}

/// Handlebars writes `=` in attributes as `&#x3D;`, which a browser reads as `=`.
fn unescaped(html: &str) -> String {
    html.replace("&#x3D;", "=")
}

async fn language_pages(db: Db) {
    let Some((app, _)) = app_on(db, |_| {}).await else {
        return;
    };
    let a = &app.address;
    let slug = "open-day-on-campus";

    // The Chinese version, all in Chinese.
    let (status, headers, html) = page(&app, &format!("/zh/items/{slug}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[CONTENT_LANGUAGE], "zh");
    let html = unescaped(&html);
    assert!(html.contains("<html lang=\"zh\">"), "{html}");
    assert!(html.contains("<h1>校园开放日</h1>"), "{html}");
    assert!(html.contains("<strong>欢迎参观实验室</strong>"));
    assert!(html.contains("欢迎来<strong>参观</strong>实验室。"));
    assert!(html.contains("2023年11月15日"), "a Chinese date");
    assert!(
        html.contains("2023年11月23日（周四）14:00 – 17:30"),
        "{html}"
    );
    assert!(
        html.contains("<dd>线上线下结合</dd>"),
        "the mode in Chinese"
    );
    assert!(html.contains("<dd>大礼堂</dd>"), "the version's venue");
    assert!(html.contains(">首页</a>"));
    assert!(
        !html.contains("translation-note"),
        "no note: it has a version"
    );
    for (hreflang, path) in [
        ("en", format!("/en/items/{slug}")),
        ("zh", format!("/zh/items/{slug}")),
        ("x-default", format!("/items/{slug}")),
    ] {
        let link = format!("<link rel=\"alternate\" hreflang=\"{hreflang}\" href=\"{a}{path}\">");
        assert!(html.contains(&link), "missing {link}");
    }
    // The switch keeps the page; this language is the current one.
    assert!(html.contains(&format!(
        "<a href=\"{a}/en/items/{slug}\" lang=\"en\" hreflang=\"en\">English</a>"
    )));
    assert!(html.contains(&format!(
        "<a href=\"{a}/zh/items/{slug}\" lang=\"zh\" hreflang=\"zh\" aria-current=\"page\">中文</a>"
    )));
    // Feeds and calendar in the same language.
    assert!(html.contains(&format!("href=\"{a}/feeds/events.atom?lang=zh\"")));
    assert!(html.contains(&format!("{a}/zh/items/{slug}.ics")));
    assert!(html.contains(&format!("href=\"{a}/zh/categories/events\"")));

    // The English original under /en/, in English.
    let (_, headers, html) = page(&app, &format!("/en/items/{slug}")).await;
    assert_eq!(headers[CONTENT_LANGUAGE], "en");
    assert!(html.contains("<html lang=\"en\">"));
    assert!(html.contains("<h1>Open day on campus</h1>"));
    assert!(html.contains("15 November 2023"));
    assert!(html.contains("<dd>Hybrid (in person and online)</dd>"));
    assert!(html.contains("aria-current=\"page\">English</a>"));

    // No Chinese version: the English original, marked and noted, in a Chinese page.
    let (status, _, html) = page(&app, &format!("/zh/items/{EN_ONLY}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("<html lang=\"zh\">"));
    assert!(
        html.contains("这条内容暂无中文版本，以下为英文原文。"),
        "{html}"
    );
    assert!(html.contains(&format!("<h1 lang=\"en\">{EN_ONLY_TITLE}</h1>")));
    assert!(html.contains("<div class=\"body\" lang=\"en\">"));
    assert!(html.contains("发布于"), "the page's own words stay Chinese");
    // And the other way round.
    let (_, _, html) = page(&app, &format!("/en/items/{ZH_ONLY}")).await;
    assert!(html.contains("This item is not available in English; shown in its original Chinese."));
    assert!(html.contains(&format!("<h1 lang=\"zh\">{ZH_ONLY_TITLE}</h1>")));

    // The originals' view: the original, no note, in its own language.
    let (_, headers, html) = page(&app, &format!("/items/{slug}")).await;
    assert!(html.contains("<h1>Open day on campus</h1>") && !html.contains("translation-note"));
    assert_eq!(headers[CONTENT_LANGUAGE], "en");
    let (_, headers, html) = page(&app, &format!("/items/{ZH_ONLY}")).await;
    assert_eq!(headers[CONTENT_LANGUAGE], "zh");
    assert!(html.contains(&format!("<h1>{ZH_ONLY_TITLE}</h1>")));
    assert!(!html.contains("aria-current"), "no language is this page's");

    // A category page in Chinese: the version, and the original marked on its card.
    let (status, _, html) = page(&app, "/zh/categories/events").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("<a href=\"{a}/zh/items/{slug}\">校园开放日</a>")));
    assert!(html.contains(&format!(
        "<h2 lang=\"en\"><a href=\"{a}/zh/items/{EN_ONLY}\">{EN_ONLY_TITLE}</a></h2>"
    )));
    assert!(html.contains("<span class=\"translation-note\">英文原文</span>"));
    assert!(html.contains("订阅本栏目："));
    // The description, written once in the default language, is marked as English.
    assert!(
        html.contains("<p lang=\"en\">Seminars, ceremonies and other events</p>"),
        "{html}"
    );
    let (_, _, html) = page(&app, "/en/categories/events").await;
    assert!(html.contains("<p>Seminars, ceremonies and other events</p>"));
    // The front page and the digest archive exist in each language too.
    let (_, _, html) = page(&app, "/zh/").await;
    assert!(html.contains("<h1>最新新闻与活动</h1>") && html.contains("校园开放日"));
    let (status, _, html) = page(&app, "/zh/digests/partners").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("往期摘要") && html.contains("<html lang=\"zh\">"));
    let r = app
        .admin(reqwest::Method::POST, "/api/v1/lists/partners/digests")
        .json(&json!({"period": "2023-W45"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    let (status, _, html) = page(&app, "/zh/digests/partners/2023-W45").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("<h1>合作院校通讯：2023年11月6日 – 2023年11月12日</h1>"),
        "{html}"
    );
    assert!(html.contains("<h2>即将举行</h2>"));
    // The week's event, in its Chinese version.
    assert!(html.contains(&format!(
        "href=\"{a}/zh/items/{}\"",
        newsdesk::demo::FINAL_SESSION_SLUG
    )));
    assert!(html.contains(newsdesk::demo::FINAL_SESSION_TITLE_ZH));
    let (_, _, html) = page(&app, "/en/digests/partners/2023-W45").await;
    assert!(html.contains("<h1>Partner institutions digest: 6–12 November 2023</h1>"));

    // A calendar file in Chinese.
    let (status, _, ics) = page(&app, &format!("/zh/items/{slug}.ics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        ics.replace("\r\n ", "")
            .contains("SUMMARY;LANGUAGE=zh:校园开放日"),
        "{ics}"
    );

    // A site language spelt otherwise is sent on (308) to the same page under it.
    for (path, to) in [
        (format!("/ZH/items/{slug}"), format!("/zh/items/{slug}")),
        (
            format!("/zh-CN/items/{slug}?x=1"),
            format!("/zh/items/{slug}?x=1"),
        ),
        (
            "/EN-gb/categories/events".into(),
            "/en/categories/events".into(),
        ),
        ("/Zh".into(), "/zh/".into()),
    ] {
        let r = app.get(&path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT, "{path}");
        assert_eq!(r.headers()[LOCATION], to.as_str(), "{path}");
        assert!(
            r.headers().contains_key("content-security-policy"),
            "{path}"
        );
    }
    // What is not a site language, as configured, is not a page.
    for path in [
        format!("/fr/items/{slug}"),
        format!("/fr-CA/items/{slug}"),
        "/fr/".into(),
        "/fr".into(),
        "/fr/categories/events".into(),
        "/fr/digests/partners".into(),
        "/fr/digests/partners/2023-W45".into(),
        "/fr/subscribe".into(),
        "/fr/subscribe/confirm/sometoken".into(),
        "/fr/unsubscribe/sometoken".into(),
        "/fr/preferences/sometoken".into(),
    ] {
        let (status, headers, html) = page(&app, &path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(headers.contains_key("content-security-policy"), "{path}");
        assert!(html.contains("<h1>Not found</h1>"), "{path}");
    }
    // A missing page under a language is a 404 in that language.
    let (status, headers, html) = page(&app, "/zh/items/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[CONTENT_LANGUAGE], "zh");
    assert!(
        html.contains("<h1>未找到</h1>") && html.contains("没有这条内容。"),
        "{html}"
    );
    let (status, _, _) = page(&app, "/zh/categories/events?page=0").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A language's front page is at /{lang}/.
    let r = app.get("/zh").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(r.headers()[LOCATION], "/zh/");
}

#[tokio::test]
async fn language_pages_sqlite() {
    language_pages(Db::Sqlite).await;
}

#[tokio::test]
async fn language_pages_postgres() {
    language_pages(Db::Postgres).await;
}

async fn the_front_page_follows_accept_language(db: Db) {
    let Some((app, id)) = app_on(db, |_| {}).await else {
        return;
    };
    let front = |accept: Option<&'static str>| {
        let mut r = app.get("/");
        if let Some(a) = accept {
            r = r.header("accept-language", a);
        }
        async move { r.send().await.unwrap() }
    };
    let zh_tag = app.get("/zh/").send().await.unwrap().headers()[ETAG].clone();
    let en_tag = app.get("/en/").send().await.unwrap().headers()[ETAG].clone();
    assert_ne!(zh_tag, en_tag);
    for (accept, lang) in [
        (Some("zh-CN,zh;q=0.9"), "zh"),
        (Some("zh-TW"), "zh"),
        (Some("fr-FR,fr;q=0.9,zh;q=0.5,en;q=0.4"), "zh"),
        (Some("fr"), "en"),
        (Some("*"), "en"),
        (Some("en;q=0, *"), "zh"),
        (Some("not a language header;;;"), "en"),
        (None, "en"),
    ] {
        let r = front(accept).await;
        assert_eq!(r.status(), StatusCode::OK, "{accept:?}");
        let h = r.headers().clone();
        assert_eq!(h[CONTENT_LANGUAGE], lang, "{accept:?}");
        let vary = h[VARY].to_str().unwrap();
        assert!(vary.contains("accept-language") && vary.contains("accept-encoding"));
        // The very page of /{lang}/: same ETag.
        let tag = if lang == "zh" { &zh_tag } else { &en_tag };
        assert_eq!(&h[ETAG], tag, "{accept:?}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!("<html lang=\"{lang}\">")),
            "{accept:?}"
        );
        let title = if lang == "zh" {
            "校园开放日"
        } else {
            "Open day on campus"
        };
        assert!(html.contains(title), "{accept:?}");
        assert!(html.contains(&format!(
            "<link rel=\"alternate\" hreflang=\"x-default\" href=\"{}/\">",
            app.address
        )));
    }
    // A copy is current only for the language it is in.
    let r = app
        .get("/")
        .header("accept-language", "zh")
        .header("if-none-match", zh_tag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert!(
        r.headers()[VARY]
            .to_str()
            .unwrap()
            .contains("accept-language")
    );
    let r = app
        .get("/")
        .header("accept-language", "en")
        .header("if-none-match", zh_tag.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // One cache entry per language, dropped by a write like the front page's.
    assert!(app.state.pages.contains("/zh/") && app.state.pages.contains("/en/"));
    retitle_the_version(&app, &id, "校园开放日（改期）").await;
    assert!(!app.state.pages.contains("/zh/") && !app.state.pages.contains("/en/"));
    let html = front(Some("zh")).await.text().await.unwrap();
    assert!(html.contains("校园开放日（改期）"));
}

#[tokio::test]
async fn the_front_page_follows_accept_language_sqlite() {
    the_front_page_follows_accept_language(Db::Sqlite).await;
}

#[tokio::test]
async fn the_front_page_follows_accept_language_postgres() {
    the_front_page_follows_accept_language(Db::Postgres).await;
}

fn atom(body: &str) -> atom_syndication::Feed {
    atom_syndication::Feed::read_from(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn entry<'a>(feed: &'a atom_syndication::Feed, title: &str) -> &'a atom_syndication::Entry {
    feed.entries()
        .iter()
        .find(|e| e.title().as_str() == title)
        .unwrap_or_else(|| panic!("no entry {title:?}"))
}

async fn feeds_per_language(db: Db) {
    let Some((app, id)) = app_on(db, |s| s.feed_page_size = 5).await else {
        return;
    };
    let a = &app.address;
    let get = |path: String| {
        let r = app.get(&path);
        async move {
            let r = r.send().await.unwrap();
            let (status, headers) = (r.status(), r.headers().clone());
            (status, headers, r.text().await.unwrap())
        }
    };

    // Atom in Chinese: the feed says zh; the version in it; the original marked.
    let (status, zh_headers, body) = get("/feeds/events.atom?lang=zh".into()).await;
    assert_eq!(status, StatusCode::OK);
    let zh = atom(&body);
    assert_eq!(zh.lang(), Some("zh"));
    assert_eq!(
        zh.title().as_str(),
        "SZPU News: 活动 · 中文",
        "the category by its Chinese name"
    );
    assert!(zh.id().ends_with(":feed/events/zh"), "{}", zh.id());
    // The category's description is written in English: the Chinese feed says in its
    // own words what it holds instead (JSON Feed and RSS too).
    assert_eq!(
        zh.subtitle().map(|t| t.as_str()),
        Some("SZPU News的活动"),
        "no English text labelled zh"
    );
    let zh_json: serde_json::Value =
        serde_json::from_str(&get("/feeds/events.json?lang=zh".into()).await.2).unwrap();
    assert_eq!(zh_json["description"], "SZPU News的活动");
    let en = atom(&get("/feeds/events.atom?lang=en".into()).await.2);
    assert_eq!(
        en.subtitle().map(|t| t.as_str()),
        Some("Seminars, ceremonies and other events")
    );
    let link = |f: &atom_syndication::Feed, rel: &str| {
        f.links()
            .iter()
            .find(|l| l.rel() == rel)
            .map(|l| l.href().to_owned())
    };
    assert_eq!(
        link(&zh, "self").unwrap(),
        format!("{a}/feeds/events.atom?lang=zh")
    );
    assert_eq!(
        link(&zh, "alternate").unwrap(),
        format!("{a}/zh/categories/events")
    );
    let version = entry(&zh, "校园开放日");
    assert_eq!(version.title().lang, None, "in the feed's language");
    assert_eq!(
        version.links()[0].href(),
        format!("{a}/zh/items/open-day-on-campus")
    );
    assert_eq!(version.links()[0].hreflang(), Some("zh"));
    let content = version.content().unwrap().value().unwrap();
    assert!(
        content.contains("时间：") && content.contains("大礼堂"),
        "{content}"
    );
    assert!(content.contains("欢迎来<strong>参观</strong>实验室。"));
    let original = entry(&zh, EN_ONLY_TITLE);
    assert_eq!(original.title().lang.as_deref(), Some("en"));
    assert_eq!(original.content().unwrap().lang(), Some("en"));
    let content = original.content().unwrap().value().unwrap();
    assert!(
        content.starts_with(
            "<p class=\"translation-note\" lang=\"zh\"><em>这条内容暂无中文版本，以下为英文原文。</em></p>"
        ),
        "{content}"
    );
    assert!(
        content.contains("When:"),
        "the original's event block stays English"
    );

    // Without lang: each original, each saying its language; ids shared.
    let (_, headers, body) = get("/feeds/all.atom".into()).await;
    let originals = atom(&body);
    assert_eq!(originals.lang(), None, "mixed languages: none for the feed");
    let open_day = entry(&originals, "Open day on campus");
    assert_eq!(open_day.title().lang.as_deref(), Some("en"));
    assert_eq!(
        open_day.links()[0].href(),
        format!("{a}/items/open-day-on-campus")
    );
    assert_eq!(open_day.id(), version.id(), "one id for every language");
    assert_ne!(headers[ETAG], zh_headers[ETAG]);
    let zh_original = entry(&originals, ZH_ONLY_TITLE);
    assert_eq!(zh_original.title().lang.as_deref(), Some("zh"));
    assert!(
        !zh_original
            .content()
            .unwrap()
            .value()
            .unwrap()
            .contains("translation-note")
    );

    // English: the Chinese-only item in Chinese, with an English note.
    let en = atom(&get("/feeds/all.atom?lang=en".into()).await.2);
    assert_eq!(en.lang(), Some("en"));
    assert_eq!(entry(&en, "Open day on campus").title().lang, None);
    let zh_only = entry(&en, ZH_ONLY_TITLE);
    assert_eq!(zh_only.title().lang.as_deref(), Some("zh"));
    assert!(zh_only.content().unwrap().value().unwrap().contains(
        "<p class=\"translation-note\" lang=\"en\"><em>This item is not available in English; shown in its original Chinese.</em></p>"
    ));
    // Paging keeps the language: 9 items at 5 a page.
    assert_eq!(
        link(&en, "next").unwrap(),
        format!("{a}/feeds/all.atom?lang=en&page=2")
    );
    let (status, _, body) = get("/feeds/all.atom?lang=en&page=2".into()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(atom(&body).lang(), Some("en"));

    // RSS: the channel's language, and the items in another say theirs.
    let body = get("/feeds/events.rss?lang=zh".into()).await.2;
    let rss = rss::Channel::read_from(body.as_bytes()).unwrap();
    assert_eq!(rss.language(), Some("zh"));
    let item = |title: &str| {
        rss.items()
            .iter()
            .find(|i| i.title() == Some(title))
            .unwrap_or_else(|| panic!("no item {title:?}"))
    };
    let dc_language = |i: &rss::Item| {
        i.dublin_core_ext()
            .map(|dc| dc.languages().to_vec())
            .unwrap_or_default()
    };
    assert!(dc_language(item("校园开放日")).is_empty());
    assert_eq!(dc_language(item(EN_ONLY_TITLE)), ["en"]);
    assert_eq!(
        item("校园开放日").link(),
        Some(format!("{a}/zh/items/open-day-on-campus").as_str())
    );

    // JSON Feed: top-level and per item.
    let json: Value =
        serde_json::from_str(&get("/feeds/events.json?lang=zh".into()).await.2).unwrap();
    assert_eq!(json["language"], "zh");
    assert_eq!(json["feed_url"], format!("{a}/feeds/events.json?lang=zh"));
    let items = json["items"].as_array().unwrap();
    let by_title = |t: &str| items.iter().find(|i| i["title"] == t).unwrap().clone();
    assert_eq!(by_title("校园开放日")["language"], "zh");
    assert_eq!(by_title("校园开放日")["_event"]["venue"], "大礼堂");
    assert_eq!(by_title("校园开放日")["_event"]["mode"], "线上线下结合");
    assert_eq!(by_title(EN_ONLY_TITLE)["language"], "en");
    // Without lang: a language only when all share one (all of events are English).
    let plain: Value = serde_json::from_str(&get("/feeds/all.json".into()).await.2).unwrap();
    assert!(plain.get("language").is_none(), "{plain}");
    let plain: Value = serde_json::from_str(&get("/feeds/events.json".into()).await.2).unwrap();
    assert_eq!(plain["language"], "en");

    // iCalendar: the event's words carry their language.
    let ics = get("/feeds/events.ics?lang=zh".into())
        .await
        .2
        .replace("\r\n ", "");
    assert!(ics.contains("SUMMARY;LANGUAGE=zh:校园开放日"), "{ics}");
    assert!(
        ics.contains(&format!("SUMMARY;LANGUAGE=en:{EN_ONLY_TITLE}")),
        "{ics}"
    );
    assert!(
        ics.contains("DESCRIPTION;LANGUAGE=zh:欢迎参观实验室"),
        "{ics}"
    );

    // Conditional GET per language.
    let r = app
        .get("/feeds/events.atom?lang=zh")
        .header("if-none-match", zh_headers[ETAG].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    let r = app
        .get("/feeds/events.atom?lang=en")
        .header("if-none-match", zh_headers[ETAG].clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A site language spelt otherwise: sent on (308) to its feed, the page kept.
    for (asked, to) in [
        ("zh-CN", "/feeds/events.atom?lang=zh"),
        ("ZH&page=2", "/feeds/events.atom?lang=zh&page=2"),
        ("zh-Hans-CN", "/feeds/events.atom?lang=zh"),
        ("en-GB&page=x", "/feeds/events.atom?lang=en"),
    ] {
        let (status, headers, _) = get(format!("/feeds/events.atom?lang={asked}")).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT, "{asked}");
        assert_eq!(headers[reqwest::header::LOCATION], to, "{asked}");
    }
    // Not a site language: 404 naming the parameter and the languages.
    for bad in ["fr", "fr-CA", "", "%3Cx%3E", "en%20", "zh%0d%0aX:y"] {
        let (status, _, body) = get(format!("/feeds/events.atom?lang={bad}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{bad}");
        assert!(
            body.contains("lang=") && body.contains("en, zh"),
            "{bad}: {body}"
        );
    }

    // OPML: the originals, then a group per language; or one language's only.
    let body = get("/feeds.opml".into()).await.2;
    let doc = opml::OPML::from_str(&body).unwrap();
    let groups: Vec<(&str, usize)> = doc
        .body
        .outlines
        .iter()
        .filter(|o| o.xml_url.is_none())
        .map(|o| (o.text.as_str(), o.outlines.len()))
        .collect();
    assert_eq!(groups, [("English", 4), ("中文", 4)]);
    let body = get("/feeds.opml?lang=zh&format=rss".into()).await.2;
    let doc = opml::OPML::from_str(&body).unwrap();
    let urls: Vec<_> = doc
        .body
        .outlines
        .iter()
        .filter_map(|o| o.xml_url.clone())
        .collect();
    assert_eq!(urls.len(), 4);
    assert!(urls.iter().all(|u| u.ends_with(".rss?lang=zh")), "{urls:?}");
    assert_eq!(doc.body.outlines[0].text, "SZPU News · 中文");
    // Spelt otherwise, as for the feeds: sent on to the site language's list.
    for (asked, to) in [
        ("ZH", "/feeds.opml?lang=zh"),
        ("zh-CN&format=rss", "/feeds.opml?lang=zh&format=rss"),
        ("en-GB&format=json", "/feeds.opml?lang=en&format=json"),
    ] {
        let (status, headers, _) = get(format!("/feeds.opml?lang={asked}")).await;
        assert_eq!(status, StatusCode::PERMANENT_REDIRECT, "{asked}");
        assert_eq!(headers[reqwest::header::LOCATION], to, "{asked}");
    }
    let (status, _, body) = get("/feeds.opml?lang=fr".into()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("lang="), "{body}");

    // An edit of a version reaches that language's cached feed at once.
    retitle_the_version(&app, &id, "校园开放日（改期）").await;
    let zh = atom(&get("/feeds/events.atom?lang=zh".into()).await.2);
    entry(&zh, "校园开放日（改期）");
}

#[tokio::test]
async fn feeds_per_language_sqlite() {
    feeds_per_language(Db::Sqlite).await;
}

#[tokio::test]
async fn feeds_per_language_postgres() {
    feeds_per_language(Db::Postgres).await;
}

/// The languages are the site's: one language, Chinese, makes `/` Chinese and leaves
/// no English pages or feeds.
#[tokio::test]
async fn only_the_configured_languages_exist() {
    let (app, _) = app_on(Db::Sqlite, |s| {
        s.languages = newsdesk::i18n::SiteLanguages::parse("zh").unwrap();
    })
    .await
    .unwrap();
    let (_, headers, html) = page(&app, "/").await;
    assert_eq!(headers[CONTENT_LANGUAGE], "zh");
    assert!(html.contains("<h1>最新新闻与活动</h1>"));
    let alternates = html.matches("hreflang=\"").count();
    // zh and x-default in the head, zh in the switch.
    assert_eq!(alternates, 3, "{html}");
    assert_eq!(page(&app, "/en/").await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        page(&app, "/feeds/all.atom?lang=en").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        page(&app, "/feeds/all.atom?lang=zh").await.0,
        StatusCode::OK
    );
    // The originals' pages speak the default language: Chinese.
    let (_, _, html) = page(&app, "/categories/events").await;
    assert!(html.contains("<html lang=\"zh\">") && html.contains("<h2 lang=\"en\">"));
}
