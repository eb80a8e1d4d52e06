//! Watching the service: `/metrics` (read by promtool and scraped by a real
//! Prometheus), the access log in both formats with no secret in it, `/readyz` through
//! a database outage, and PostgreSQL start-up errors that say why.

use crate::helpers::{
    Db, TOKEN, TestApp, fresh_postgres_url, note_postgres_skipped, spawn_app, spawn_app_with,
};
use crate::smtp_server::{Behaviour, SmtpServer};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const METRICS_TOKEN: &str = "metrics-token-0123456789abcdef";

/// A tool the test needs, from PATH. Outside CI a missing tool skips the test with a
/// message; in CI (`CI=true`, where scripts/test.sh installs it) it fails the test.
fn tool(name: &str, package: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} is missing (Debian package {package}; scripts/test.sh installs it)"
        );
        eprintln!(
            "SKIPPED: {name} is not installed (Debian package {package}; scripts/test.sh installs it)"
        );
    }
    found
}

async fn with_metrics_token(db: Db) -> Option<TestApp> {
    spawn_app_with(db, |s| {
        s.observe.metrics_token = Some(newsdesk::config::Secret::new(METRICS_TOKEN));
    })
    .await
}

async fn scrape(app: &TestApp) -> String {
    let r = app
        .get("/metrics")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    r.text().await.unwrap()
}

/// The value of the sample with exactly this name and these labels.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.parse().unwrap())
}

/// `promtool check metrics` accepts the text (lint problems included).
fn promtool_accepts(text: &str) {
    let Some(promtool) = tool("promtool", "prometheus") else {
        return;
    };
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {said}\n{text}"
    );
}

