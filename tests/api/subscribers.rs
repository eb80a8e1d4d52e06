//! Subscribing, confirming, unsubscribing and preferences, through the real server
//! and a real SMTP server on loopback, with mail read back by mail-parser.

use crate::helpers::{Db, TestApp, spawn_app, spawn_app_with, spawn_app_with_smtp};
use crate::smtp_server::{Behaviour, SmtpServer, parse};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

async fn app_with_mail() -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let app = spawn_app_with_smtp(smtp.url()).await;
    app.load_demo().await;
    (app, smtp)
}

async fn subscribe_form(app: &TestApp, fields: &[(&str, &str)]) -> reqwest::Response {
    app.client
        .post(app.url("/subscribe"))
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// The first link in `text` that starts with `prefix`.
fn link(text: &str, prefix: &str) -> String {
    let start = text
        .find(prefix)
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..]
        .split(|c: char| c.is_whitespace() || c == '"' || c == '<' || c == '>')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn subscribe_confirm_change_preferences_and_unsubscribe_in_one_click() {
    let (app, smtp) = app_with_mail().await;
    let form = app
        .get("/subscribe")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(form.contains("Partner institutions digest"), "{form}");

    let r = subscribe_form(
        &app,
        &[
            ("email", "Mei.Lin@Staff.Example.EDU"),
            ("name", "Mei Lin"),
            ("list", "partners"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Check your inbox"));

    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].rcpt_to, ["Mei.Lin@staff.example.edu"]);
    let mail = parse(&received[0].raw);
    assert_eq!(
        mail.subject.as_deref(),
        Some("Please confirm: Partner institutions digest")
    );
    assert_eq!(mail.to, ["Mei.Lin@staff.example.edu"]);
    assert_eq!(mail.to_names, ["Mei Lin"]);
    assert_eq!(mail.from.as_deref(), Some("news@szpu.example.edu"));
    assert!(
        mail.message_id
            .as_deref()
            .unwrap()
            .ends_with("@szpu.example.edu")
    );
    assert_eq!(mail.content_type, "multipart/alternative");
    let text = mail.text.clone().unwrap();
    let html = mail.html.clone().unwrap();
    let confirm_url = link(&text, &app.url("/en/subscribe/confirm/"));
    assert!(
        html.contains(&confirm_url),
        "the HTML part has the same link"
    );
    let token = confirm_url.rsplit('/').next().unwrap();
    assert!(
        token.len() >= 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "128+ random bits: {token}"
    );
    let unsubscribe_header = mail.header("List-Unsubscribe").unwrap().to_owned();
    assert!(
        unsubscribe_header.starts_with(&format!("<{}", app.url("/unsubscribe/"))),
        "{unsubscribe_header}"
    );
    assert_eq!(
        mail.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    assert!(
        mail.header("List-Id")
            .unwrap()
            .contains("partners.127.0.0.1")
    );

    // Pending until the link is followed.
    let before = app.subscriber_by_email("mei.lin").await;
    assert_eq!(before["status"], "pending");
    assert_eq!(before["memberships"][0]["status"], "pending");

    let page = app
        .get(confirm_url.trim_start_matches(&app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let page = page.text().await.unwrap();
    assert!(page.contains("Subscription confirmed"), "{page}");
    let after = app.subscriber_by_email("mei.lin").await;
    assert_eq!(after["status"], "confirmed");
    assert_eq!(after["memberships"][0]["status"], "confirmed");
    assert_eq!(after["consent_ip"], "127.0.0.1");
    assert!(after["consent_at"].is_string());
    let kinds: Vec<&str> = after["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["joined", "confirmed", "list confirmed"]);
    // A used link is spent.
    let again = app
        .get(confirm_url.trim_start_matches(&app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);

    // Preferences: the page linked from the confirmation.
    let prefs_url = link(&page, &app.url("/en/preferences/"));
    let prefs_path = prefs_url.trim_start_matches(&app.address).to_owned();
    let prefs = app
        .get(&prefs_path)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(prefs.contains("value=\"partners\" checked"), "{prefs}");
    let r = app
        .client
        .post(app.url(&prefs_path))
        .form(&[("language", "zh")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("Your choices are saved"));
    let changed = app.subscriber_by_email("mei.lin").await;
    assert_eq!(changed["language"], "zh");
    assert_eq!(changed["memberships"][0]["status"], "unsubscribed");
    // And back on through the same page.
    app.client
        .post(app.url(&prefs_path))
        .form(&[("language", "zh"), ("list", "partners")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.subscriber_by_email("mei.lin").await["memberships"][0]["status"],
        "confirmed"
    );
    // Their own time zone for event times, then back to the default; a bad one is refused.
    assert!(prefs.contains("<select id=\"timezone\""));
    app.client
        .post(app.url(&prefs_path))
        .form(&[
            ("language", "zh"),
            ("list", "partners"),
            ("timezone", "Asia/Kolkata"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.subscriber_by_email("mei.lin").await["timezone"],
        "Asia/Kolkata"
    );
    let prefs = app
        .get(&prefs_path)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        prefs.contains("<option selected>Asia/Kolkata</option>"),
        "{prefs}"
    );
    let r = app
        .client
        .post(app.url(&prefs_path))
        .form(&[
            ("language", "zh"),
            ("list", "partners"),
            ("timezone", "Mars/Base"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.subscriber_by_email("mei.lin").await["timezone"],
        "Asia/Kolkata"
    );
    app.client
        .post(app.url(&prefs_path))
        .form(&[("language", "zh"), ("list", "partners"), ("timezone", "")])
        .send()
        .await
        .unwrap();
    assert!(app.subscriber_by_email("mei.lin").await["timezone"].is_null());

    // One-click unsubscribe with the header's URL, as a mail provider does it.
    let unsubscribe_url = unsubscribe_header
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_owned();
    let page = app
        .client
        .get(&unsubscribe_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<button type=\"submit\""),
        "one button: {page}"
    );
    for _ in 0..2 {
        let r = app
            .client
            .post(&unsubscribe_url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "no redirect, no second step");
        assert!(r.headers().get("set-cookie").is_none());
    }
    let gone = app.subscriber_by_email("mei.lin").await;
    assert_eq!(gone["memberships"][0]["status"], "unsubscribed");
}

#[tokio::test]
async fn the_answer_is_the_same_for_new_pending_and_confirmed_addresses() {
    let (app, smtp) = app_with_mail().await;
    let ask = |email: &'static str| {
        let app = &app;
        async move {
            let r = subscribe_form(app, &[("email", email), ("list", "partners")]).await;
            (r.status(), r.text().await.unwrap())
        }
    };
    let new = ask("new.person@example.org").await;
    let pending = ask("new.person@example.org").await;
    let confirmed = ask("ayesha.khan@ntu-pk.example.edu").await; // a demo contact
    assert_eq!(new, pending);
    assert_eq!(new, confirmed);
    // One confirmation mail for the pending address (the repeat within 10 minutes
    // sends none, answered all the same), none for the confirmed one.
    let received = smtp.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(smtp.messages().len(), 1);
    assert!(
        received
            .iter()
            .all(|m| m.rcpt_to == ["new.person@example.org"])
    );

    let json = app
        .client
        .post(app.url("/subscribe"))
        .json(&json!({"email": "ayesha.khan@ntu-pk.example.edu", "list": "partners"}))
        .send()
        .await
        .unwrap();
    assert_eq!(json.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn bad_and_hostile_input_is_refused_with_the_field_named() {
    let (app, smtp) = app_with_mail().await;
    let cases: [(&[(&str, &str)], &str); 6] = [
        (
            &[("email", "not-an-address"), ("list", "partners")],
            "email",
        ),
        (
            &[
                ("email", "a@example.org\r\nBcc: victim@example.org"),
                ("list", "partners"),
            ],
            "email",
        ),
        (
            &[
                ("email", "a@example.org"),
                ("name", "Eve\r\nBcc: victim@example.org"),
                ("list", "partners"),
            ],
            "name",
        ),
        (&[("email", "a@example.org"), ("list", "nope")], "list"),
        (
            &[("email", &"x".repeat(300)), ("list", "partners")],
            "email",
        ),
        (
            &[
                ("email", "a@example.org"),
                ("language", "klingon!"),
                ("list", "partners"),
            ],
            "language",
        ),
    ];
    for (fields, field) in cases {
        let r = app
            .client
            .post(app.url("/subscribe"))
            .json(
                &fields
                    .iter()
                    .cloned()
                    .collect::<std::collections::HashMap<_, _>>(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        let p: Value = r.json().await.unwrap();
        assert!(
            p["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["field"] == field),
            "{field}: {p}"
        );
        // The form shows the error too.
        let r = subscribe_form(&app, fields).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.text().await.unwrap().contains("Please check the form"));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty(), "no mail for refused requests");
    let all: Value = app
        .admin(Method::GET, "/api/v1/subscribers?per_page=200")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all["total"], 8, "nothing stored for refused requests");
}

#[tokio::test]
async fn a_private_list_cannot_be_joined_from_the_form() {
    let (app, _smtp) = app_with_mail().await;
    let r = app
        .admin(Method::POST, "/api/v1/lists")
        .json(&json!({"slug": "staff", "name": "Staff only", "visibility": "private", "categories": ["news"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let private = subscribe_form(&app, &[("email", "x@example.org"), ("list", "staff")]).await;
    assert_eq!(private.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let alert = |html: String| {
        let start = html.find("role=\"alert\"").expect("an error box");
        html[start..start + html[start..].find("</div>").unwrap()].to_owned()
    };
    let private = alert(private.text().await.unwrap()).replace("&quot;staff&quot;", "X");
    let missing = subscribe_form(&app, &[("email", "x@example.org"), ("list", "nothere")]).await;
    let missing = alert(missing.text().await.unwrap()).replace("&quot;nothere&quot;", "X");
    assert_eq!(private, missing, "a private list looks like no list at all");
    assert!(
        !app.get("/subscribe")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .contains("Staff only")
    );
}

#[tokio::test]
async fn too_many_requests_from_one_address_get_429() {
    let app = spawn_app_with(Db::Sqlite, |s| s.subscribe_rate_per_hour = 3)
        .await
        .unwrap();
    app.load_demo().await;
    for n in 0..3 {
        let r = subscribe_form(
            &app,
            &[
                ("email", &format!("p{n}@example.org")),
                ("list", "partners"),
            ],
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    let r = subscribe_form(&app, &[("email", "p9@example.org"), ("list", "partners")]).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn unknown_used_and_expired_links_get_a_plain_404() {
    let (app, smtp) = app_with_mail().await;
    for path in [
        "/subscribe/confirm/0123456789abcdef0123456789abcdef",
        "/unsubscribe/0123456789abcdef0123456789abcdef",
        "/preferences/0123456789abcdef0123456789abcdef",
    ] {
        let r = app.get(path).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains("This link is not valid"), "{body}");
    }
    let r = app
        .client
        .post(app.url("/unsubscribe/0123456789abcdef0123456789abcdef"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    subscribe_form(&app, &[("email", "late@example.org"), ("list", "partners")]).await;
    let mail = parse(&smtp.wait_for(1, Duration::from_secs(10)).await[0].raw);
    let confirm = link(&mail.text.unwrap(), &app.url("/en/subscribe/confirm/"));
    app.clock.advance(chrono::Duration::days(8));
    let r = app
        .get(confirm.trim_start_matches(&app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::NOT_FOUND,
        "an expired link does not confirm"
    );
    assert_eq!(app.subscriber_by_email("late@").await["status"], "pending");
}

#[tokio::test]
async fn admins_add_contacts_pending_unless_consent_is_stated() {
    let (app, smtp) = app_with_mail().await;
    let partners: Value = app
        .admin(Method::GET, "/api/v1/partners")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(partners.as_array().unwrap().len(), 5);
    let temasek = partners
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Temasek Polytechnic of Singapore")
        .unwrap();
    assert_eq!(temasek["timezone"], "Asia/Singapore");
    let partner_id = temasek["id"].as_i64().unwrap();

    let r = app
        .admin(Method::POST, "/api/v1/subscribers")
        .json(&json!({"email": "new.staff@tp-sg.example.edu", "name": "New Staff", "partner_id": partner_id, "list": "partners"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let pending: Value = r.json().await.unwrap();
    assert_eq!(pending["status"], "pending");
    assert_eq!(pending["partner"], "Temasek Polytechnic of Singapore");
    let mail = parse(&smtp.wait_for(1, Duration::from_secs(10)).await[0].raw);
    assert_eq!(mail.to, ["new.staff@tp-sg.example.edu"]);

    let r = app
        .admin(Method::POST, "/api/v1/subscribers")
        .json(&json!({"email": "agreed@tp-sg.example.edu", "partner_id": partner_id, "list": "partners",
                      "consent_source": "signed partner agreement 2023"}))
        .send()
        .await
        .unwrap();
    let agreed: Value = r.json().await.unwrap();
    assert_eq!(agreed["status"], "confirmed");
    assert_eq!(agreed["consent_source"], "signed partner agreement 2023");

    // Counts per list and status.
    let list: Value = app
        .admin(Method::GET, "/api/v1/lists/partners")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["counts"],
        json!({"pending": 1, "confirmed": 9, "unsubscribed": 0})
    );
    assert_eq!(list["categories"], json!(["news-events"]));

    // Filters: list, status, partner, search, paging.
    let get = |q: &'static str| {
        let app = &app;
        async move {
            let v: Value = app
                .admin(Method::GET, &format!("/api/v1/subscribers?{q}"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    assert_eq!(get("list=partners&status=pending").await["total"], 1);
    assert_eq!(
        get(Box::leak(
            format!("partner_id={partner_id}").into_boxed_str()
        ))
        .await["total"],
        4
    );
    assert_eq!(get("q=TP-SG.example").await["total"], 4);
    assert_eq!(
        get("q=wei%20ling").await["subscribers"][0]["email"],
        "weiling.tan@tp-sg.example.edu"
    );
    let page = get("per_page=3&page=2").await;
    assert_eq!(
        (
            page["total"].as_u64(),
            page["subscribers"].as_array().unwrap().len()
        ),
        (Some(10), 3)
    );
    assert_eq!(
        get("q=100%25_").await["total"],
        0,
        "LIKE wildcards are taken literally"
    );

    // A duplicate address, in any case, is a conflict.
    let r = app
        .admin(Method::POST, "/api/v1/subscribers")
        .json(&json!({"email": "AGREED@tp-sg.example.edu"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // A partner with contacts is not deleted.
    let r = app
        .admin(Method::DELETE, &format!("/api/v1/partners/{partner_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);

    // Blocking is recorded in the history.
    let id = agreed["id"].as_i64().unwrap();
    let r = app
        .admin(Method::POST, &format!("/api/v1/subscribers/{id}/status"))
        .json(&json!({"status": "blocked", "reason": "asked by phone"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let detail: Value = app
        .admin(Method::GET, &format!("/api/v1/subscribers/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["status"], "blocked");
    assert!(
        detail["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["kind"] == "blocked" && h["detail"] == "asked by phone")
    );
}

#[tokio::test]
async fn leaving_one_list_keeps_the_others() {
    let app = spawn_app().await;
    app.load_demo().await;
    app.admin(Method::POST, "/api/v1/lists")
        .json(&json!({"slug": "events-only", "name": "Events", "categories": ["events"]}))
        .send()
        .await
        .unwrap();
    let all: Value = app
        .admin(Method::GET, "/api/v1/subscribers?q=sokha")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = all["subscribers"][0]["id"].as_i64().unwrap();
    let r = app
        .admin(Method::POST, "/api/v1/lists/events-only/members")
        .json(&json!({"subscriber_id": id}))
        .send()
        .await
        .unwrap();
    let member: Value = r.json().await.unwrap();
    assert_eq!(
        member["status"], "confirmed",
        "a confirmed address joins at once"
    );
    let r = app
        .admin(
            Method::DELETE,
            &format!("/api/v1/lists/partners/members/{id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let detail: Value = app
        .admin(Method::GET, &format!("/api/v1/subscribers/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let statuses: Vec<(String, String)> = detail["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["list"].as_str().unwrap().into(),
                m["status"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("events-only".into(), "confirmed".into()),
            ("partners".into(), "unsubscribed".into())
        ]
    );
}
