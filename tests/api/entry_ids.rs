//! Entry ids are fixed when the database is created: a new base URL moves every link
//! and keeps every id (issue 12, finding 8), on both backends.

use crate::helpers::{
    Db, TestApp, default_now, fresh_postgres_url, note_postgres_skipped, spawn_app_with,
};
use newsdesk::config::DatabaseUrl;
use newsdesk::domain::Role;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, SET_COOKIE};
use std::time::Duration;

/// What a reader keeps of the site's feeds: every id, and every link.
#[derive(Debug)]
struct Seen {
    ids: Vec<String>,
    links: Vec<String>,
}

async fn start(db_url: &str, base_url: &str) -> TestApp {
    let (db_url, base_url) = (db_url.to_owned(), base_url.to_owned());
    spawn_app_with(Db::Sqlite, move |s| {
        s.database_url = DatabaseUrl::parse(&db_url).unwrap();
        s.base_url = base_url;
        s.base_url_from_bind = false;
    })
    .await
    .unwrap()
}

async fn read_feeds(app: &TestApp) -> Seen {
    let mut ids = Vec::new();
    let mut links = Vec::new();
    for scope in ["all", "events", "news"] {
        let atom = app.atom(scope).await;
        ids.push(atom.id().to_owned());
        for e in atom.entries() {
            ids.push(e.id().to_owned());
            links.extend(e.links().iter().map(|l| l.href().to_owned()));
        }
        let rss = app.rss(scope).await;
        for i in rss.items() {
            ids.push(i.guid().unwrap().value().to_owned());
            links.push(i.link().unwrap().to_owned());
        }
        let json = app.json_feed(scope).await;
        for i in json["items"].as_array().unwrap() {
            ids.push(i["id"].as_str().unwrap().to_owned());
            links.push(i["url"].as_str().unwrap().to_owned());
        }
        let (status, ics) = app.feed(scope, "ics").await;
        assert_eq!(status, StatusCode::OK);
        ids.extend(
            ics.lines()
                .filter_map(|l| l.strip_prefix("UID:"))
                .map(str::to_owned),
        );
    }
    let (status, one) = {
        let r = app
            .get(&format!(
                "/items/{}.ics",
                newsdesk::demo::FINAL_SESSION_SLUG
            ))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK, "{one}");
    {
        ids.extend(
            one.lines()
                .filter_map(|l| l.strip_prefix("UID:"))
                .map(str::to_owned),
        );
    }
    Seen { ids, links }
}

async fn ids_outlive_the_base_url(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let db_url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("moving.db").display()),
        Db::Postgres => match fresh_postgres_url().await {
            Some(url) => url,
            None => return note_postgres_skipped(),
        },
    };

    let staging = start(&db_url, "https://staging.example.org").await;
    staging.load_demo().await;
    let before = read_feeds(&staging).await;
    assert!(before.ids.len() > 20, "{before:?}");
    assert!(
        before
            .ids
            .iter()
            .all(|id| id.starts_with("tag:staging.example.org")),
        "{before:?}"
    );
    assert!(
        before
            .links
            .iter()
            .all(|l| l.starts_with("https://staging.example.org/")),
        "{before:?}"
    );
    drop(staging);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let moved = start(&db_url, "https://news.example.org").await;
    let after = read_feeds(&moved).await;
    assert_eq!(after.ids, before.ids, "the same ids after the move");
    assert_eq!(after.links.len(), before.links.len());
    assert!(
        after
            .links
            .iter()
            .all(|l| l.starts_with("https://news.example.org/")),
        "the links move: {after:?}"
    );
    assert_eq!(moved.state.ids.as_str(), "staging.example.org");

    // An item written after the move is minted under the same authority.
    let item = moved
        .create_item(serde_json::json!({
            "title": "After the move", "categories": ["news"], "status": "published",
            "published_at": "2023-11-19T09:00:00Z"
        }))
        .await;
    let atom = moved.atom("news").await;
    let entry = atom
        .entries()
        .iter()
        .find(|e| e.title().as_str() == "After the move")
        .unwrap();
    assert_eq!(
        entry.id(),
        format!("tag:staging.example.org,2023-11-20:item/{}", item["id"])
    );

    // The admin dashboard says which authority the ids carry.
    let dashboard = admin_dashboard(&moved).await;
    assert!(
        dashboard.contains("<code id=\"id-authority\">tag:staging.example.org,"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("https://news.example.org"),
        "{dashboard}"
    );

    // `newsdesk migrate` style: fixing again with another candidate changes nothing.
    let kept = moved
        .state
        .store
        .site()
        .fix_id_authority(
            &newsdesk::domain::IdAuthority::from_base_url("https://elsewhere.example.net"),
            default_now(),
        )
        .await
        .unwrap();
    assert_eq!(kept.as_str(), "staging.example.org");
}

#[tokio::test]
async fn entry_ids_outlive_a_new_base_url_on_sqlite() {
    ids_outlive_the_base_url(Db::Sqlite).await;
}

#[tokio::test]
async fn entry_ids_outlive_a_new_base_url_on_postgres() {
    ids_outlive_the_base_url(Db::Postgres).await;
}

/// The dashboard as a signed-in admin sees it.
async fn admin_dashboard(app: &TestApp) -> String {
    const PASSWORD: &str = "correct horse battery staple";
    let hash = newsdesk::passwords::hash(PASSWORD).unwrap();
    app.state
        .store
        .users()
        .create("ids-admin", &hash, Role::Admin, default_now())
        .await
        .unwrap();
    let cookie = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let (k, val) = v.split(';').next()?.split_once('=')?;
                (k == name && !val.is_empty()).then(|| val.to_owned())
            })
            .unwrap()
    };
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = cookie(&form, "nd_signin");
    let html = form.text().await.unwrap();
    let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = &html[at..at + html[at..].find('"').unwrap()];
    let r = app
        .client
        .post(app.url("/admin/sign-in"))
        .header(COOKIE, format!("nd_signin={pre}"))
        .form(&[
            ("csrf", csrf),
            ("name", "ids-admin"),
            ("password", PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = cookie(&r, "nd_session");
    let page = app
        .get("/admin")
        .header(COOKIE, format!("nd_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    page.text().await.unwrap()
}
