use crate::helpers::spawn_app;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn categories_are_created_read_listed_updated_and_deleted() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .create_category("seminars", "Seminars", Some("events"))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["parent"], "events");
    assert_eq!(
        created["feeds"]["atom"],
        format!("{}/feeds/seminars.atom", app.address)
    );

    let list: Value = app
        .admin(Method::GET, "/api/v1/categories")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let slugs: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["news-events", "news", "events", "seminars"]);

    // An item in a grandchild shows in the grandparent's feed.
    app.create_item(json!({"title": "Seminar", "categories": ["seminars"], "status": "published"}))
        .await;
    let feed = app.rss("news-events").await;
    assert!(feed.items().iter().any(|i| i.title() == Some("Seminar")));

    let r = app
        .admin(Method::PUT, "/api/v1/categories/seminars")
        .json(&json!({"slug": "seminars", "name": "Seminars & talks", "parent": "news-events"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let moved: Value = r.json().await.unwrap();
    assert_eq!(moved["parent"], "news-events");
    assert_eq!(moved["name"], "Seminars & talks");
    // The rename shows in cached feeds at once.
    let feed = app.atom("all").await;
    let entry = feed
        .entries()
        .iter()
        .find(|e| e.title().as_str() == "Seminar")
        .unwrap();
    assert_eq!(entry.categories()[0].label(), Some("Seminars & talks"));

    let r = app
        .admin(Method::GET, "/api/v1/categories/seminars")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_category_with_items_or_children_is_not_deleted_and_says_why() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .admin(Method::DELETE, "/api/v1/categories/news-events")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let p: Value = r.json().await.unwrap();
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("child categories (events, news)"),
        "{detail}"
    );

    let r = app
        .admin(Method::DELETE, "/api/v1/categories/news")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let p: Value = r.json().await.unwrap();
    assert!(
        p["detail"].as_str().unwrap().contains("holds 3 item(s)"),
        "{p}"
    );

    app.create_category("empty", "Empty", None).await;
    let r = app
        .admin(Method::DELETE, "/api/v1/categories/empty")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        app.get("/feeds/empty.rss").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_category_cannot_move_under_its_own_descendant() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .admin(Method::PUT, "/api/v1/categories/news-events")
        .json(&json!({"slug": "news-events", "name": "N&E", "parent": "news"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "parent");
}
