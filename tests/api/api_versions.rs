//! An item's language versions through the API, on SQLite and PostgreSQL: the whole
//! item's `translations`, and each version at `/api/v1/items/{id}/versions/{language}`
//! (the original among them, never missing).

use crate::helpers::{Db, TestApp, spawn_app_with};
use reqwest::header::{ETAG, IF_NONE_MATCH, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn apps() -> Vec<(Db, TestApp)> {
    let mut out = Vec::new();
    for db in [Db::Sqlite, Db::Postgres] {
        if let Some(app) = spawn_app_with(db, |_| {}).await {
            app.load_demo().await;
            out.push((db, app));
        }
    }
    out
}

/// A request with the admin token: the status, the JSON body (null when none) and the
/// `Location` header.
async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value, Option<String>) {
    let mut request = app.admin(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let r = request.send().await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get(LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let text = r.text().await.unwrap();
    let json = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    };
    (status, json, location)
}

/// The fields a 422 names.
fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("no errors in {problem}"))
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

fn languages(versions: &Value) -> Vec<(String, bool)> {
    versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["language"].as_str().unwrap().to_owned(),
                v["original"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn news_item() -> Value {
    json!({
        "title": "Partner visit",
        "summary": "A short visit.",
        "body": "The *visit*.",
        "language": "en",
        "categories": ["news"],
        "status": "published",
        "published_at": "2023-11-15T08:00:00Z",
        "translations": [
            {"language": "zh", "title": "合作伙伴来访", "summary": "简短来访。", "body": "**来访**"}
        ]
    })
}

#[tokio::test]
async fn versions_are_read_written_and_removed_one_at_a_time_and_the_original_stays() {
    for (db, app) in apps().await {
        let item = app.create_item(news_item()).await;
        let id = item["id"].as_i64().unwrap();
        assert_eq!(
            item["translations"][0]["body_html"],
            "<p><strong>来访</strong></p>\n"
        );
        let base = format!("/api/v1/items/{id}/versions");

        // The list: the original first and marked, then the other versions.
        let (status, list, _) = call(&app, Method::GET, &base, None).await;
        assert_eq!(status, StatusCode::OK, "{db:?}");
        assert_eq!(list["item_id"], id);
        assert_eq!(
            languages(&list),
            [("en".into(), true), ("zh".into(), false)],
            "{db:?}"
        );
        assert_eq!(list["versions"][0]["title"], "Partner visit");
        assert_eq!(
            list["versions"][0]["body_html"],
            "<p>The <em>visit</em>.</p>\n"
        );
        let (status, zh, _) = call(&app, Method::GET, &format!("{base}/ZH"), None).await;
        assert_eq!(status, StatusCode::OK, "a tag in any case");
        assert_eq!(zh["title"], "合作伙伴来访");
        assert_eq!(zh["original"], false);

        // PUT creates (201 with its address), then replaces (200).
        let fr = json!({"title": "Visite de partenaires", "body": "La *visite*."});
        let (status, created, location) =
            call(&app, Method::PUT, &format!("{base}/fr"), Some(fr)).await;
        assert_eq!(status, StatusCode::CREATED, "{db:?}: {created}");
        assert_eq!(location.as_deref(), Some(format!("{base}/fr").as_str()));
        assert_eq!(created["body_html"], "<p>La <em>visite</em>.</p>\n");
        let (status, replaced, _) = call(
            &app,
            Method::PUT,
            &format!("{base}/fr"),
            Some(json!({"title": "Visite", "summary": "Courte."})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (&replaced["title"], &replaced["body"]),
            (&json!("Visite"), &json!("")),
            "a PUT replaces the whole version"
        );
        let (_, read, _) = call(&app, Method::GET, &format!("/api/v1/items/{id}"), None).await;
        let tags: Vec<&str> = read["translations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["language"].as_str().unwrap())
            .collect();
        assert_eq!(tags, ["fr", "zh"], "{db:?}");
        assert_eq!(read["title"], "Partner visit", "the original untouched");

        // The original's language replaces the original's words.
        let (status, original, _) = call(
            &app,
            Method::PUT,
            &format!("{base}/en"),
            Some(json!({"title": "Partner visit from Temasek", "body": "Now *longer*."})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{original}");
        assert_eq!(original["original"], true);
        let (_, read, _) = call(&app, Method::GET, &format!("/api/v1/items/{id}"), None).await;
        assert_eq!(read["title"], "Partner visit from Temasek");
        assert_eq!(read["body_html"], "<p>Now <em>longer</em>.</p>\n");
        assert_eq!(read["translations"].as_array().unwrap().len(), 2);

        // The original cannot be removed nor unmarked; a missing version is 404.
        let (status, problem, _) = call(&app, Method::DELETE, &format!("{base}/en"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        assert_eq!(fields(&problem), ["language"]);
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("original"),
            "{problem}"
        );
        let (status, problem, _) = call(
            &app,
            Method::PUT,
            &format!("{base}/en"),
            Some(json!({"title": "x", "original": false})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&problem), ["original"]);
        let (status, _, _) = call(&app, Method::DELETE, &format!("{base}/de"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _, _) = call(&app, Method::GET, &format!("{base}/de"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, _, _) = call(&app, Method::DELETE, &format!("{base}/fr"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _, _) = call(&app, Method::GET, &format!("{base}/fr"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        // zh becomes the original; en one of the other versions, with its words.
        let (status, zh, _) = call(
            &app,
            Method::PUT,
            &format!("{base}/zh"),
            Some(json!({"title": "合作伙伴来访", "body": "**来访**", "original": true})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{zh}");
        assert_eq!(zh["original"], true);
        let (_, list, _) = call(&app, Method::GET, &base, None).await;
        assert_eq!(
            languages(&list),
            [("zh".into(), true), ("en".into(), false)],
            "{db:?}"
        );
        assert_eq!(list["versions"][1]["title"], "Partner visit from Temasek");
        let (_, read, _) = call(&app, Method::GET, &format!("/api/v1/items/{id}"), None).await;
        assert_eq!(
            (&read["language"], &read["title"]),
            (&json!("zh"), &json!("合作伙伴来访"))
        );
        // And the public page of the item still answers (its language is now zh).
        let page = app.get("/items/partner-visit").send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn bad_version_writes_are_422_naming_the_field_and_change_nothing() {
    for (db, app) in apps().await {
        let item = app.create_item(news_item()).await;
        let id = item["id"].as_i64().unwrap();
        let base = format!("/api/v1/items/{id}/versions");
        let put = |language: &str, body: Value| {
            let path = format!("{base}/{language}");
            let app = &app;
            async move { call(app, Method::PUT, &path, Some(body)).await }
        };

        for (language, body, expected) in [
            ("not_a_tag", json!({"title": "x"}), vec!["language"]),
            ("fr", json!({"title": "   "}), vec!["title"]),
            ("fr", json!({"title": "x".repeat(301)}), vec!["title"]),
            (
                "fr",
                json!({"title": "x", "summary": "a\u{7}b", "body": "y".repeat(200_001)}),
                vec!["summary", "body"],
            ),
            // Event words for an item that is no event.
            (
                "fr",
                json!({"title": "x", "venue": "Hall A"}),
                vec!["venue"],
            ),
            (
                "en",
                json!({"title": "x", "mode_text": "Online"}),
                vec!["mode_text"],
            ),
            ("fr", json!({"title": "x", "colour": "red"}), vec!["colour"]),
            ("fr", json!({"summary": "no title"}), vec!["title"]),
        ] {
            let (status, problem, _) = put(language, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{db:?} {language} {body}: {problem}"
            );
            assert_eq!(fields(&problem), expected, "{db:?} {language} {body}");
        }
        let (status, problem, _) = call(&app, Method::GET, &format!("{base}/x!"), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&problem), ["language"]);
        let (status, _, _) = put("fr", json!({"title": "x"})).await;
        assert_eq!(status, StatusCode::CREATED);
        let (status, _, _) = call(&app, Method::DELETE, &format!("{base}/fr"), None).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        // No such item; no token.
        let (status, _, _) = call(
            &app,
            Method::PUT,
            "/api/v1/items/999999/versions/fr",
            Some(json!({"title": "x"})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let r = app
            .client
            .put(app.url(&format!("{base}/fr")))
            .json(&json!({"title": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

        // The whole item: a version in the original's language (given, or en when left
        // out) or a language twice would leave the item without one original.
        let mut whole = news_item();
        whole["translations"] = json!([
            {"language": "zh", "title": "合作伙伴来访"},
            {"language": "EN", "title": "Again the original"}
        ]);
        whole.as_object_mut().unwrap().remove("language");
        let (status, problem, _) = call(
            &app,
            Method::PUT,
            &format!("/api/v1/items/{id}"),
            Some(whole.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        assert_eq!(fields(&problem), ["translations[1].language"]);
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("original"),
            "{problem}"
        );
        whole["translations"][1]["language"] = json!("ZH");
        let (status, problem, _) = call(
            &app,
            Method::PUT,
            &format!("/api/v1/items/{id}"),
            Some(whole.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&problem), ["translations[1].language"]);
        assert!(
            problem["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("twice")
        );
        whole["language"] = json!("");
        whole["translations"] = json!([]);
        let (status, problem, _) = call(
            &app,
            Method::PUT,
            &format!("/api/v1/items/{id}"),
            Some(whole),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(fields(&problem), ["language"]);

        let (_, after, _) = call(&app, Method::GET, &format!("/api/v1/items/{id}"), None).await;
        assert_eq!(after, item, "{db:?}: nothing refused was stored");
    }
}

#[tokio::test]
async fn an_events_versions_carry_venue_and_mode_text_and_the_original_keeps_its_venue() {
    for (db, app) in apps().await {
        let item = app
            .create_item(json!({
                "title": "Closing session",
                "categories": ["events"],
                "event": {"starts_at": "2023-11-23T14:00", "timezone": "Asia/Shanghai",
                          "venue": "Hall A", "mode": "in_person", "mode_text": "In Hall A"}
            }))
            .await;
        let id = item["id"].as_i64().unwrap();
        let base = format!("/api/v1/items/{id}/versions");
        assert_eq!(item["event"]["mode_text"], "In Hall A");
        let (status, zh, _) = call(
            &app,
            Method::PUT,
            &format!("{base}/zh"),
            Some(json!({"title": "闭幕式", "venue": "A厅", "mode_text": "线下，A厅"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{db:?}: {zh}");
        assert_eq!(
            (&zh["venue"], &zh["mode_text"]),
            (&json!("A厅"), &json!("线下，A厅"))
        );
        let (_, list, _) = call(&app, Method::GET, &base, None).await;
        assert_eq!(
            list["versions"][0]["venue"], "Hall A",
            "the original's is the event's"
        );
        assert_eq!(list["versions"][0]["mode_text"], "In Hall A");

        // The original's venue is the event's, which an in-person event needs.
        let (status, problem, _) = call(
            &app,
            Method::PUT,
            &format!("{base}/en"),
            Some(json!({"title": "Closing session"})),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{db:?}");
        assert_eq!(fields(&problem), ["venue"]);
        let (status, _, _) = call(
            &app,
            Method::PUT,
            &format!("{base}/en"),
            Some(json!({"title": "Closing session", "venue": "Hall B"})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        let (_, read, _) = call(&app, Method::GET, &format!("/api/v1/items/{id}"), None).await;
        assert_eq!(read["event"]["venue"], "Hall B");
        assert_eq!(
            read["event"]["mode_text"],
            Value::Null,
            "left out: the standard words"
        );
        assert_eq!(
            read["event"]["starts_at"], "2023-11-23T14:00:00+08:00",
            "the times kept"
        );
        assert_eq!(read["translations"][0]["venue"], "A厅");
    }
}

#[tokio::test]
async fn a_version_only_write_moves_updated_at_and_the_feeds() {
    for (db, app) in apps().await {
        let item = app.create_item(news_item()).await;
        let id = item["id"].as_i64().unwrap();
        let first = app.get("/feeds/news.atom").send().await.unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[ETAG].to_str().unwrap().to_owned();

        app.clock.advance(chrono::Duration::hours(2));
        let (status, _, _) = call(
            &app,
            Method::PUT,
            &format!("/api/v1/items/{id}/versions/fr"),
            Some(json!({"title": "Visite de partenaires"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{db:?}");
        let (_, read, _) = call(&app, Method::GET, &format!("/api/v1/items/{id}"), None).await;
        assert_eq!(read["updated_at"], "2023-11-20T11:00:00Z", "{db:?}");
        assert_eq!(read["created_at"], item["created_at"]);

        let again = app
            .get("/feeds/news.atom")
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK, "{db:?}: the feed moved");
        assert_ne!(again.headers()[ETAG].to_str().unwrap(), etag);

        // So does a removal.
        let etag = again.headers()[ETAG].to_str().unwrap().to_owned();
        app.clock.advance(chrono::Duration::hours(1));
        let (status, _, _) = call(
            &app,
            Method::DELETE,
            &format!("/api/v1/items/{id}/versions/fr"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let again = app
            .get("/feeds/news.atom")
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::OK, "{db:?}");
    }
}

#[tokio::test]
async fn versions_written_at_the_same_time_are_all_kept() {
    const LANGUAGES: [&str; 8] = ["fr", "de", "es", "it", "ja", "ko", "ru", "ar"];
    for (db, app) in apps().await {
        let item = app.create_item(news_item()).await;
        let id = item["id"].as_i64().unwrap();
        let writes = LANGUAGES.iter().map(|l| {
            let path = format!("/api/v1/items/{id}/versions/{l}");
            let app = &app;
            async move {
                call(
                    app,
                    Method::PUT,
                    &path,
                    Some(json!({"title": format!("title {l}")})),
                )
                .await
                .0
            }
        });
        // Each a whole-item write made from what it read: none may lose another's.
        let statuses = futures_util::future::join_all(writes).await;
        assert!(
            statuses.iter().all(|s| *s == StatusCode::CREATED),
            "{db:?}: {statuses:?}"
        );
        let (_, list, _) = call(
            &app,
            Method::GET,
            &format!("/api/v1/items/{id}/versions"),
            None,
        )
        .await;
        let mut got: Vec<String> = languages(&list).into_iter().map(|(l, _)| l).collect();
        got.sort();
        let mut expected: Vec<String> = LANGUAGES
            .iter()
            .chain(&["en", "zh"])
            .map(|l| l.to_string())
            .collect();
        expected.sort();
        assert_eq!(got, expected, "{db:?}");
    }
}
