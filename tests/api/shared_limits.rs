//! Limits and state shared by instances on one database: two real servers (two
//! applications, each with its own pool and port) on one SQLite file or PostgreSQL
//! database. What one instance allows, both allow together; a restart (a new instance
//! on the same database) resets nothing; the admin import's upload can be applied on
//! another instance; the demo is loaded once however many instances start with it.

use crate::helpers::{Db, TestApp, fresh_database_url, let_database_time_pass, spawn_app_at};
use crate::smtp_server::{Behaviour, SmtpServer};
use newsdesk::config::Settings;
use newsdesk::domain::Role;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use std::time::Duration;
use tempfile::TempDir;

const PASSWORD: &str = "correct horse battery staple";

/// Two instances on one fresh database (kept in the returned directory for SQLite);
/// `None` when the backend is not available.
async fn two_on_one(
    db: Db,
    adjust: impl Fn(&mut Settings) + Clone,
) -> Option<(TempDir, String, TestApp, TestApp)> {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(db, dir.path()).await?;
    let a = spawn_app_at(&url, tempfile::tempdir().unwrap(), adjust.clone()).await;
    let b = spawn_app_at(&url, tempfile::tempdir().unwrap(), adjust).await;
    Some((dir, url, a, b))
}

async fn subscribe(app: &TestApp, email: &str, client: Option<&str>) -> (StatusCode, Vec<u8>) {
    let mut request = app
        .client
        .post(app.url("/subscribe"))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({"email": email, "name": "A Reader", "list": "partners"}).to_string(),
        );
    if let Some(client) = client {
        // A client's own claim first, then what the proxy saw.
        request = request.header("x-forwarded-for", format!("203.0.113.1, {client}"));
    }
    let r = request.send().await.unwrap();
    (r.status(), r.bytes().await.unwrap().to_vec())
}

