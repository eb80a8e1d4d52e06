use crate::helpers::{TOKEN, spawn_app};
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

async fn problem(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let ct = r
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert_eq!(ct, "application/problem+json", "status {status}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    (status, body)
}

#[tokio::test]
async fn admin_routes_refuse_missing_wrong_and_malformed_tokens() {
    let app = spawn_app().await;
    let routes = [
        (Method::GET, "/api/v1/items"),
        (Method::POST, "/api/v1/items"),
        (Method::GET, "/api/v1/items/1"),
        (Method::PUT, "/api/v1/items/1"),
        (Method::DELETE, "/api/v1/items/1"),
        (Method::POST, "/api/v1/items/1/publish"),
        (Method::POST, "/api/v1/items/1/unpublish"),
        (Method::GET, "/api/v1/categories"),
        (Method::POST, "/api/v1/categories"),
        (Method::GET, "/api/v1/categories/news"),
        (Method::PUT, "/api/v1/categories/news"),
        (Method::DELETE, "/api/v1/categories/news"),
        (Method::POST, "/api/v1/tokens"),
        (Method::POST, "/api/v1/tokens/revoke"),
    ];
    let auths = [
        None,
        Some(format!("Bearer {TOKEN}x")),
        Some(format!("Basic {TOKEN}")),
        Some("Bearer ".to_owned()),
    ];
    for (method, path) in routes {
        for auth in &auths {
            let mut req = app
                .client
                .request(method.clone(), app.url(path))
                .json(&json!({}));
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let r = req.send().await.unwrap();
            assert_eq!(
                r.status(),
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {auth:?}"
            );
            assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"newsdesk\"");
            problem(r).await;
        }
    }
}

#[tokio::test]
async fn invalid_items_get_422_naming_each_field() {
    let app = spawn_app().await;
    app.load_demo().await;
    let ok = || json!({"title": "Fine", "categories": ["news"]});
    let with = |key: &str, value: Value| {
        let mut b = ok();
        b[key] = value;
        b
    };
    let cases: Vec<(Value, &str, &str)> = vec![
        (with("title", json!("")), "title", "must not be empty"),
        (
            with("title", json!("a".repeat(301))),
            "title",
            "at most 300",
        ),
        (
            with("title", json!("line\r\nBcc: x@example.org")),
            "title",
            "control characters",
        ),
        (with("title", json!(42)), "title", "invalid type"),
        (with("slug", json!("Not OK")), "slug", "lowercase"),
        (
            with("language", json!("english")),
            "language",
            "language tag",
        ),
        (with("categories", json!([])), "categories", "at least one"),
        (
            with("categories", json!(["NEWS"])),
            "categories[0]",
            "lowercase",
        ),
        (with("status", json!("live")), "status", "draft"),
        (
            with("published_at", json!("9 Nov 2023")),
            "published_at",
            "RFC 3339",
        ),
        (with("tags", json!([""])), "tags[0]", "must not be empty"),
        (with("surprise", json!(1)), "surprise", "unknown field"),
        (
            with(
                "event",
                json!({"starts_at": "2023-11-09T14:00", "timezone": "Asia/Shanghai", "mode": "online"}),
            ),
            "event.online_url",
            "required",
        ),
        (
            with(
                "event",
                json!({"starts_at": "2023-11-09T14:00", "timezone": "Asia/Shanghai", "mode": "online", "online_url": "javascript:alert(1)"}),
            ),
            "event.online_url",
            "http",
        ),
        (
            with(
                "event",
                json!({"starts_at": "2023-11-09T14:00", "timezone": "Nowhere/City", "mode": "online", "online_url": "https://x.example"}),
            ),
            "event.timezone",
            "IANA",
        ),
        (
            with(
                "event",
                json!({"starts_at": 5, "timezone": "UTC", "mode": "online"}),
            ),
            "event.starts_at",
            "invalid type",
        ),
        (
            with("body", json!("x".repeat(200_001))),
            "body",
            "at most 200000",
        ),
    ];
    for (body, field, words) in cases {
        let r = app.post_item(&body).await;
        let (status, p) = problem(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {p}");
        let errors = p["errors"].as_array().unwrap();
        let hit = errors.iter().find(|e| e["field"] == field);
        let hit = hit.unwrap_or_else(|| panic!("no error for {field}: {p}"));
        assert!(
            hit["message"].as_str().unwrap().contains(words),
            "{field}: {hit}"
        );
    }
    let list: Value = app
        .admin(Method::GET, "/api/v1/items")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 7, "no invalid item was stored");
}

#[tokio::test]
async fn bad_query_parameters_get_422() {
    let app = spawn_app().await;
    for (q, field) in [
        ("page=0", "page"),
        ("per_page=1000", "per_page"),
        ("status=gone", "status"),
        ("category=A+B", "category"),
    ] {
        let r = app
            .admin(Method::GET, &format!("/api/v1/items?{q}"))
            .send()
            .await
            .unwrap();
        let (status, p) = problem(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert_eq!(p["errors"][0]["field"], field, "{q}");
    }
}

#[tokio::test]
async fn malformed_json_wrong_media_type_and_huge_bodies_are_refused() {
    let app = spawn_app().await;
    let r = app
        .admin(Method::POST, "/api/v1/items")
        .header(CONTENT_TYPE, "application/json")
        .body("{\"title\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::BAD_REQUEST);

    let r = app
        .admin(Method::POST, "/api/v1/items")
        .header(CONTENT_TYPE, "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = json!({"title": "x", "categories": ["news"], "body": "y".repeat(2 * 1024 * 1024)});
    let r = app.post_item(&huge).await;
    let (status, p) = problem(r).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(p["detail"].as_str().unwrap().contains("1048576"), "{p}");
}

#[tokio::test]
async fn what_does_not_exist_is_404() {
    let app = spawn_app().await;
    app.load_demo().await;
    for path in [
        "/api/v1/items/999",
        "/api/v1/items/abc",
        "/api/v1/items/-1",
        "/api/v1/categories/nope",
        "/api/v1/nothing",
    ] {
        let r = app.admin(Method::GET, path).send().await.unwrap();
        assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let r = app
        .admin(Method::GET, "/api/v1/items?category=nope")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
    let r = app
        .admin(Method::POST, "/api/v1/items/999/publish")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
    let r = app
        .admin(Method::PUT, "/api/v1/items/999")
        .json(&json!({"title": "x", "categories": ["news"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_openapi_description_covers_the_whole_api() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for (path, methods) in [
        ("/api/v1/items", &["get", "post"][..]),
        ("/api/v1/items/{id}", &["get", "put", "delete"]),
        ("/api/v1/items/{id}/publish", &["post"]),
        ("/api/v1/items/{id}/unpublish", &["post"]),
        ("/api/v1/categories", &["get", "post"]),
        ("/api/v1/categories/{slug}", &["get", "put", "delete"]),
        ("/api/v1/tokens", &["post"]),
        ("/api/v1/tokens/revoke", &["post"]),
    ] {
        for m in methods {
            assert!(paths[path][m].is_object(), "{m} {path} missing");
        }
    }
    assert!(doc["components"]["schemas"]["ItemRequest"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}