#[tokio::test]
async fn metrics_are_off_unless_the_operator_chose_a_token_or_an_address() {
    let app = spawn_app().await;
    let r = app
        .get("/metrics")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_need_the_token_and_count_requests_by_route_template() {
    let app = with_metrics_token(Db::Sqlite).await.unwrap();
    app.load_demo().await;
    for (token, why) in [
        (None, "no token"),
        (Some("wrong-token-0123456789"), "wrong"),
    ] {
        let mut request = app.get("/metrics");
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"metrics\"");
    }
    // The API token is not the metrics token.
    let r = app.get("/metrics").bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // One miss, then hits; a 304; a feed that does not exist; a page no route matches.
    for _ in 0..3 {
        assert_eq!(app.feed("news", "rss").await.0, StatusCode::OK);
    }
    let etag = app.get("/feeds/news.rss").send().await.unwrap().headers()["etag"].clone();
    let r = app
        .get("/feeds/news.rss")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(
        app.feed("nothing-here", "rss").await.0,
        StatusCode::NOT_FOUND
    );
    let r = app
        .get("/unsubscribe/a-token-that-must-not-become-a-label")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app.get("/no/such/page").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Refused sign-ins: a name nobody has, twice; a blank password.
    for (name, password, status) in [
        ("nobody", "a-wrong-password", StatusCode::UNAUTHORIZED),
        ("nobody", "another-wrong-one", StatusCode::UNAUTHORIZED),
        ("nobody", "", StatusCode::UNPROCESSABLE_ENTITY),
    ] {
        assert_eq!(sign_in(&app, name, password).await, status);
    }

    let text = scrape(&app).await;
    assert_eq!(
        value(&text, "newsdesk_sign_in_failures_total{reason=\"wrong\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "newsdesk_sign_in_failures_total{reason=\"incomplete\"}"
        ),
        Some(1.0),
        "{text}"
    );
    let feeds = |status: u16| {
        value(
            &text,
            &format!(
                "newsdesk_http_requests_total{{method=\"GET\",route=\"/feeds/{{file}}\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(feeds(200), Some(4.0), "{text}");
    assert_eq!(feeds(304), Some(1.0), "{text}");
    assert_eq!(feeds(404), Some(1.0), "{text}");
    assert_eq!(
        value(
            &text,
            "newsdesk_http_requests_total{method=\"GET\",route=\"/unsubscribe/{token}\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "newsdesk_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(!text.contains("a-token-that-must-not"), "{text}");
    assert!(!text.contains("/no/such/page"), "{text}");
    // The three refused scrapes were counted too, under their route.
    assert_eq!(
        value(
            &text,
            "newsdesk_http_requests_total{method=\"GET\",route=\"/metrics\",status=\"401\"}"
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "newsdesk_http_request_duration_seconds_count{method=\"GET\",route=\"/feeds/{file}\"}"
        ),
        Some(6.0),
        "{text}"
    );
    // The first request renders; the other four (the 304 included) are hits. The feed
    // that does not exist was looked for, and missed.
    assert_eq!(
        value(&text, "newsdesk_feed_cache_requests_total{result=\"miss\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "newsdesk_feed_cache_requests_total{result=\"hit\"}"),
        Some(4.0),
        "{text}"
    );
    assert_eq!(value(&text, "newsdesk_database_up"), Some(1.0), "{text}");
    assert_eq!(
        value(&text, "newsdesk_database_pool_max_connections"),
        Some(10.0)
    );
    assert!(
        value(&text, "newsdesk_database_pool_connections{state=\"idle\"}").is_some(),
        "{text}"
    );
    assert_eq!(value(&text, "newsdesk_outbox_depth"), Some(0.0), "{text}");
    // Mail goes to .eml files: no SMTP histogram.
    assert!(!text.contains("newsdesk_smtp_reply"), "{text}");
    promtool_accepts(&text);
}

#[tokio::test]
async fn metrics_on_their_own_address_and_none_on_the_main_one() {
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.observe.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
    .unwrap();
    let own = app.metrics_address.clone().expect("a metrics listener");
    let r = app.get("/metrics").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not on the main address");
    assert_eq!(app.feed("all", "json").await.0, StatusCode::OK);
    let r = app
        .client
        .get(format!("{own}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert_eq!(
        value(
            &text,
            "newsdesk_http_requests_total{method=\"GET\",route=\"/feeds/{file}\",status=\"200\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // Only /metrics there.
    let r = app
        .client
        .get(format!("{own}/feeds/all.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    promtool_accepts(&text);

    // With a token as well, the own address asks for it.
    let app = spawn_app_with(Db::Sqlite, |s| {
        s.observe.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
        s.observe.metrics_token = Some(newsdesk::config::Secret::new(METRICS_TOKEN));
    })
    .await
    .unwrap();
    let own = app.metrics_address.clone().unwrap();
    let r = app
        .client
        .get(format!("{own}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = app
        .client
        .get(format!("{own}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .get("/metrics")
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

/// Digests, deliveries and the outbox come from the database, on both backends: a
/// digest built with the workers off waits in the outbox, and its age grows with the
/// clock; sent through a real SMTP server, it shows as sent, with the SMTP replies'
/// latencies.
#[tokio::test]
async fn digest_and_outbox_counts_are_read_from_the_database_on_both_backends() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let url = smtp.url();
        let Some(app) = spawn_app_with(db, |s| {
            s.observe.metrics_token = Some(newsdesk::config::Secret::new(METRICS_TOKEN));
            s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
            s.run_workers = false;
        })
        .await
        else {
            note_postgres_skipped();
            continue;
        };
        app.load_demo().await;
        let r = app
            .admin(Method::POST, "/api/v1/lists/partners/digests")
            .json(&json!({"period": "2023-W46"}))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_success(),
            "{db:?}: {}",
            r.text().await.unwrap()
        );
        app.clock.advance(chrono::Duration::seconds(90));
        let text = scrape(&app).await;
        assert_eq!(
            value(&text, "newsdesk_digests{status=\"sending\"}"),
            Some(1.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(&text, "newsdesk_digests{status=\"sent\"}"),
            Some(0.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(&text, "newsdesk_deliveries{status=\"pending\"}"),
            Some(8.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(&text, "newsdesk_outbox_depth"),
            Some(8.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(&text, "newsdesk_outbox_due"),
            Some(8.0),
            "{db:?} {text}"
        );
        // Due times and their age are on the database's clock (the one leases use),
        // not this instance's: the rows became due when the digest was built.
        let age = value(&text, "newsdesk_outbox_oldest_due_age_seconds").unwrap();
        assert!((0.0..60.0).contains(&age), "{db:?} {text}");
        promtool_accepts(&text);

        // A worker of this process sends them.
        newsdesk::delivery::Outbox::new(
            app.state.app().clone(),
            app.state.settings.delivery.clone(),
        )
        .run_until_idle()
        .await
        .unwrap();
        let text = scrape(&app).await;
        assert_eq!(
            value(&text, "newsdesk_digests{status=\"sent\"}"),
            Some(1.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(&text, "newsdesk_deliveries{status=\"sent\"}"),
            Some(8.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(&text, "newsdesk_outbox_depth"),
            Some(0.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(&text, "newsdesk_outbox_oldest_due_age_seconds"),
            Some(0.0),
            "{db:?} {text}"
        );
        assert_eq!(
            value(
                &text,
                "newsdesk_smtp_reply_duration_seconds_count{result=\"accepted\"}"
            ),
            Some(8.0),
            "{db:?} {text}"
        );
        assert_eq!(smtp.messages().len(), 8);
        promtool_accepts(&text);
    }
}

#[tokio::test]
async fn imported_rows_are_counted_by_outcome() {
    let app = with_metrics_token(Db::Sqlite).await.unwrap();
    app.load_demo().await;
    let csv = "email,name\nnew1@example.org,One\nnot-an-address,Two\nnew2@example.org,Three\n";
    for dry_run in [true, false] {
        let r = app
            .admin(
                Method::POST,
                &format!("/api/v1/subscribers/import?dry_run={dry_run}"),
            )
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    }
    let text = scrape(&app).await;
    assert_eq!(
        value(&text, "newsdesk_import_rows_total{outcome=\"applied\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "newsdesk_import_rows_total{outcome=\"not_applied\"}"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "newsdesk_import_rows_total{outcome=\"bad\"}"),
        Some(2.0),
        "{text}"
    );
    promtool_accepts(&text);
}

/// Kills a child process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn a_real_prometheus_scrapes_newsdesk_and_answers_a_query_for_its_counter() {
    let Some(prometheus) = tool("prometheus", "prometheus") else {
        return;
    };
    let app = with_metrics_token(Db::Sqlite).await.unwrap();
    app.load_demo().await;
    for _ in 0..5 {
        assert_eq!(app.feed("events", "atom").await.0, StatusCode::OK);
    }
    let dir = tempfile::tempdir().unwrap();
    let target = app.address.trim_start_matches("http://");
    let config = dir.path().join("prometheus.yml");
    let yaml = r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: newsdesk
    metrics_path: /metrics
    authorization:
      type: Bearer
      credentials: TOKEN
    static_configs:
      - targets: ['TARGET']
"#;
    std::fs::write(
        &config,
        yaml.replace("TOKEN", METRICS_TOKEN)
            .replace("TARGET", target),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
    let _prometheus = Running(
        Command::new(prometheus)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("prometheus starts"),
    );
    let query = |q: &str| {
        let client = app.client.clone();
        let url = format!("http://127.0.0.1:{port}/api/v1/query");
        let q = q.to_owned();
        async move {
            let r = client.get(url).query(&[("query", q)]).send().await.ok()?;
            let body: Value = r.json().await.ok()?;
            let result = body["data"]["result"].as_array()?.first()?.clone();
            result["value"][1].as_str()?.parse::<f64>().ok()
        }
    };
    let started = Instant::now();
    let counter = loop {
        let found = query(
            "newsdesk_http_requests_total{job=\"newsdesk\",route=\"/feeds/{file}\",status=\"200\"}",
        )
        .await;
        if let Some(found) = found {
            break found;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let log = std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap();
            panic!("Prometheus did not get the counter within 60 s; its log:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(counter, 5.0);
    assert_eq!(query("up{job=\"newsdesk\"}").await, Some(1.0));
    assert_eq!(
        query("newsdesk_feed_cache_requests_total{result=\"hit\"}").await,
        Some(4.0)
    );
}

/// The binary serving, with its standard error kept.
struct Served {
    child: Running,
    _dir: tempfile::TempDir,
    address: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    admin_password: String,
}

async fn serve(vars: &[(&str, &str)]) -> Served {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().to_owned();
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
    command
        .args(["serve", "--demo"])
        .current_dir(&dir)
        .env_clear()
        .env("NEWSDESK_BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", format!("sqlite://{}/n.db", dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let err = BufReader::new(child.stderr.take().unwrap());
    let sink = stderr.clone();
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let child = Running(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(p) = line.split("with the password ").nth(1) {
                let _ = tx.send(p.split_whitespace().next().unwrap_or("").to_owned());
            }
            line.clear();
        }
    });
    let admin_password = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no demo password; stderr:\n{}", stderr.lock().unwrap()));
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{address}/healthz"))
        .send()
        .await
        .is_err()
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "newsdesk did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Served {
        child,
        _dir: tmp,
        address,
        stderr,
        admin_password,
    }
}

/// Requests that carry every kind of secret: bearer tokens, a session cookie, a
/// password, tokens in the path and in the query.
async fn requests_with_secrets(served: &Served, secrets: &Secrets) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("{}{p}", served.address);
    for _ in 0..3 {
        let r = client.get(url("/feeds/all.rss")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.bytes().await.unwrap();
    }
    let r = client
        .get(url(&format!("/feeds/news.atom?token={}", secrets.query)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .get(url("/api/v1/items"))
        .bearer_auth(secrets.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .get(url("/api/v1/items"))
        .bearer_auth(secrets.wrong_bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = client
        .get(url("/metrics"))
        .bearer_auth(secrets.metrics_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = client
        .get(url(&format!("/unsubscribe/{}", secrets.path)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Sign in: once with a wrong password, once with the right one; then use the
    // session cookie.
    for password in [secrets.wrong_password, served.admin_password.as_str()] {
        let form = client.get(url("/admin/sign-in")).send().await.unwrap();
        let pre = set_cookie(&form, "nd_signin").expect("the sign-in form's cookie");
        let csrf = csrf_of(&form.text().await.unwrap());
        let r = client
            .post(url("/admin/sign-in"))
            .header("cookie", format!("nd_signin={pre}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "admin"),
                ("password", password),
                ("next", "/admin"),
            ])
            .send()
            .await
            .unwrap();
        if password == secrets.wrong_password {
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            continue;
        }
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        let session = set_cookie(&r, "nd_session").expect("a session cookie");
        let r = client
            .get(url("/admin"))
            .header("cookie", format!("nd_session={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let text = served.stderr.lock().unwrap().clone();
        assert!(
            !text.contains(&session),
            "the session cookie was logged:\n{text}"
        );
    }
}

/// Posts the sign-in form as a browser would; the answer's status.
async fn sign_in(app: &TestApp, name: &str, password: &str) -> StatusCode {
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = set_cookie(&form, "nd_signin").expect("the sign-in form's cookie");
    let html = form.text().await.unwrap();
    let csrf = csrf_of(&html);
    app.client
        .post(app.url("/admin/sign-in"))
        .header("cookie", format!("nd_signin={pre}"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", name),
            ("password", password),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap()
        .status()
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = html.find(marker).expect("a form with a CSRF token") + marker.len();
    html[at..at + html[at..].find('"').unwrap()].to_owned()
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (k, val) = v.split(';').next()?.split_once('=')?;
            (k == name && !val.is_empty()).then(|| val.to_owned())
        })
}

struct Secrets {
    admin_token: &'static str,
    metrics_token: &'static str,
    wrong_bearer: &'static str,
    wrong_password: &'static str,
    path: &'static str,
    query: &'static str,
    smtp_password: &'static str,
    database_password: &'static str,
}

const SECRETS: Secrets = Secrets {
    admin_token: "secret-admin-token-1111aaaa",
    metrics_token: "secret-metrics-token-2222bbbb",
    wrong_bearer: "secret-wrong-bearer-3333cccc",
    wrong_password: "secret-wrong-password-4444",
    path: "secretpathtoken5555dddd",
    query: "secret-query-token-6666",
    smtp_password: "secret-smtp-password-7777",
    database_password: "secret-db-password-8888",
};

impl Secrets {
    fn all(&self) -> [&'static str; 8] {
        [
            self.admin_token,
            self.metrics_token,
            self.wrong_bearer,
            self.wrong_password,
            self.path,
            self.query,
            self.smtp_password,
            self.database_password,
        ]
    }
}

/// Waits until the log has the access line of the last request (the admin page, whose
/// line comes when its body has gone out; lines are written every 25 ms).
async fn access_lines(served: &Served, marker: &str, last: &str) -> String {
    let started = Instant::now();
    loop {
        let text = served.stderr.lock().unwrap().clone();
        if text.lines().any(|l| l.contains(marker) && l.contains(last)) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no access line with {last}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_logged_as_one_json_object_and_no_secret_is_ever_logged() {
    // With PostgreSQL, its URL carries a password too (trust authentication ignores it).
    let database_url = fresh_postgres_url().await.map(|u| {
        let mut u = url::Url::parse(&u).unwrap();
        u.set_password(Some(SECRETS.database_password)).unwrap();
        u.to_string()
    });
    let smtp = format!("smtp://mailer:{}@127.0.0.1:9", SECRETS.smtp_password);
    let mut vars = vec![
        ("NEWSDESK_LOG_FORMAT", "json"),
        ("NEWSDESK_ADMIN_TOKEN", SECRETS.admin_token),
        ("NEWSDESK_METRICS_TOKEN", SECRETS.metrics_token),
        ("NEWSDESK_SMTP_URL", smtp.as_str()),
    ];
    if let Some(url) = &database_url {
        vars.push(("DATABASE_URL", url.as_str()));
    }
    let served = serve(&vars).await;
    requests_with_secrets(&served, &SECRETS).await;
    let text = access_lines(&served, "\"newsdesk::access\"", "\"route\":\"/admin\",").await;
    drop(served.child);
    for secret in SECRETS.all() {
        assert!(!text.contains(secret), "{secret} was logged:\n{text}");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let access: Vec<&Value> = lines
        .iter()
        .filter(|l| l["target"] == "newsdesk::access")
        .collect();
    let feeds: Vec<&&Value> = access
        .iter()
        .filter(|l| l["route"] == "/feeds/{file}")
        .collect();
    assert_eq!(feeds.len(), 4, "{text}");
    for line in &feeds {
        assert_eq!(line["level"], "INFO", "{line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["status"], 200, "{line}");
        assert!(line["bytes"].as_u64().unwrap() > 1000, "{line}");
        assert!(line["duration_us"].is_u64(), "{line}");
        assert!(line["timestamp"].is_string(), "{line}");
    }
    let routes: Vec<(&str, u64)> = access
        .iter()
        .map(|l| (l["route"].as_str().unwrap(), l["status"].as_u64().unwrap()))
        .collect();
    for expected in [
        ("/api/v1/items", 200),
        ("/api/v1/items", 401),
        ("/metrics", 200),
        ("/unsubscribe/{token}", 404),
        ("/admin/sign-in", 401),
        ("/admin/sign-in", 303),
        ("/admin", 200),
    ] {
        assert!(routes.contains(&expected), "{expected:?} not in {routes:?}");
    }
    // Pages are compressed on the fly: their bytes are counted as they go out.
    let page = access.iter().find(|l| l["route"] == "/admin").unwrap();
    assert!(page["bytes"].as_u64().unwrap() > 100, "{page}");
    if database_url.is_some() {
        assert!(text.contains("***"), "the masked database URL:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_have_no_colour_off_a_terminal_and_no_secret_either() {
    let smtp = format!("smtp://mailer:{}@127.0.0.1:9", SECRETS.smtp_password);
    let served = serve(&[
        ("NEWSDESK_ADMIN_TOKEN", SECRETS.admin_token),
        ("NEWSDESK_METRICS_TOKEN", SECRETS.metrics_token),
        ("NEWSDESK_SMTP_URL", smtp.as_str()),
    ])
    .await;
    requests_with_secrets(&served, &SECRETS).await;
    let text = access_lines(&served, "newsdesk::access", "route=\"/admin\" ").await;
    drop(served.child);
    for secret in SECRETS.all() {
        assert!(!text.contains(secret), "{secret} was logged:\n{text}");
    }
    assert!(!text.contains('\x1b'), "colour off a terminal:\n{text}");
    let feed = text
        .lines()
        .find(|l| l.contains("newsdesk::access") && l.contains("route=\"/feeds/{file}\""))
        .unwrap_or_else(|| panic!("no feed line:\n{text}"));
    for field in ["method=GET", "status=200", "bytes=", "duration_us="] {
        assert!(feed.contains(field), "{field} not in {feed}");
    }
    // The access log can be switched off on its own.
    let served = serve(&[("RUST_LOG", "info,newsdesk::access=off")]).await;
    reqwest::get(format!("{}/feeds/all.rss", served.address))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = served.stderr.lock().unwrap().clone();
    assert!(text.contains("newsdesk is serving"), "{text}");
    assert!(!text.contains("newsdesk::access"), "{text}");
}

/// Forwards loopback connections to PostgreSQL until stopped; stopping closes the
/// port (connections refused) and cuts the connections under way.
struct Proxy {
    port: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    async fn start(port: u16, upstream: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let mut links = tokio::task::JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                links.spawn(async move {
                    if let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        Self {
            port,
            task: Some(task),
        }
    }

    /// Aborting the task drops the listener and every link (a `JoinSet` aborts its
    /// tasks when dropped).
    async fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

async fn ready(app: &TestApp) -> StatusCode {
    app.get("/readyz").send().await.unwrap().status()
}

async fn wait_ready(app: &TestApp, want: StatusCode, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        if ready(app).await == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "/readyz did not answer {want} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_answers_503_while_postgresql_is_unreachable_and_recovers_by_itself() {
    let Some(url) = fresh_postgres_url().await else {
        note_postgres_skipped();
        return;
    };
    let mut url = url::Url::parse(&url).unwrap();
    let upstream = url.port().unwrap_or(5432);
    let mut proxy = Proxy::start(0, upstream).await;
    let port = proxy.port;
    url.set_port(Some(port)).unwrap();
    let through_proxy = url.to_string();
    let app = spawn_app_with(Db::Sqlite, move |s| {
        s.database_url = newsdesk::config::DatabaseUrl::parse(&through_proxy).unwrap();
        s.run_workers = false;
    })
    .await
    .unwrap();
    assert_eq!(ready(&app).await, StatusCode::OK);
    let r = app.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    proxy.stop().await;
    // The pool would wait 10 s for a connection; readiness answers within a few.
    let took = wait_ready(
        &app,
        StatusCode::SERVICE_UNAVAILABLE,
        Duration::from_secs(10),
    )
    .await;
    assert!(took < Duration::from_secs(6), "{took:?}");
    let r = app.get("/readyz").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.text().await.unwrap(), "database unavailable\n");
    // Alive all the same.
    let r = app.get("/healthz").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let _proxy = Proxy::start(port, upstream).await;
    wait_ready(&app, StatusCode::OK, Duration::from_secs(15)).await;
    assert_eq!(app.feed("all", "rss").await.0, StatusCode::OK);
}

/// `newsdesk migrate` against a PostgreSQL URL, how long it took and what it said.
fn migrate(url: &str) -> (Duration, bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
        .arg("migrate")
        .current_dir(dir.path())
        .env_clear()
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (started.elapsed(), out.status.success(), said)
}

#[test]
fn a_refused_postgresql_connection_is_reported_at_once_with_the_password_masked() {
    // A port nothing listens on.
    let port = free_port();
    let url = format!("postgres://newsdesk:hunter2-secret@127.0.0.1:{port}/newsdesk");
    let (took, ok, said) = migrate(&url);
    assert!(!ok, "{said}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {said}");
    assert!(said.contains("connection refused"), "{said}");
    assert!(
        said.contains(&format!(
            "postgres://newsdesk:***@127.0.0.1:{port}/newsdesk"
        )),
        "{said}"
    );
    assert!(!said.contains("hunter2-secret"), "{said}");
    assert!(!said.contains("pool timed out"), "{said}");
}

#[tokio::test]
async fn a_postgresql_database_that_does_not_exist_is_named_at_once() {
    let Ok(admin) = std::env::var("NEWSDESK_TEST_POSTGRES_URL") else {
        note_postgres_skipped();
        return;
    };
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path("newsdesk_test_no_such_database");
    url.set_password(Some("hunter2-secret")).unwrap();
    let (took, ok, said) = tokio::task::spawn_blocking(move || migrate(url.as_str()))
        .await
        .unwrap();
    assert!(!ok, "{said}");
    assert!(took < Duration::from_secs(5), "took {took:?}: {said}");
    assert!(said.contains("no such database"), "{said}");
    assert!(said.contains("newsdesk_test_no_such_database"), "{said}");
    assert!(!said.contains("hunter2-secret"), "{said}");
}
