//! The API does what its OpenAPI document says (issue 12, finding 4): every documented
//! operation is served, and the refusals schemathesis found answer as documented.
//! scripts/contract.sh runs schemathesis itself against a running server.

use crate::helpers::spawn_app;
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
async fn every_documented_operation_is_served_and_documents_its_answers() {
    let app = spawn_app().await;
    let doc: Value = app
        .get("/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut count = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "1")
            .replace("{subscriber_id}", "1")
            .replace("{slug}", "news")
            .replace("{period}", "2023-W45");
        for (method, op) in item.as_object().unwrap() {
            count += 1;
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            // Without a token: 401, so the route is there (an unknown one is 404, a
            // wrong method 405).
            let r = app
                .client
                .request(m, app.url(&concrete))
                .send()
                .await
                .unwrap();
            let (status, _) = problem(r).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path}");
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("401"), "{method} {path}");
            for (code, r) in responses {
                if code.starts_with('4') {
                    assert!(
                        r["content"]["application/problem+json"].is_object(),
                        "{method} {path} {code}"
                    );
                }
            }
        }
    }
    assert!(count >= 41, "{count} operations");
    // The two bodies that may be left out are documented as optional; others required.
    let send = &doc["paths"]["/api/v1/lists/{slug}/digests"]["post"]["requestBody"];
    assert_eq!(send["required"], false);
    let create = &doc["paths"]["/api/v1/items"]["post"]["requestBody"];
    assert_eq!(create["required"], true);
    assert_eq!(
        doc["components"]["schemas"]["ItemRequest"]["additionalProperties"],
        false
    );
}

#[tokio::test]
async fn a_query_string_that_cannot_be_read_is_a_problem_not_plain_text() {
    let app = spawn_app().await;
    let r = app
        .admin(
            Method::GET,
            "/api/v1/subscribers?status=pending&status=bounced",
        )
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["detail"].as_str().unwrap().contains("status"),
        "{body}"
    );
    // Documented on the operation.
    let doc: Value = app
        .get("/api/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["paths"]["/api/v1/subscribers"]["get"]["responses"]["400"].is_object());
    assert!(doc["paths"]["/api/v1/items"]["get"]["responses"]["404"].is_object());
}

#[tokio::test]
async fn whole_numbers_may_be_written_with_a_fraction_of_zero() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .admin(Method::POST, "/api/v1/lists")
        .json(&json!({"slug": "weekly", "name": "Weekly", "min_items": 3.0, "grace_minutes": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let list: Value = r.json().await.unwrap();
    assert_eq!(list["min_items"], 3);
    // A fraction that is not zero is still refused, naming the field.
    let r = app
        .admin(Method::PUT, "/api/v1/lists/weekly")
        .json(&json!({"slug": "weekly", "name": "Weekly", "min_items": 2.5}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "min_items", "{body}");
}

#[tokio::test]
async fn a_member_who_does_not_exist_is_a_bad_field_not_a_missing_list() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .admin(Method::POST, "/api/v1/lists/partners/members")
        .json(&json!({"subscriber_id": 987654}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "subscriber_id");
    assert_eq!(
        body["errors"][0]["message"],
        "no subscriber has the id 987654"
    );
    // An unknown list is still 404.
    let r = app
        .admin(Method::POST, "/api/v1/lists/nope/members")
        .json(&json!({"subscriber_id": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn weeks_before_1900_are_refused_instead_of_dated_before_year_zero() {
    let app = spawn_app().await;
    app.load_demo().await;
    for period in ["0000-W01", "1899-W52", "+202-W01", "2023-W+1"] {
        let r = app
            .admin(Method::POST, "/api/v1/lists/partners/digests")
            .json(&json!({ "period": period }))
            .send()
            .await
            .unwrap();
        let (status, body) = problem(r).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{period}");
        assert_eq!(body["errors"][0]["field"], "period");
    }
    let r = app
        .admin(
            Method::GET,
            "/api/v1/lists/partners/digests/0001-W01/dry-run",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_subscriber_update_checks_the_list_field_too() {
    let app = spawn_app().await;
    app.load_demo().await;
    let r = app
        .admin(Method::PUT, "/api/v1/subscribers/1")
        .json(&json!({"email": "someone@example.org", "list": ""}))
        .send()
        .await
        .unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "list");
}
