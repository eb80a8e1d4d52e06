//! Starts the real application on a random port with a fresh database, and talks to
//! it over HTTP like any client.

use chrono::{DateTime, TimeZone, Utc};
use newsdesk::clock::{ManualClock, SharedClock};
use newsdesk::config::Settings;
use newsdesk::http::AppState;
use newsdesk::startup::Application;
use reqwest::{Client, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use std::sync::{Arc, Once};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const TOKEN: &str = "test-admin-token-0123456789";

/// The hostile title every feed must carry exactly.
pub const HOSTILE_TITLE: &str = "<script>alert(\"x\")</script> & ]]> \"quotes\" 'apos' 🎉 研讨会";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub address: String,
    /// `/metrics`' own address (`NEWSDESK_METRICS_BIND`), when it has one.
    pub metrics_address: Option<String>,
    pub client: Client,
    pub clock: ManualClock,
    pub state: AppState,
    _dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

static TRACING: Once = Once::new();

/// The URL of a fresh PostgreSQL database, when the tests were given a server.
pub async fn fresh_postgres_url() -> Option<String> {
    let admin_url = std::env::var("NEWSDESK_TEST_POSTGRES_URL").ok()?;
    let name = format!("newsdesk_test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::postgres::PgConnection::connect(&admin_url)
        .await
        .expect("NEWSDESK_TEST_POSTGRES_URL is set but PostgreSQL does not answer");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .expect("creating a test database");
    let mut url = url::Url::parse(&admin_url).expect("a valid NEWSDESK_TEST_POSTGRES_URL");
    url.set_path(&name);
    Some(url.to_string())
}

/// Says once per test binary that PostgreSQL was skipped.
pub fn note_postgres_skipped() {
    static SKIPPED: Once = Once::new();
    SKIPPED.call_once(|| {
        eprintln!("NEWSDESK_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped (SQLite ran)");
    });
}

/// 2023-11-20 09:00 UTC: after all demo content, so the demo is all visible.
pub fn default_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 11, 20, 9, 0, 0).unwrap()
}

/// The app sending mail to a real SMTP server on loopback.
pub async fn spawn_app_with_smtp(smtp_url: String) -> TestApp {
    spawn_app_with(Db::Sqlite, move |s| {
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(smtp_url))
    })
    .await
    .expect("SQLite is always there")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Db::Sqlite, |_| {})
        .await
        .expect("SQLite is always there")
}

/// Starts the app on the given backend; `None` when that backend is not available.
pub async fn spawn_app_with(db: Db, adjust: impl FnOnce(&mut Settings)) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("newsdesk.db").display()),
        Db::Postgres => match fresh_postgres_url().await {
            Some(url) => url,
            None => {
                note_postgres_skipped();
                return None;
            }
        },
    };
    Some(spawn_app_at(&database_url, dir, adjust).await)
}

/// Starts another instance on the database of `first` (PostgreSQL: several instances
/// sharing one database).
pub async fn spawn_instance_like(first: &TestApp, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let url = first.state.settings.database_url.expose().to_owned();
    spawn_app_at(&url, tempfile::tempdir().unwrap(), adjust).await
}

/// A fresh database's URL on the backend (SQLite: a file in `dir`); `None` when that
/// backend is not available. Several apps may then be started on it with
/// [`spawn_app_at`], as instances sharing one database.
pub async fn fresh_database_url(db: Db, dir: &std::path::Path) -> Option<String> {
    match db {
        Db::Sqlite => Some(format!("sqlite://{}", dir.join("shared.db").display())),
        Db::Postgres => {
            let url = fresh_postgres_url().await;
            if url.is_none() {
                note_postgres_skipped();
            }
            url
        }
    }
}

/// Starts the app on the given backend with a test clock that the database's clock
/// follows ([`ManualClock::with_database`]): what falls due in the database (a reader's
/// local send time, a lease) falls due at the test clock's time. `None` when that
/// backend is not available.
pub async fn spawn_app_on_database_clock(
    db: Db,
    adjust: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let database_url = match db {
        Db::Sqlite => format!("sqlite://{}", dir.path().join("newsdesk.db").display()),
        Db::Postgres => match fresh_postgres_url().await {
            Some(url) => url,
            None => {
                note_postgres_skipped();
                return None;
            }
        },
    };
    let clock = ManualClock::with_database(default_now());
    Some(spawn_app_clocked(&database_url, dir, clock, adjust).await)
}

/// Starts the app on the database at `database_url`, with its own outbox in `dir`.
pub async fn spawn_app_at(
    database_url: &str,
    dir: TempDir,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_clocked(database_url, dir, ManualClock::new(default_now()), adjust).await
}