async fn subscribe_limit_is_shared_and_survives_a_restart(db: Db) {
    let ten = |s: &mut Settings| s.subscribe_rate_per_hour = 10;
    let Some((_dir, url, a, b)) = two_on_one(db, ten).await else {
        return;
    };
    a.load_demo().await;
    for i in 0..10 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (status, _) = subscribe(app, &format!("reader{i}@example.org"), None).await;
        assert_eq!(status, StatusCode::ACCEPTED, "request {i} of 10");
    }
    // The eleventh is refused on either instance.
    for app in [&a, &b] {
        let (status, _) = subscribe(app, "reader10@example.org", None).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    // A restart resets nothing: a new instance on the same database refuses too.
    drop(a);
    let c = spawn_app_at(&url, tempfile::tempdir().unwrap(), ten).await;
    let (status, _) = subscribe(&c, "reader10@example.org", None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // The window is the database's hour.
    let_database_time_pass(&url, 3601).await;
    let (status, _) = subscribe(&c, "reader10@example.org", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = subscribe(&b, "reader11@example.org", None).await;
    assert_eq!(status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn the_subscribe_limit_is_shared_by_instances_on_sqlite() {
    subscribe_limit_is_shared_and_survives_a_restart(Db::Sqlite).await;
}

#[tokio::test]
async fn the_subscribe_limit_is_shared_by_instances_on_postgresql() {
    subscribe_limit_is_shared_and_survives_a_restart(Db::Postgres).await;
}

/// The sign-in form's cookie and token (good on any instance: they are compared with
/// each other only).
async fn sign_in_form(app: &TestApp) -> (String, String) {
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = set_cookie(&form, "nd_signin").unwrap();
    let csrf = csrf_of(&form.text().await.unwrap());
    (pre, csrf)
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let pair = v.split(';').next()?;
            let (k, val) = pair.split_once('=')?;
            (k == name && !val.is_empty()).then(|| val.to_owned())
        })
}

fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a form with a CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A sign-in's status and whether its page says the name is locked for 15 minutes or
/// the address is over its budget.
async fn attempt(
    app: &TestApp,
    form: &(String, String),
    name: &str,
    password: &str,
    client: &str,
) -> (StatusCode, &'static str) {
    let r = app
        .client
        .post(app.url("/admin/sign-in"))
        .header(COOKIE, format!("nd_signin={}", form.0))
        .header("x-forwarded-for", client)
        .form(&[
            ("csrf", form.1.as_str()),
            ("name", name),
            ("password", password),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let html = r.text().await.unwrap();
    let what = if html.contains("locked for 15 more minute") {
        "locked 15"
    } else if html.contains("locked for") {
        "locked"
    } else if html.contains("from your address") {
        "address over"
    } else if status == StatusCode::SEE_OTHER {
        "signed in"
    } else {
        "refused"
    };
    (status, what)
}

async fn add_user(app: &TestApp, name: &str, role: Role) -> i64 {
    let hash = newsdesk::passwords::hash(PASSWORD).unwrap();
    app.state
        .store
        .users()
        .create(name, &hash, role, crate::helpers::default_now())
        .await
        .unwrap()
        .id
}

async fn failed_sign_ins_are_counted_across_instances(db: Db) {
    let trusted = |s: &mut Settings| s.trust_forwarded_for = true;
    let Some((_dir, url, a, b)) = two_on_one(db, trusted).await else {
        return;
    };
    add_user(&a, "alice", Role::Admin).await;
    let form = sign_in_form(&a).await;
    // An account and a name of nobody, each guessed on both instances in turn: the
    // same answers, the fifth locks, wherever it lands.
    let mut answers = Vec::new();
    for name in ["alice", "nobody"] {
        let mut got = Vec::new();
        for i in 0..5 {
            let app = if i % 2 == 0 { &a } else { &b };
            got.push(attempt(app, &form, name, "wrong", "198.51.100.1").await);
        }
        answers.push(got);
    }
    assert_eq!(answers[0], answers[1]);
    assert_eq!(answers[0][3], (StatusCode::UNAUTHORIZED, "refused"));
    assert_eq!(answers[0][4], (StatusCode::TOO_MANY_REQUESTS, "locked 15"));
    // The lock holds on the other instance, for the right password too.
    let right = attempt(&a, &form, "alice", PASSWORD, "198.51.100.1").await;
    assert_eq!(right, (StatusCode::TOO_MANY_REQUESTS, "locked 15"));
    let nobody = attempt(&a, &form, "nobody", PASSWORD, "198.51.100.1").await;
    assert_eq!(nobody, right);

    // A client address's failures are counted across both: 30 in all, then refused.
    for n in 0..30 {
        let app = if n % 2 == 0 { &a } else { &b };
        let name = format!("guess{n}");
        let got = attempt(app, &form, &name, "wrong", "198.51.100.2").await;
        assert_eq!(got, (StatusCode::UNAUTHORIZED, "refused"), "failure {n}");
    }
    for app in [&a, &b] {
        let got = attempt(app, &form, "guess", "wrong", "198.51.100.2").await;
        assert_eq!(got, (StatusCode::TOO_MANY_REQUESTS, "address over"));
    }

    // A restart resets nothing.
    drop(a);
    let c = spawn_app_at(&url, tempfile::tempdir().unwrap(), trusted).await;
    let got = attempt(&c, &form, "alice", PASSWORD, "198.51.100.3").await;
    assert_eq!(got.0, StatusCode::TOO_MANY_REQUESTS, "alice stays locked");
    let got = attempt(&c, &form, "guess", "wrong", "198.51.100.2").await;
    assert_eq!(got, (StatusCode::TOO_MANY_REQUESTS, "address over"));
    // Once the database's 15 minutes have passed, alice signs in on either.
    let_database_time_pass(&url, 15 * 60 + 1).await;
    let got = attempt(&b, &form, "alice", PASSWORD, "198.51.100.3").await;
    assert_eq!(got, (StatusCode::SEE_OTHER, "signed in"));
    let got = attempt(&c, &form, "guess", "wrong", "198.51.100.2").await;
    assert_eq!(got, (StatusCode::UNAUTHORIZED, "refused"));
}

#[tokio::test]
async fn failed_sign_ins_are_counted_across_instances_on_sqlite() {
    failed_sign_ins_are_counted_across_instances(Db::Sqlite).await;
}

#[tokio::test]
async fn failed_sign_ins_are_counted_across_instances_on_postgresql() {
    failed_sign_ins_are_counted_across_instances(Db::Postgres).await;
}

/// Waits until the background sends are done, then counts the messages.
async fn mails_settled(smtp: &SmtpServer, at_least: usize) -> usize {
    smtp.wait_for(at_least, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    smtp.messages().len()
}

async fn confirmation_mails_are_limited_per_address(db: Db) {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let smtp_url = smtp.url();
    let settings = move |s: &mut Settings| {
        s.trust_forwarded_for = true;
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(smtp_url.clone()));
    };
    let Some((_dir, url, a, b)) = two_on_one(db, settings).await else {
        return;
    };
    a.load_demo().await;
    let target = "stranger@example.org";
    let mut answers = Vec::new();
    // Twelve requests for one address from twelve client addresses, on both instances.
    for i in 0..12 {
        let app = if i % 2 == 0 { &a } else { &b };
        answers.push(subscribe(app, target, Some(&format!("198.51.100.{}", 10 + i))).await);
    }
    assert_eq!(mails_settled(&smtp, 1).await, 1, "one mail per 10 minutes");
    // Ten minutes later one more, and so on: three a day at most.
    for round in 2..=4 {
        let_database_time_pass(&url, 601).await;
        for i in 0..3 {
            let app = if i % 2 == 0 { &b } else { &a };
            answers.push(subscribe(app, target, Some(&format!("198.51.100.{}", 30 + i))).await);
        }
        let expected = round.min(3);
        assert_eq!(
            mails_settled(&smtp, expected).await,
            expected,
            "round {round}"
        );
    }
    // The next day, one more.
    let_database_time_pass(&url, 24 * 3600).await;
    answers.push(subscribe(&a, target, Some("198.51.100.50")).await);
    assert_eq!(mails_settled(&smtp, 4).await, 4);
    // Every mail went to the address; every answer was byte for byte the same.
    assert!(
        smtp.messages()
            .iter()
            .all(|m| m.rcpt_to == vec![target.to_owned()])
    );
    assert_eq!(answers[0].0, StatusCode::ACCEPTED);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // Another address has its own share; a confirmed one is answered the same.
    let (status, body) = subscribe(&b, "ayesha.khan@ntu-pk.example.edu", None).await;
    assert_eq!((status, body), answers[0]);
    let (status, body) = subscribe(&b, "other@example.org", Some("198.51.100.60")).await;
    assert_eq!((status, body), answers[0]);
    assert_eq!(mails_settled(&smtp, 5).await, 5);
}

#[tokio::test]
async fn confirmation_mails_are_limited_per_address_on_sqlite() {
    confirmation_mails_are_limited_per_address(Db::Sqlite).await;
}

#[tokio::test]
async fn confirmation_mails_are_limited_per_address_on_postgresql() {
    confirmation_mails_are_limited_per_address(Db::Postgres).await;
}

/// A signed-in browser on one instance; its cookie works on any instance.
struct Browser {
    cookie: String,
    csrf: String,
}

async fn signed_in(app: &TestApp, name: &str) -> Browser {
    let form = sign_in_form(app).await;
    let r = app
        .client
        .post(app.url("/admin/sign-in"))
        .header(COOKIE, format!("nd_signin={}", form.0))
        .form(&[
            ("csrf", form.1.as_str()),
            ("name", name),
            ("password", PASSWORD),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "sign-in of {name}");
    let cookie = format!("nd_session={}", set_cookie(&r, "nd_session").unwrap());
    let page = app
        .get("/admin")
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    Browser { cookie, csrf }
}

async fn page(app: &TestApp, b: &Browser, path: &str) -> (StatusCode, String) {
    let r = app
        .get(path)
        .header(COOKIE, &b.cookie)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

async fn upload(app: &TestApp, b: &Browser, csv: Vec<u8>) -> reqwest::Response {
    let form = reqwest::multipart::Form::new()
        .text("list", "partners")
        .text("consent_source", "partner agreement 2023")
        .text("mode", "good_rows")
        .part(
            "file",
            reqwest::multipart::Part::bytes(csv)
                .file_name("contacts.csv")
                .mime_str("text/csv")
                .unwrap(),
        );
    app.client
        .post(app.url(&format!("/admin/import?csrf={}", b.csrf)))
        .header(COOKIE, &b.cookie)
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn apply(app: &TestApp, b: &Browser, upload: &str) -> (StatusCode, String) {
    let r = app
        .client
        .post(app.url("/admin/import/apply"))
        .header(COOKIE, &b.cookie)
        .form(&[
            ("csrf", b.csrf.as_str()),
            ("upload", upload),
            ("list", "partners"),
            ("consent_source", "partner agreement 2023"),
            ("mode", "good_rows"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let to = r.headers()[LOCATION].to_str().unwrap().to_owned();
    (StatusCode::SEE_OTHER, page(app, b, &to).await.1)
}

async fn an_upload_on_one_instance_is_applied_on_another(db: Db) {
    let Some((_dir, url, a, b)) = two_on_one(db, |_| {}).await else {
        return;
    };
    a.load_demo().await;
    let alice_id = add_user(&a, "alice", Role::Admin).await;
    add_user(&a, "olga", Role::Admin).await;
    let alice = signed_in(&a, "alice").await;
    // More than one chunk (1 MiB) of rows, so the upload is stored in pieces.
    let mut csv = String::from("email,name,partner\nnot-an-address,Bad Row,\n");
    let rows = 30_000;
    for i in 0..rows {
        csv.push_str(&format!(
            "reader{i:05}@tp-sg.example.edu,Reader Number {i:05} of the partner,Temasek Polytechnic of Singapore\n"
        ));
    }
    assert!(csv.len() > 2 * 1024 * 1024, "{} bytes", csv.len());
    let r = upload(&a, &alice, csv.into_bytes()).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let preview = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let id = preview["/admin/import/".len()..][..64].to_owned();
    // The preview and the apply reach the other instance.
    let (status, html) = page(&b, &alice, &preview).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains(&format!("id=\"count-created\">{rows}<")),
        "{html}"
    );
    assert!(html.contains("id=\"count-bad\">1<"));
    // Another admin cannot use it: it is answered as gone.
    let olga = signed_in(&b, "olga").await;
    let (status, html) = page(&b, &olga, &preview).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(html.contains("no longer there"));
    let (_, html) = apply(&b, &alice, &id).await;
    assert!(html.contains(&format!("{rows} new")), "{html}");
    let s = a
        .state
        .store
        .people()
        .subscriber_by_email("reader29999@tp-sg.example.edu")
        .await
        .unwrap();
    assert!(s.is_some());
    // Applied once: gone on both instances, chunks and all.
    let (_, html) = apply(&a, &alice, &id).await;
    assert!(html.contains("no longer there"), "{html}");
    assert!(
        a.state
            .store
            .spools()
            .find(&id, alice_id)
            .await
            .unwrap()
            .is_none()
    );

    // An upload left alone expires after a day and is pruned.
    let r = upload(&b, &alice, b"email\nlate@example.org\n".to_vec()).await;
    let preview = r.headers()[LOCATION].to_str().unwrap().to_owned();
    let (status, _) = page(&a, &alice, &preview).await;
    assert_eq!(status, StatusCode::OK);
    let_database_time_pass(&url, 24 * 3600 + 1).await;
    let (status, _) = page(&a, &alice, &preview).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(a.state.store.limits().prune().await.unwrap() >= 1);
    // Nothing is left of either upload.
    let left: Vec<String> = chunks_left(&url).await;
    assert!(left.is_empty(), "{left:?}");
}

async fn chunks_left(url: &str) -> Vec<String> {
    use sqlx::Connection;
    let mut conn = sqlx::AnyConnection::connect(url).await.unwrap();
    sqlx::query_scalar::<_, String>(
        "SELECT spool_id FROM import_spool_chunks UNION ALL SELECT id FROM import_spools",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_upload_on_one_instance_is_applied_on_another_on_sqlite() {
    an_upload_on_one_instance_is_applied_on_another(Db::Sqlite).await;
}

#[tokio::test]
async fn an_upload_on_one_instance_is_applied_on_another_on_postgresql() {
    an_upload_on_one_instance_is_applied_on_another(Db::Postgres).await;
}

async fn the_demo_is_loaded_once_by_instances_starting_together(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database_url(db, dir.path()).await else {
        return;
    };
    let database_url = newsdesk::config::DatabaseUrl::parse(&url).unwrap();
    let first = newsdesk::store::Store::connect(&database_url, 2)
        .await
        .unwrap();
    first.migrate().await.unwrap();
    let mut stores = vec![first];
    for _ in 0..3 {
        stores.push(
            newsdesk::store::Store::connect(&database_url, 2)
                .await
                .unwrap(),
        );
    }
    let now = crate::helpers::default_now();
    let loads = stores.iter().map(|store| async move {
        let loaded = newsdesk::demo::load(store, now).await;
        let admin = newsdesk::services::users::demo_admin(store, now).await;
        (loaded, admin)
    });
    let results = futures_util::future::join_all(loads).await;
    let mut loaded = 0;
    let mut passwords = 0;
    for (l, admin) in results {
        match l.expect("no instance fails") {
            newsdesk::demo::Loaded::Loaded { .. } => loaded += 1,
            newsdesk::demo::Loaded::Skipped => {}
        }
        passwords += usize::from(admin.expect("no instance fails").is_some());
    }
    assert_eq!((loaded, passwords), (1, 1));
    let categories = stores[0].content().categories().await.unwrap();
    assert_eq!(categories.len(), 3);
    // A later start skips it.
    let again = newsdesk::demo::load(&stores[1], now).await.unwrap();
    assert!(matches!(again, newsdesk::demo::Loaded::Skipped));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_is_loaded_once_by_instances_starting_together_on_sqlite() {
    the_demo_is_loaded_once_by_instances_starting_together(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_demo_is_loaded_once_by_instances_starting_together_on_postgresql() {
    the_demo_is_loaded_once_by_instances_starting_together(Db::Postgres).await;
}

/// Two `newsdesk serve --demo` processes started at once on one PostgreSQL database:
/// both serve, the demo is loaded once.
#[tokio::test]
async fn two_serve_demo_processes_on_postgresql_both_start() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let Some(url) = fresh_database_url(Db::Postgres, dir.path()).await else {
        return;
    };
    let mut children = Vec::new();
    for _ in 0..2 {
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_newsdesk"))
            .args(["serve", "--demo"])
            .env("DATABASE_URL", &url)
            .env("NEWSDESK_BIND", "127.0.0.1:0")
            .env("NEWSDESK_WORKERS", "off")
            .env("NEWSDESK_OUTBOX_DIR", dir.path().join("outbox"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        children.push(child);
    }
    let mut logs = Vec::new();
    for child in &mut children {
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        let serving = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                log.push_str(&line);
                log.push('\n');
                if line.contains("newsdesk is serving") {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(serving, Ok(true), "{log}");
        logs.push(log);
    }
    for child in &mut children {
        assert!(child.try_wait().unwrap().is_none(), "still running");
        child.start_kill().unwrap();
        let _ = child.wait().await;
    }
    let loaded = logs
        .iter()
        .filter(|l| l.contains("demo content loaded"))
        .count();
    let skipped = logs.iter().filter(|l| l.contains("not loaded")).count();
    assert_eq!((loaded, skipped), (1, 1), "{logs:?}");
}
