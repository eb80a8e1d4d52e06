//! Toward large digests: the outbox built a chunk of readers at a time (a build that
//! stops half-way sends nothing, and resumes without a duplicate), the per-recipient
//! rows of old digests pruned with their totals kept, and `digest send` stopped by a
//! signal giving back what it held.

use crate::helpers::{Db, TestApp, spawn_app_with};
use crate::smtp_server::{Behaviour, SmtpServer};
use newsdesk::clock::Clock;
use newsdesk::delivery::Outbox;
use newsdesk::domain::{DigestStatus, DigestTrigger, IsoWeek, MailingList};
use newsdesk::services::{ServiceError, digests, lists, retention};
use newsdesk::store::{Created, HELD_UNTIL};
use sqlx::AnyPool;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn app_on(db: Db) -> Option<TestApp> {
    let app = spawn_app_with(db, |s| s.run_workers = false).await?;
    app.load_demo().await;
    Some(app)
}

async fn raw(app: &TestApp) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(app.state.settings.database_url.expose())
        .await
        .unwrap()
}

async fn scalar(pool: &AnyPool, sql: &str, id: i64) -> i64 {
    sqlx::query_scalar(sql)
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn partners(app: &TestApp) -> MailingList {
    lists::find(app.state.app(), newsdesk::demo::PARTNERS_LIST)
        .await
        .unwrap()
}

/// Confirmed members of the list, as a build counts them.
async fn members(pool: &AnyPool, list: &MailingList) -> i64 {
    scalar(
        pool,
        "SELECT COUNT(*) FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
         WHERE m.list_id = $1 AND m.status = 'confirmed' AND s.status = 'confirmed'",
        list.id,
    )
    .await
}

/// A digest's row and items, its deliveries left to be built.
async fn started(app: &TestApp, list: &MailingList, week: &str) -> i64 {
    let store = &app.state.store;
    let period = IsoWeek::parse(week).unwrap();
    let (window, selection) = digests::plan(store, list, period).await.unwrap();
    let created = store
        .digests()
        .create(
            list.id,
            week,
            &window,
            &selection,
            // Never skipped for want of items: the build is what is tested.
            0,
            DigestTrigger::Manual,
            None,
            None,
            app.clock.now(),
        )
        .await
        .unwrap();
    let Created::New(d) = created else {
        panic!("a new digest")
    };
    assert!(d.building, "its deliveries are built afterwards");
    d.id
}

async fn a_build_stopped_half_way_sends_nothing_and_resumes_without_duplicates(db: Db) {
    let Some(app) = app_on(db).await else { return };
    let core = app.state.app();
    let store = &app.state.store;
    let pool = raw(&app).await;
    let list = partners(&app).await;
    let n = members(&pool, &list).await;
    assert!(n >= 5, "the demo list has {n} members");
    let id = started(&app, &list, "2023-W45").await;
    let now = app.clock.now();

    // Two chunks of two readers, then the builder dies (it is simply not called again).
    assert!(store.digests().build_chunk(id, 2, now).await.unwrap());
    assert!(store.digests().build_chunk(id, 2, now).await.unwrap());
    let count = "SELECT COUNT(*) FROM deliveries WHERE digest_id = $1";
    assert_eq!(scalar(&pool, count, id).await, 4);
    let held = format!(
        "SELECT COUNT(*) FROM deliveries WHERE digest_id = $1 AND next_attempt_at = {HELD_UNTIL}"
    );
    assert_eq!(
        scalar(&pool, &held, id).await,
        4,
        "held until the build ends"
    );
    // No worker takes any of it, and it is not completed as sent.
    let outbox = Outbox::new(core.clone(), app.state.settings.delivery.clone());
    assert_eq!(outbox.run_once().await.unwrap().claimed, 0);
    store.digests().complete(now).await.unwrap();
    let d = store.digests().by_id(id).await.unwrap().unwrap();
    assert_eq!(d.status, DigestStatus::Sending);
    assert!(d.building);

    // Resumed, twice at once (two instances after a restart): every reader once.
    let (a, b) = tokio::join!(
        digests::finish_build(store, id, 1, now),
        digests::finish_build(store, id, 3, now),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(scalar(&pool, count, id).await, n);
    let distinct = "SELECT COUNT(DISTINCT subscriber_id) FROM deliveries WHERE digest_id = $1";
    assert_eq!(scalar(&pool, distinct, id).await, n);
    assert_eq!(scalar(&pool, &held, id).await, 0, "all released");
    assert!(!store.digests().by_id(id).await.unwrap().unwrap().building);
    // The maintenance loop's resume finds nothing left to do.
    assert_eq!(digests::resume_builds(core).await.unwrap(), 0);

    // Sent: every reader exactly once.
    let outcome = outbox.run_until_idle().await.unwrap();
    assert_eq!(outcome.claimed as i64, n);
    let c = digests::counts(core, id).await.unwrap();
    assert_eq!((c.sent + c.skipped) as i64, n);
    assert_eq!(c.pending + c.sending, 0);
    let d = store.digests().by_id(id).await.unwrap().unwrap();
    assert_eq!(d.status, DigestStatus::Sent);

    // A build stopped half-way is finished by `build` (the scheduler's and the CLI's
    // call), and a list that fits in one chunk is due at once, as before.
    let other = started(&app, &list, "2023-W46").await;
    assert!(store.digests().build_chunk(other, 3, now).await.unwrap());
    let week = IsoWeek::parse("2023-W46").unwrap();
    let again = digests::build(store, &list, week, DigestTrigger::Manual, None, now)
        .await
        .unwrap();
    assert!(matches!(again, Created::Existing(d) if d.id == other && !d.building));
    assert_eq!(scalar(&pool, count, other).await, n);
    assert_eq!(scalar(&pool, &held, other).await, 0);
    let single = started(&app, &list, "2023-W47").await;
    assert!(
        !store
            .digests()
            .build_chunk(single, 5_000, now)
            .await
            .unwrap()
    );
    assert_eq!(scalar(&pool, count, single).await, n);
    let due =
        "SELECT COUNT(*) FROM deliveries WHERE digest_id = $1 AND next_attempt_at <= 2000000000";
    assert_eq!(scalar(&pool, due, single).await, n);

    // Cancelled while it is built: the build stops and nothing is left held.
    let cancelled = started(&app, &list, "2023-W48").await;
    assert!(
        store
            .digests()
            .build_chunk(cancelled, 2, now)
            .await
            .unwrap()
    );
    digests::cancel(core, cancelled).await.unwrap();
    assert!(
        !store
            .digests()
            .build_chunk(cancelled, 2, now)
            .await
            .unwrap()
    );
    let waiting = "SELECT COUNT(*) FROM deliveries WHERE digest_id = $1 AND status = 'pending'";
    assert_eq!(
        scalar(&pool, waiting, cancelled).await,
        0,
        "nothing of it waits"
    );
    assert!(
        !store
            .digests()
            .by_id(cancelled)
            .await
            .unwrap()
            .unwrap()
            .building
    );
}

#[tokio::test]
async fn a_build_stopped_half_way_sends_nothing_and_resumes_without_duplicates_sqlite() {
    a_build_stopped_half_way_sends_nothing_and_resumes_without_duplicates(Db::Sqlite).await;
}

#[tokio::test]
async fn a_build_stopped_half_way_sends_nothing_and_resumes_without_duplicates_postgres() {
    a_build_stopped_half_way_sends_nothing_and_resumes_without_duplicates(Db::Postgres).await;
}

async fn old_deliveries_are_pruned_and_their_totals_kept(db: Db) {
    let Some(app) = app_on(db).await else { return };
    let core = app.state.app();
    let store = &app.state.store;
    let pool = raw(&app).await;
    let list = partners(&app).await;
    let n = members(&pool, &list).await;
    let outbox = Outbox::new(core.clone(), app.state.settings.delivery.clone());
    let old = match digests::send_now(core, &list, IsoWeek::parse("2023-W45").unwrap())
        .await
        .unwrap()
    {
        Created::New(d) => d.id,
        Created::Existing(_) => panic!("a new digest"),
    };
    outbox.run_until_idle().await.unwrap();
    let before = digests::counts(core, old).await.unwrap();
    assert_eq!(before.sent as i64, n);
    let sent_items = "SELECT COUNT(*) FROM delivered_items WHERE digest_id = $1";
    assert!(scalar(&pool, sent_items, old).await > 0);

    // 91 days later, a newer digest is sent too; only the old one is past 90 days.
    app.clock.advance(chrono::Duration::days(91));
    let new = match digests::send_now(core, &list, IsoWeek::parse("2023-W46").unwrap())
        .await
        .unwrap()
    {
        Created::New(d) => d.id,
        Created::Existing(_) => panic!("a new digest"),
    };
    outbox.run_until_idle().await.unwrap();
    let new_rows = scalar(
        &pool,
        "SELECT COUNT(*) FROM deliveries WHERE digest_id = $1",
        new,
    )
    .await;

    let pruned = retention::prune(core, 90).await.unwrap().unwrap();
    assert_eq!(pruned.digests, 1);
    assert_eq!(pruned.deliveries as i64, n);
    assert!(pruned.delivered_items > 0);
    let rows = "SELECT COUNT(*) FROM deliveries WHERE digest_id = $1";
    assert_eq!(scalar(&pool, rows, old).await, 0, "per-recipient rows gone");
    assert_eq!(scalar(&pool, sent_items, old).await, 0);
    // The totals stay, for the admin pages, the API and the archive.
    let after = digests::detail(core, old, 10).await.unwrap();
    assert!(after.digest.pruned);
    assert_eq!(after.counts.sent, before.sent);
    assert_eq!(after.counts.pending + after.counts.failed, 0);
    let archive = digests::archive(core, &list.slug).await.unwrap();
    let issue = archive
        .issues
        .iter()
        .find(|i| i.digest.id == old)
        .expect("the old digest is still in the archive");
    assert!(!issue.items.is_empty(), "with its items");
    let r = app
        .admin(reqwest::Method::GET, &format!("/api/v1/digests/{old}"))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["pruned"], true);
    assert_eq!(body["counts"]["sent"].as_i64(), Some(n));
    // The newer digest keeps everything.
    assert_eq!(scalar(&pool, rows, new).await, new_rows);
    assert!(!store.digests().by_id(new).await.unwrap().unwrap().pruned);
    // A pruned digest has nothing to retry.
    assert!(matches!(
        digests::retry(core, old).await,
        Err(ServiceError::Conflict { .. })
    ));
    // Run again: nothing more.
    assert_eq!(
        retention::prune(core, 90).await.unwrap(),
        Some(retention::Pruned::default())
    );
    if db == Db::Postgres {
        // One instance at a time: while another session holds the lock, nothing runs.
        // The app's own maintenance loop may be pruning this very moment: wait for it.
        let mut held = None;
        for _ in 0..100 {
            held = store.try_exclusive(retention::PRUNE_LOCK).await.unwrap();
            if held.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(held.is_some());
        assert_eq!(retention::prune(core, 90).await.unwrap(), None);
        held.unwrap().release().await;
        assert!(retention::prune(core, 90).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn old_deliveries_are_pruned_and_their_totals_kept_sqlite() {
    old_deliveries_are_pruned_and_their_totals_kept(Db::Sqlite).await;
}

#[tokio::test]
async fn old_deliveries_are_pruned_and_their_totals_kept_postgres() {
    old_deliveries_are_pruned_and_their_totals_kept(Db::Postgres).await;
}

const CONTACTS: usize = 80;
const MEMBERS: usize = 8 + CONTACTS;

fn newsdesk(db: &str, smtp_url: &str) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_newsdesk"));
    c.env("DATABASE_URL", db)
        .env("NEWSDESK_SMTP_URL", smtp_url)
        .env("NEWSDESK_MAIL_FROM", "SZPU News <news@szpu.example.edu>")
        .env("NEWSDESK_SEND_RATE", "40")
        .env("NEWSDESK_SEND_BATCH", "10")
        .env("NEWSDESK_SEND_CONCURRENCY", "1")
        // The default lease: given-back rows must not wait for it.
        .env("NEWSDESK_DELIVERY_LEASE_SECS", "60")
        .env("NEWSDESK_POLL_MS", "100")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn prepare(dir: &std::path::Path, db: &str) {
    let run = |args: &[&str]| {
        let out = newsdesk(db, "smtp://127.0.0.1:1")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["demo"]);
    let csv = dir.join("contacts.csv");
    let rows: String = (0..CONTACTS)
        .map(|n| format!("member{n}@example.org,Member {n}\n"))
        .collect();
    std::fs::write(&csv, format!("email,name\n{rows}")).unwrap();
    run(&[
        "subscribers",
        "import",
        csv.to_str().unwrap(),
        "--list",
        "partners",
        "--consent-source",
        "test",
    ]);
}

fn signal(child: &std::process::Child, name: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

const SEND: [&str; 6] = [
    "digest", "send", "--list", "partners", "--period", "2023-W45",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_send_and_gives_back_what_it_held() {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("signal.db");
    let db = format!("sqlite://{}", file.display());
    prepare(dir.path(), &db);

    let first = newsdesk(&db, &smtp.url()).args(SEND).spawn().unwrap();
    let started = Instant::now();
    while smtp.messages().len() < 15 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the send stalled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    signal(&first, "TERM");
    let out = tokio::task::spawn_blocking(move || first.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    let at_stop = smtp.messages().len();
    assert!(
        at_stop < MEMBERS,
        "the signal came too late to test anything"
    );

    // Every message the server took is recorded; every other row is free at once.
    sqlx::any::install_default_drivers();
    let pool = AnyPool::connect(&db).await.unwrap();
    let (sent, pending, held): (i64, i64, i64) = sqlx::query_as(
        "SELECT SUM(status = 'sent'), SUM(status = 'pending'),
                SUM(status = 'pending' AND (claimed_by IS NOT NULL OR next_attempt_at > CAST(strftime('%s','now') AS INTEGER)))
         FROM deliveries",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(sent as usize, at_stop, "each accepted message marked sent");
    assert_eq!(held, 0, "nothing left waiting for a lease");
    assert_eq!(sent + pending, MEMBERS as i64);
    assert!(
        stderr.contains(&format!("{pending} deliveries left")),
        "says how many are left: {stderr}"
    );
    pool.close().await;

    // Run again: the rest goes at once (not after the 60 s lease), nobody twice.
    let again = Instant::now();
    let second = newsdesk(&db, &smtp.url()).args(SEND).output().unwrap();
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(
        second.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert!(again.elapsed() < Duration::from_secs(30));
    assert!(
        stdout.contains(&format!("{MEMBERS} sent, 0 failed")),
        "{stdout}"
    );
    let mut per: HashMap<String, usize> = HashMap::new();
    for m in smtp.messages() {
        for to in &m.rcpt_to {
            *per.entry(to.clone()).or_default() += 1;
        }
    }
    assert_eq!(per.len(), MEMBERS);
    assert!(per.values().all(|n| *n == 1), "nobody twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_smtp_server_down_send_says_so_once_and_ctrl_c_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("down.db").display());
    prepare(dir.path(), &db);
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut send = newsdesk(&db, &format!("smtp://127.0.0.1:{port}"));
    send.args(SEND).env("NEWSDESK_RETRY_BASE_SECS", "30");
    let child = send.spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(4)).await;
    signal(&child, "INT");
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let unreachable: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("is unreachable"))
        .collect();
    assert_eq!(unreachable.len(), 1, "one line: {stderr}");
    assert!(unreachable[0].contains("next try at"), "{stderr}");
    assert!(unreachable[0].contains("Ctrl-C is safe"), "{stderr}");
    assert!(
        !stderr.contains("temporary failure"),
        "no line per recipient: {stderr}"
    );
    assert!(stderr.contains("stopped by SIGINT"), "{stderr}");
    assert!(
        stderr.contains(&format!("{MEMBERS} deliveries left")),
        "{stderr}"
    );
    assert!(stderr.lines().count() < 10, "{stderr}");
}
