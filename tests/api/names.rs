//! Names by language for lists and categories, on both backends: `names` through the
//! API (a write replaces the set with the rest of the row; a bad name is a 422 naming
//! `names.TAG` and nothing is written), the names in pages under `/{lang}/`, feeds with
//! `?lang=` and digest archive pages (cached ones dropped when a name changes), and the
//! admin forms' name fields.

use crate::admin_pages::{add_user, sign_in};
use crate::helpers::{Db, TestApp, spawn_app_with};
use newsdesk::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn get_json(app: &TestApp, path: &str) -> Value {
    let r = app.admin(Method::GET, path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.unwrap()
}

async fn put(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = app
        .admin(Method::PUT, path)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn page(app: &TestApp, path: &str) -> String {
    let r = app.get(path).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.text().await.unwrap()
}

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// A list's settings as a PUT states them, from its JSON.
fn list_request(list: &Value, names: Value) -> Value {
    let mut request = json!({"names": names});
    for key in [
        "slug",
        "name",
        "description",
        "categories",
        "opt_in",
        "visibility",
        "schedule_cron",
        "schedule_timezone",
        "min_items",
        "grace_minutes",
        "schedule_delivery",
    ] {
        request[key] = list[key].clone();
    }
    request
}

#[tokio::test]
async fn category_names_round_trip_and_show_in_pages_and_feeds_on_both_backends() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app_with(db, |_| {}).await else {
            continue;
        };
        app.load_demo().await;
        // The demo's Chinese names.
        let events = get_json(&app, "/api/v1/categories/events").await;
        assert_eq!(events["names"], json!({"zh": "活动"}), "{db:?}");
        let zh_page = page(&app, "/zh/categories/events").await;
        assert!(zh_page.contains("<title>活动"), "{db:?}: {zh_page}");
        assert!(zh_page.contains("新闻与活动"), "{db:?}: the breadcrumb");
        let en_page = page(&app, "/en/categories/events").await;
        assert!(en_page.contains("<title>Events"), "{db:?}: {en_page}");
        assert!(!en_page.contains("活动") && !en_page.contains("新闻与活动"));
        let zh_feed = app.get("/feeds/events.atom?lang=zh").send().await.unwrap();
        let zh_feed =
            atom_syndication::Feed::read_from(&zh_feed.bytes().await.unwrap()[..]).unwrap();
        assert_eq!(zh_feed.title().as_str(), "SZPU News: 活动 · 中文", "{db:?}");
        let en_feed = app.get("/feeds/events.atom?lang=en").send().await.unwrap();
        let en_feed =
            atom_syndication::Feed::read_from(&en_feed.bytes().await.unwrap()[..]).unwrap();
        assert_eq!(en_feed.title().as_str(), "SZPU News: Events · English");
        // The other formats say the same.
        let rss = page(&app, "/feeds/events.rss?lang=zh").await;
        assert!(
            rss.contains("<title>SZPU News: 活动 · 中文</title>"),
            "{db:?}: {rss}"
        );
        let json_feed: Value =
            serde_json::from_str(&page(&app, "/feeds/events.json?lang=zh").await).unwrap();
        assert_eq!(json_feed["title"], "SZPU News: 活动 · 中文");
        let ics = page(&app, "/feeds/events.ics?lang=zh").await;
        assert!(
            ics.contains("X-WR-CALNAME:SZPU News: 活动 · 中文"),
            "{db:?}: {ics}"
        );
        let originals = page(&app, "/feeds/events.atom").await;
        assert!(originals.contains("SZPU News: Events") && !originals.contains("活动"));
        // The items' categories in the Chinese feed are named in Chinese.
        for entry in zh_feed.entries() {
            let labels: Vec<_> = entry
                .categories()
                .iter()
                .filter_map(|c| c.label())
                .collect();
            assert!(labels.contains(&"活动"), "{db:?}: {labels:?}");
        }

        // A rename in two languages: the cached pages and feeds show it at once.
        let (status, renamed) = put(
            &app,
            "/api/v1/categories/events",
            &json!({"slug": "events", "name": "Events", "parent": "news-events",
                "description": "Seminars, ceremonies and other events",
                "names": {"zh": "校园活动", "PT-BR": "Eventos"}}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {renamed}");
        assert_eq!(
            renamed["names"],
            json!({"pt-BR": "Eventos", "zh": "校园活动"})
        );
        assert_eq!(
            get_json(&app, "/api/v1/categories/events").await["names"],
            renamed["names"]
        );
        let zh_page = page(&app, "/zh/categories/events").await;
        assert!(zh_page.contains("<title>校园活动"), "{db:?}: {zh_page}");
        let zh_feed = page(&app, "/feeds/events.atom?lang=zh").await;
        assert!(zh_feed.contains("SZPU News: 校园活动 · 中文"), "{db:?}");
        assert!(
            page(&app, "/en/categories/events")
                .await
                .contains("<title>Events")
        );

        // Bad names: each named, nothing written (not the name either).
        let before = get_json(&app, "/api/v1/categories/events").await;
        let (status, problem) = put(
            &app,
            "/api/v1/categories/events",
            &json!({"slug": "events", "name": "Happenings", "parent": "news-events",
                "names": {"chinese": "活动", "zh": "  ", "fr": "x".repeat(201)}}),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        assert_eq!(
            fields(&problem),
            ["names.chinese", "names.fr", "names.zh"],
            "{problem}"
        );
        let after = get_json(&app, "/api/v1/categories/events").await;
        assert_eq!(after["name"], before["name"]);
        assert_eq!(after["names"], before["names"]);
        // A new category with a bad name is not created.
        let r = app
            .admin(Method::POST, "/api/v1/categories")
            .json(&json!({"slug": "talks", "name": "Talks", "names": {"zh-": "讲座"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let r = app
            .admin(Method::GET, "/api/v1/categories/talks")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        // A PUT without names leaves the category none: the default name everywhere.
        let (status, plain) = put(
            &app,
            "/api/v1/categories/events",
            &json!({"slug": "events", "name": "Events", "parent": "news-events"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(plain["names"], json!({}));
        assert!(
            page(&app, "/zh/categories/events")
                .await
                .contains("<title>Events")
        );
    }
}

#[tokio::test]
async fn list_names_round_trip_and_show_in_the_digest_archive_on_both_backends() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app_with(db, |_| {}).await else {
            continue;
        };
        app.load_demo().await;
        let list = get_json(&app, "/api/v1/lists/partners").await;
        assert_eq!(list["names"], json!({"zh": "合作院校通讯"}), "{db:?}");
        let zh_archive = page(&app, "/zh/digests/partners").await;
        assert!(zh_archive.contains("合作院校通讯"), "{db:?}: {zh_archive}");
        assert!(
            !zh_archive.contains("Partner institutions digest"),
            "{db:?}"
        );
        let en_archive = page(&app, "/en/digests/partners").await;
        assert!(en_archive.contains("Partner institutions digest"));
        assert!(!en_archive.contains("合作院校通讯"));

        // Renamed: the cached archive page shows the new name at once.
        let (status, renamed) = put(
            &app,
            "/api/v1/lists/partners",
            &list_request(
                &list,
                json!({"zh": "合作伙伴周报", "zh-Hant": "合作夥伴週報"}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {renamed}");
        assert_eq!(
            renamed["names"],
            json!({"zh": "合作伙伴周报", "zh-Hant": "合作夥伴週報"})
        );
        assert_eq!(renamed["name"], list["name"]);
        assert_eq!(renamed["schedule_cron"], list["schedule_cron"]);
        assert_eq!(
            get_json(&app, "/api/v1/lists/partners").await["names"],
            renamed["names"]
        );
        assert!(
            page(&app, "/zh/digests/partners")
                .await
                .contains("合作伙伴周报")
        );

        // Bad names: 422 naming each, nothing written.
        let mut bad = list_request(&list, json!({"zh": "", "en_GB": "Partners"}));
        bad["description"] = json!("changed");
        let (status, problem) = put(&app, "/api/v1/lists/partners", &bad).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        assert_eq!(fields(&problem), ["names.en_GB", "names.zh"], "{problem}");
        let (status, problem) = put(
            &app,
            "/api/v1/lists/partners",
            &list_request(&list, json!({"zh": 5})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        let after = get_json(&app, "/api/v1/lists/partners").await;
        assert_eq!(after["names"], renamed["names"]);
        assert_eq!(after["description"], list["description"]);
    }
}

#[tokio::test]
async fn the_admin_forms_save_names_per_language_on_both_backends() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app_with(db, |_| {}).await else {
            continue;
        };
        app.load_demo().await;
        add_user(&app, "alice", Role::Admin).await;
        let b = sign_in(&app, "alice").await;

        // The forms have a field for Chinese, filled with the stored names.
        let (_, categories) = b.page("/admin/categories").await;
        assert!(
            categories.contains("name=\"names.zh\" type=\"text\" lang=\"zh\" value=\"活动\""),
            "{db:?}: {categories}"
        );
        let (_, lists) = b.page("/admin/lists").await;
        assert!(
            lists.contains("zh: 合作院校通讯"),
            "{db:?}: the table shows the names"
        );
        let (_, list) = b.page("/admin/lists/partners").await;
        assert!(
            list.contains("name=\"names.zh\" type=\"text\" lang=\"zh\" value=\"合作院校通讯\""),
            "{db:?}: {list}"
        );

        // A new category with a Chinese name.
        let (_, html) = b
            .post_and_follow(
                "/admin/categories",
                &[
                    ("name", "Talks"),
                    ("names.zh", "讲座"),
                    ("slug", ""),
                    ("description", ""),
                    ("parent", "events"),
                ],
            )
            .await;
        assert!(html.contains("Talks"), "{db:?}");
        let talks = get_json(&app, "/api/v1/categories/talks").await;
        assert_eq!(talks["names"], json!({"zh": "讲座"}), "{db:?}");

        // A name too long: 422, the error under the field, the typed text kept.
        let long = "讲".repeat(201);
        let r = b
            .post(
                "/admin/categories",
                &[("name", "Visits"), ("names.zh", &long), ("parent", "")],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        let html = r.text().await.unwrap();
        assert!(html.contains("must be at most 200 characters"), "{html}");
        assert!(
            html.contains(&format!("value=\"{long}\"")),
            "typed text kept"
        );
        let r = app
            .admin(Method::GET, "/api/v1/categories/visits")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);

        // The list form: a new Chinese name saved, a blank one is none.
        let form = |zh: &'static str| {
            vec![
                ("slug", "partners"),
                ("name", "Partner institutions digest"),
                ("names.zh", zh),
                ("description", ""),
                ("categories", "news-events"),
                ("opt_in", "double"),
                ("visibility", "public"),
                ("schedule_timezone", "Asia/Shanghai"),
                ("min_items", "1"),
                ("grace_minutes", "1440"),
            ]
        };
        b.post_and_follow("/admin/lists/partners", &form("合作伙伴周报"))
            .await;
        let saved = get_json(&app, "/api/v1/lists/partners").await;
        assert_eq!(saved["names"], json!({"zh": "合作伙伴周报"}), "{db:?}");
        let r = b.post("/admin/lists/partners", &form("\u{7}")).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let html = r.text().await.unwrap();
        assert!(
            html.contains("must not contain control characters"),
            "{html}"
        );
        assert_eq!(
            get_json(&app, "/api/v1/lists/partners").await["names"],
            saved["names"]
        );
        b.post_and_follow("/admin/lists/partners", &form("  "))
            .await;
        let cleared = get_json(&app, "/api/v1/lists/partners").await;
        assert_eq!(cleared["names"], json!({}), "{db:?}");
    }
}

/// The partner in China has its Chinese name: the API carries it, a bad one is a 422
/// with nothing written, the admin form saves it, and a preview names the institution
/// by it for its Chinese reader while an English reader keeps the default name.
#[tokio::test]
async fn partner_names_round_trip_and_name_the_institution_in_a_readers_digest() {
    for db in [Db::Sqlite, Db::Postgres] {
        let Some(app) = spawn_app_with(db, |_| {}).await else {
            continue;
        };
        app.load_demo().await;
        let partners = get_json(&app, "/api/v1/partners").await;
        let zhejiang = partners
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == newsdesk::demo::PARTNERS[4])
            .unwrap()
            .clone();
        assert_eq!(
            zhejiang["names"],
            json!({"zh": newsdesk::demo::ZHEJIANG_NAME_ZH}),
            "{db:?}"
        );
        let id = zhejiang["id"].as_i64().unwrap();
        let path = format!("/api/v1/partners/{id}");
        let body = |names: Value| {
            json!({
                "name": zhejiang["name"], "country": zhejiang["country"],
                "website": zhejiang["website"], "timezone": zhejiang["timezone"],
                "language": zhejiang["language"], "names": names
            })
        };

        // Bad names: every one named, nothing written.
        let (status, problem) = put(
            &app,
            &path,
            &body(json!({"zh": " ", "no tag": "x", "fr": "École", "FR": "École"})),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{db:?}: {problem}"
        );
        let named = fields(&problem);
        for field in ["names.zh", "names.no tag"] {
            assert!(named.iter().any(|f| f == field), "{db:?}: {named:?}");
        }
        assert!(
            named.iter().any(|f| f == "names.fr" || f == "names.FR"),
            "{db:?}: one tag in two cases: {named:?}"
        );
        assert_eq!(get_json(&app, &path).await["names"], zhejiang["names"]);

        // Replaced whole: a second language added, zh-Hant read by a zh-Hant reader.
        let (status, written) = put(
            &app,
            &path,
            &body(json!({"zh": "浙江经济职业技术学院", "zh-Hant": "浙江經濟職業技術學院"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{db:?}: {written}");
        assert_eq!(
            written["names"],
            json!({"zh": "浙江经济职业技术学院", "zh-Hant": "浙江經濟職業技術學院"})
        );

        // The preview for the Chinese reader names it in Chinese; in English, the
        // default name.
        let preview = |query: &'static str| {
            let r = app.admin(
                Method::GET,
                &format!("/api/v1/lists/partners/digests/2023-W45/preview?format=text&subscriber=li.wei%40zjtie-cn.example.edu{query}"),
            );
            async move {
                let r = r.send().await.unwrap();
                assert_eq!(r.status(), StatusCode::OK);
                r.text().await.unwrap()
            }
        };
        let zh = preview("").await;
        assert!(
            zh.contains("以下是为浙江经济职业技术学院各位同事"),
            "{db:?}: {zh}"
        );
        let hant = preview("&language=zh-Hant").await;
        assert!(hant.contains("浙江經濟職業技術學院"), "{db:?}: {hant}");
        let en = preview("&language=en").await;
        assert!(
            en.contains(newsdesk::demo::PARTNERS[4]) && !en.contains("浙江"),
            "{db:?}: {en}"
        );

        // Left out: none.
        let mut none = body(json!({}));
        none.as_object_mut().unwrap().remove("names");
        let (status, written) = put(&app, &path, &none).await;
        assert_eq!(status, StatusCode::OK, "{db:?}");
        assert_eq!(written["names"], json!({}));

        // The admin form: a field per site language, saved; a blank one is none.
        add_user(&app, "alice", Role::Admin).await;
        let b = sign_in(&app, "alice").await;
        let form = |zh: &'static str| {
            vec![
                ("name", newsdesk::demo::PARTNERS[4]),
                ("names.zh", zh),
                ("country", "China"),
                ("website", ""),
                ("timezone", "Asia/Shanghai"),
                ("language", "zh"),
            ]
        };
        let admin_path = format!("/admin/partners/{id}");
        b.post_and_follow(&admin_path, &form("浙江经济职业技术学院"))
            .await;
        assert_eq!(
            get_json(&app, &path).await["names"],
            json!({"zh": "浙江经济职业技术学院"}),
            "{db:?}"
        );
        let (_, html) = b.page(&admin_path).await;
        assert!(
            html.contains(
                "name=\"names.zh\" type=\"text\" lang=\"zh\" value=\"浙江经济职业技术学院\""
            ),
            "{db:?}: {html}"
        );
        let long = "浙".repeat(201);
        let r = b
            .post(
                &admin_path,
                &[
                    ("name", newsdesk::demo::PARTNERS[4]),
                    ("names.zh", long.as_str()),
                    ("timezone", "Asia/Shanghai"),
                    ("language", "zh"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!("value=\"{long}\"")),
            "typed text kept"
        );
        assert_eq!(
            get_json(&app, &path).await["names"],
            json!({"zh": "浙江经济职业技术学院"}),
            "{db:?}: nothing written"
        );
        b.post_and_follow(&admin_path, &form("")).await;
        assert_eq!(get_json(&app, &path).await["names"], json!({}), "{db:?}");
    }
}
