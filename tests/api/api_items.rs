use crate::helpers::{Db, TOKEN, hostile_event, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn an_item_goes_through_create_read_list_update_publish_and_delete() {
    let app = spawn_app().await;
    app.load_demo().await;
    let created = app
        .create_item(json!({
            "title": "Partner visit from Temasek Polytechnic",
            "summary": "A short visit.",
            "body": "# Visit\n\nDetails *soon*.",
            "author": "News Office",
            "org_unit": "International Office",
            "language": "en",
            "categories": ["news"],
            "tags": ["partners"]
        }))
        .await;
    assert_eq!(created["slug"], "partner-visit-from-temasek-polytechnic");
    assert_eq!(created["status"], "draft", "draft unless said otherwise");
    assert_eq!(
        created["body_html"],
        "<h1>Visit</h1>\n<p>Details <em>soon</em>.</p>\n"
    );
    let id = created["id"].as_i64().unwrap();

    let read: Value = app
        .admin(Method::GET, &format!("/api/v1/items/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(read, created);

    // Drafts are listed for admins, filtered by status and category.
    let list: Value = app
        .admin(Method::GET, "/api/v1/items?status=draft")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["id"], id);
    let list: Value = app
        .admin(
            Method::GET,
            "/api/v1/items?category=news-events&per_page=2&page=2",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 8);
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    assert_eq!(list["page"], 2);
    let list: Value = app
        .admin(Method::GET, "/api/v1/items?category=events")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 4);

    // A draft is not public.
    let r = app
        .get("/items/partner-visit-from-temasek-polytechnic")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    let published: Value = app
        .admin(Method::POST, &format!("/api/v1/items/{id}/publish"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(published["status"], "published");
    assert_eq!(
        published["published_at"], "2023-11-20T09:00:00Z",
        "published at the clock's now"
    );
    let r = app
        .get("/items/partner-visit-from-temasek-polytechnic")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let mut update = hostile_event();
    update["slug"] = json!("partner-visit");
    let updated = app
        .admin(Method::PUT, &format!("/api/v1/items/{id}"))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), StatusCode::OK);
    let updated: Value = updated.json().await.unwrap();
    assert_eq!(updated["slug"], "partner-visit");
    assert_eq!(updated["categories"], json!(["events"]));
    assert_eq!(updated["event"]["starts_at"], "2023-11-23T14:00:00+08:00");
    assert_eq!(updated["event"]["mode"], "hybrid");
    assert_eq!(updated["tags"], json!(["UNEVOC", "tag & <tag>"]));

    let r = app
        .admin(Method::DELETE, &format!("/api/v1/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .admin(Method::GET, &format!("/api/v1/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .admin(Method::DELETE, &format!("/api/v1/items/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn publishing_at_a_future_time_schedules_the_item() {
    let app = spawn_app().await;
    app.load_demo().await;
    let created = app
        .create_item(json!({"title": "Later", "categories": ["news"]}))
        .await;
    let id = created["id"].as_i64().unwrap();
    let r: Value = app
        .admin(Method::POST, &format!("/api/v1/items/{id}/publish"))
        .json(&json!({"at": "2023-11-21T09:00:00+00:00"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["published_at"], "2023-11-21T09:00:00Z");
    assert_eq!(
        app.get("/items/later").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    app.clock.advance(chrono::Duration::days(1));
    assert_eq!(
        app.get("/items/later").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_taken_slug_is_a_conflict_and_changes_nothing() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .post_item(&json!({"title": "x", "slug": "unevoc-coaction-initiative-2023-concludes", "categories": ["news"]}))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "slug");
    let list: Value = app
        .admin(Method::GET, "/api/v1/items")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 7);
}

/// A slug made from a title is never refused as taken: titles without Latin letters
/// (Chinese, emoji) all make `item`, and the second gets `item-2`. A slug given is
/// still refused when taken, and a replacement without one keeps the item's address.
async fn made_slugs_are_made_free_and_kept_on_replacement(db: Db) {
    let Some(app) = spawn_app_with(db, |_| {}).await else {
        return;
    };
    app.load_demo().await;
    let mut slugs = Vec::new();
    for title in ["纯中文新闻", "第二条中文新闻", "🎉🎉", "第四条"] {
        let made = app
            .create_item(json!({"title": title, "language": "zh", "body": "正文", "categories": ["news"], "status": "published"}))
            .await;
        slugs.push(made["slug"].as_str().unwrap().to_owned());
    }
    assert_eq!(slugs, ["item", "item-2", "item-3", "item-4"], "{db:?}");
    // A made slug that a Latin title shares with a demo item gets the next number too.
    let again = app
        .create_item(
            json!({"title": "UNEVOC Coaction Initiative 2023 concludes", "categories": ["news"]}),
        )
        .await;
    assert_eq!(
        again["slug"], "unevoc-coaction-initiative-2023-concludes-2",
        "{db:?}"
    );
    // Each is its own page.
    for slug in &slugs {
        let r = app.get(&format!("/zh/items/{slug}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{db:?} {slug}");
    }
    // Given, a taken slug is still a conflict.
    let r = app
        .post_item(&json!({"title": "x", "slug": "item-2", "categories": ["news"]}))
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT, "{db:?}");
    // Replaced with a new title and no slug: the address stays.
    let id = again["id"].as_i64().unwrap();
    let r = app
        .admin(Method::PUT, &format!("/api/v1/items/{id}"))
        .json(&json!({"title": "A new title altogether", "categories": ["news"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{db:?}");
    let replaced: Value = r.json().await.unwrap();
    assert_eq!(
        replaced["slug"], "unevoc-coaction-initiative-2023-concludes-2",
        "{db:?}"
    );
    assert_eq!(replaced["title"], "A new title altogether", "{db:?}");
}

#[tokio::test]
async fn made_slugs_are_made_free_and_kept_on_replacement_sqlite() {
    made_slugs_are_made_free_and_kept_on_replacement(Db::Sqlite).await;
}

#[tokio::test]
async fn made_slugs_are_made_free_and_kept_on_replacement_postgres() {
    made_slugs_are_made_free_and_kept_on_replacement(Db::Postgres).await;
}

#[tokio::test]
async fn an_unknown_category_is_named_and_nothing_is_stored() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .post_item(&json!({"title": "x", "categories": ["news", "seminars"]}))
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "categories[1]");
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("seminars")
    );
    let list: Value = app
        .admin(Method::GET, "/api/v1/items")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 7, "nothing half-written");
}

#[tokio::test]
async fn new_tokens_work_and_revoked_ones_do_not() {
    let app = spawn_app().await;
    let r = app
        .admin(Method::POST, "/api/v1/tokens")
        .json(&json!({"name": "import job"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let token = r.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(token.len() >= 64, "at least 256 bits of hex");
    assert_ne!(token, TOKEN);
    let list = |t: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/items"))
                .bearer_auth(t)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(list(token.clone()).await, StatusCode::OK);
    let r = app
        .admin(Method::POST, "/api/v1/tokens/revoke")
        .json(&json!({"token": token}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(list(token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn tokens_are_stored_hashed() {
    let app = spawn_app().await;
    // Straight to the database file: the plain token must not be in it.
    let dump = std::fs::read(
        app.state
            .settings
            .database_url
            .expose()
            .trim_start_matches("sqlite://"),
    )
    .unwrap();
    let needle = TOKEN.as_bytes();
    assert!(
        !dump.windows(needle.len()).any(|w| w == needle),
        "the token is stored in clear"
    );
}