async fn spawn_app_clocked(
    database_url: &str,
    dir: TempDir,
    clock: ManualClock,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    TRACING.call_once(|| {
        if std::env::var("TEST_LOG").is_ok() {
            tracing_subscriber::fmt().with_env_filter("info").init();
        }
    });
    let vars = [
        ("DATABASE_URL", database_url.to_owned()),
        ("NEWSDESK_BIND", "127.0.0.1:0".to_owned()),
        ("NEWSDESK_ADMIN_TOKEN", TOKEN.to_owned()),
        ("NEWSDESK_SITE_NAME", "SZPU News".to_owned()),
        (
            "NEWSDESK_OUTBOX_DIR",
            dir.path().join("outbox").display().to_string(),
        ),
        (
            "NEWSDESK_MAIL_FROM",
            "SZPU News <news@szpu.example.edu>".to_owned(),
        ),
        ("NEWSDESK_SUBSCRIBE_RATE_PER_HOUR", "1000".to_owned()),
        // Tests do not wait: an idle worker looks again soon, a retry is due at once.
        ("NEWSDESK_POLL_MS", "50".to_owned()),
        ("NEWSDESK_RETRY_BASE_SECS", "0".to_owned()),
    ];
    let mut settings =
        Settings::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
            .unwrap();
    adjust(&mut settings);
    let shared: SharedClock = Arc::new(clock.clone());
    let app = Application::build(settings, shared)
        .await
        .expect("the app builds");
    let port = app.port();
    let address = format!("http://127.0.0.1:{port}");
    let metrics_address = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
    let state = app.state().clone();
    if state.settings.base_url_from_bind {
        assert_eq!(
            state.settings.base_url, address,
            "links follow the bound address"
        );
    }
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(async move {
        let _ = app
            .run_until(async {
                let _ = stopped.await;
            })
            .await;
    });
    TestApp {
        address,
        metrics_address,
        client: Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        clock,
        state,
        _dir: dir,
        stop: Some(stop),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(TOKEN)
    }

    pub async fn load_demo(&self) {
        newsdesk::demo::load(&self.state.store, default_now())
            .await
            .unwrap();
    }

    pub async fn create_category(&self, slug: &str, name: &str, parent: Option<&str>) -> Response {
        self.admin(reqwest::Method::POST, "/api/v1/categories")
            .json(&json!({"slug": slug, "name": name, "parent": parent}))
            .send()
            .await
            .unwrap()
    }

    pub async fn post_item(&self, body: &Value) -> Response {
        self.admin(reqwest::Method::POST, "/api/v1/items")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Creates an item and returns its JSON, failing the test on any error.
    pub async fn create_item(&self, body: Value) -> Value {
        let response = self.post_item(&body).await;
        let status = response.status();
        let text = response.text().await.unwrap();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "creating an item failed: {text}"
        );
        serde_json::from_str(&text).unwrap()
    }

    pub async fn feed(&self, scope: &str, ext: &str) -> (StatusCode, String) {
        let r = self
            .get(&format!("/feeds/{scope}.{ext}"))
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.text().await.unwrap())
    }

    pub async fn rss(&self, scope: &str) -> rss::Channel {
        let (status, body) = self.feed(scope, "rss").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        rss::Channel::read_from(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    pub async fn atom(&self, scope: &str) -> atom_syndication::Feed {
        let (status, body) = self.feed(scope, "atom").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        atom_syndication::Feed::read_from(body.as_bytes()).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    pub async fn json_feed(&self, scope: &str) -> Value {
        let (status, body) = self.feed(scope, "json").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    }

    /// The first subscriber whose email holds `email`, in full (memberships included),
    /// through the admin API; `None` when there is none.
    pub async fn find_subscriber(&self, email: &str) -> Option<Value> {
        let list: Value = self
            .admin(
                reqwest::Method::GET,
                &format!("/api/v1/subscribers?q={email}"),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = list["subscribers"][0]["id"].as_i64()?;
        let found = self
            .admin(reqwest::Method::GET, &format!("/api/v1/subscribers/{id}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Some(found)
    }

    /// [`TestApp::find_subscriber`], panicking naming `email` when there is none.
    pub async fn subscriber_by_email(&self, email: &str) -> Value {
        self.find_subscriber(email)
            .await
            .unwrap_or_else(|| panic!("no subscriber matches {email}"))
    }
}

/// A published event in `events`, with a hostile title and body.
pub fn hostile_event() -> Value {
    json!({
        "title": HOSTILE_TITLE,
        "summary": "Summary with <b>markup</b> & \"quotes\" ]]>",
        "body": "Body **bold** <script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1)) 🎉 研讨会",
        "author": "Pan Liucheng",
        "org_unit": "Asia-Africa Center",
        "categories": ["events"],
        "tags": ["UNEVOC", "tag & <tag>"],
        "status": "published",
        "published_at": "2023-11-15T08:00:00Z",
        "event": {
            "starts_at": "2023-11-23T14:00",
            "ends_at": "2023-11-23T17:30",
            "timezone": "Asia/Shanghai",
            "venue": "Liuxiandong Campus",
            "online_url": "https://meet.example.org/unevoc",
            "mode": "hybrid"
        }
    })
}

/// Runs SQL on the app's database over a connection of its own.
pub async fn run_sql(database_url: &str, statements: &[String]) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url)
        .await
        .expect("connecting to the test database");
    for statement in statements {
        sqlx::query(statement)
            .execute(&mut conn)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

/// Lets `secs` of the database's time pass for the shared limits (sign-in locks,
/// request budgets, import uploads): they run on the database's clock, which a test
/// cannot move, so their times are moved back instead.
pub async fn let_database_time_pass(database_url: &str, secs: i64) {
    run_sql(
        database_url,
        &[
            format!(
                "UPDATE sign_in_locks SET locked_until = locked_until - {secs}, expires_at = expires_at - {secs}"
            ),
            format!(
                "UPDATE rate_limits SET window_start = window_start - {secs}, last_at = last_at - {secs}, expires_at = expires_at - {secs}"
            ),
            format!("UPDATE import_spools SET expires_at = expires_at - {secs}"),
            format!("UPDATE once_jobs SET lease_until = lease_until - {secs}"),
        ],
    )
    .await;
}

impl TestApp {
    /// The database's URL (with its password, for the tests' own connections).
    pub fn database_url(&self) -> String {
        self.state.settings.database_url.expose().to_owned()
    }
}
