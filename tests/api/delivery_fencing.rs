//! Several workers on one database: leases on the database's clock, fencing before each
//! send, a resend that is the message first sent, and one send rate for all. Each test
//! runs on SQLite and PostgreSQL, against the real SMTP server on loopback.

use crate::helpers::{Db, TestApp, spawn_app_with};
use crate::smtp_server::{Behaviour, Received, SmtpServer, parse};
use newsdesk::app::App;
use newsdesk::clock::{Clock, ManualClock};
use newsdesk::config::Settings;
use newsdesk::delivery::Outbox;
use newsdesk::store::OutboxConnection;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo's eight members and these.
const MORE: usize = 20;
const MEMBERS: usize = 8 + MORE;

/// An app on `db` mailing `smtp`, with its own workers off, the demo and `MORE` more
/// confirmed members loaded, and a digest built: its id.
async fn digest_ready(
    db: Db,
    smtp: &SmtpServer,
    adjust: impl FnOnce(&mut Settings) + Send + 'static,
) -> Option<(TestApp, i64)> {
    let url = smtp.url();
    let app = spawn_app_with(db, move |s| {
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
        s.run_workers = false;
        adjust(s);
    })
    .await?;
    app.load_demo().await;
    let csv: String = std::iter::once("email,name\n".to_owned())
        .chain((0..MORE).map(|n| format!("member{n}@example.org,Member {n}\n")))
        .collect();
    let r = app
        .admin(
            Method::POST,
            "/api/v1/subscribers/import?list=partners&consent_source=test",
        )
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app
        .admin(Method::POST, "/api/v1/lists/partners/digests")
        .json(&json!({"period": "2023-W45"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    Some((app, created["id"].as_i64().unwrap()))
}

async fn counts(app: &TestApp, id: i64) -> Value {
    let d: Value = app
        .admin(Method::GET, &format!("/api/v1/digests/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    d["counts"].clone()
}

/// Runs a statement on the app's database directly, as a crash would leave it.
async fn raw(app: &TestApp, sql: &str) {
    use sqlx::Connection;
    let url = app.state.settings.database_url.expose().to_owned();
    if url.starts_with("postgres") {
        let mut c = sqlx::postgres::PgConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    } else {
        let mut c = sqlx::sqlite::SqliteConnection::connect(&url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
    }
}

fn by_recipient(received: &[Received]) -> HashMap<String, Vec<&Received>> {
    let mut map: HashMap<String, Vec<&Received>> = HashMap::new();
    for r in received {
        for to in &r.rcpt_to {
            map.entry(to.clone()).or_default().push(r);
        }
    }
    map
}

async fn work_off(outbox: &Outbox) {
    while outbox.run_once().await.unwrap().claimed > 0 {}
}

/// Claim, send, no mark (the process died in between), the lease runs out, another
/// worker claims the rows again: what it sends is byte for byte what went first, with
/// the same Message-ID (read by mail-parser), and the links of the first copy work.
#[tokio::test]
async fn a_resend_after_a_crash_is_byte_identical_to_the_first_copy() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some((app, id)) = digest_ready(db, &smtp, |_| {}).await else {
            continue;
        };
        let settings = app.state.settings.delivery.clone();
        work_off(&Outbox::new(app.state.app().clone(), settings.clone())).await;
        let first = smtp.messages();
        assert_eq!(first.len(), MEMBERS, "{db:?}");

        // As a crash between the server's acceptance and the marks leaves the rows:
        // claimed by a worker that is gone, its lease over, nothing recorded.
        raw(
            &app,
            &format!(
                "UPDATE deliveries SET status = 'pending', claimed_by = 'gone:0', next_attempt_at = 0,
                     lease_until = 0, message_id = NULL, sent_at = NULL, link_hash = NULL
                 WHERE digest_id = {id};
                 DELETE FROM delivered_items WHERE digest_id = {id};"
            ),
        )
        .await;
        // Another instance (its own outbox, its clock a minute on) sends them again.
        let later = ManualClock::new(app.clock.now() + chrono::Duration::minutes(1));
        let other = App::new(
            app.state.app().store.clone(),
            (*app.state.settings).clone(),
            Arc::new(later),
        )
        .await
        .unwrap();
        work_off(&Outbox::new(other, settings)).await;
        let all = smtp.messages();
        assert_eq!(all.len(), 2 * MEMBERS, "{db:?}");
        let (first, again) = all.split_at(MEMBERS);
        let first = by_recipient(first);
        for resent in again {
            let to = &resent.rcpt_to[0];
            let original = &first[to][0];
            assert_eq!(
                String::from_utf8_lossy(&resent.raw),
                String::from_utf8_lossy(&original.raw),
                "{db:?}: the resend to {to} differs from the first copy"
            );
            let (a, b) = (parse(&original.raw), parse(&resent.raw));
            assert!(a.message_id.is_some(), "{db:?}");
            assert_eq!(a.message_id, b.message_id, "{db:?}");
            assert_eq!(a.date, b.date, "{db:?}");
        }
        // Distinct messages stay distinct.
        let mut ids: Vec<_> = again.iter().map(|m| parse(&m.raw).message_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), MEMBERS, "{db:?}");
        let c = counts(&app, id).await;
        assert_eq!(c["sent"], MEMBERS, "{db:?}: {c}");
        // The first copy's unsubscribe link works (it is the resend's too).
        let parsed = parse(&first["member3@example.org"][0].raw);
        let link = parsed
            .headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("List-Unsubscribe"))
            .map(|(_, v)| v.trim_matches(['<', '>']).to_owned())
            .unwrap();
        let path = link.split_once("/unsubscribe/").unwrap().1;
        let r = app
            .get(&format!("/unsubscribe/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{db:?}: {link}");
    }
}

/// One instance's clock runs 90 s ahead (the lease is a minute): it takes none of the
/// rows another instance holds, and sends nothing of them.
#[tokio::test]
async fn an_instance_90_s_ahead_does_not_take_rows_another_holds() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some((app, id)) = digest_ready(db, &smtp, |s| {
            s.delivery.lease = Duration::from_secs(60);
        })
        .await
        else {
            continue;
        };
        // A live worker elsewhere holds every row.
        let mut holder = OutboxConnection::new(app.state.app().store.clone());
        let held = holder
            .claim_deliveries("holder:0", app.clock.now(), 60, 1000)
            .await
            .unwrap();
        assert_eq!(held.len(), MEMBERS);
        holder.release();

        let ahead = ManualClock::new(app.clock.now() + chrono::Duration::seconds(90));
        let skewed = App::new(
            app.state.app().store.clone(),
            (*app.state.settings).clone(),
            Arc::new(ahead.clone()),
        )
        .await
        .unwrap();
        let outbox = Outbox::new(skewed, app.state.settings.delivery.clone());
        assert_eq!(outbox.run_once().await.unwrap().claimed, 0, "{db:?}");
        // Even a clock hours ahead changes nothing: the database's clock decides.
        ahead.advance(chrono::Duration::hours(5));
        assert_eq!(outbox.run_once().await.unwrap().claimed, 0, "{db:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(smtp.messages().is_empty(), "{db:?}");
        let c = counts(&app, id).await;
        assert_eq!(c["sending"], MEMBERS, "{db:?}: {c}");
        assert_eq!(c["skipped"], 0, "{db:?}: {c}");
    }
}

/// A worker whose rows were taken by another (its lease had run out) sends none of
/// them: it checks, right before each send, that the row is still its own.
#[tokio::test]
async fn a_worker_whose_rows_were_taken_stops_sending_them() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        // A two-second lease, two messages a second, one batch of all: the lease must
        // be checked again before most sends.
        let Some((app, id)) = digest_ready(db, &smtp, |s| {
            s.delivery.lease = Duration::from_secs(2);
            s.delivery.rate_per_second = 2.0;
            s.delivery.batch_size = 100;
            s.delivery.concurrency = 1;
        })
        .await
        else {
            continue;
        };
        let outbox = Arc::new(Outbox::new(
            app.state.app().clone(),
            app.state.settings.delivery.clone(),
        ));
        let running = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.run_once().await.unwrap() }
        });
        smtp.wait_for(2, Duration::from_secs(20)).await;
        // Another worker has the rows now (as after this one's lease ran out).
        raw(
            &app,
            &format!(
                "UPDATE deliveries SET claimed_by = 'thief:0', next_attempt_at = next_attempt_at + 3600
                 WHERE digest_id = {id} AND status = 'pending'"
            ),
        )
        .await;
        let at_theft = smtp.messages().len();
        let outcome = tokio::time::timeout(Duration::from_secs(30), running)
            .await
            .expect("the worker stops")
            .unwrap();
        let after = smtp.messages().len();
        // One message may have passed its check just before the theft.
        assert!(
            after <= at_theft + 1,
            "{db:?}: {after} sent, {at_theft} at the theft"
        );
        assert!(after < MEMBERS, "{db:?}");
        // A mark that came after the theft is dropped, never recorded over the
        // thief's row; nothing is recorded as skipped or failed either.
        let c = counts(&app, id).await;
        let sent = c["sent"].as_u64().unwrap() as usize;
        assert!(sent <= after, "{db:?}: {c}");
        assert_eq!(
            sent + c["sending"].as_u64().unwrap() as usize,
            MEMBERS,
            "{db:?}: {c}"
        );
        assert_eq!(c["skipped"], 0, "{db:?}: {c}");
        assert_eq!(c["failed"], 0, "{db:?}: {c}");
        assert_eq!(outcome.sent, sent, "{db:?}");
    }
}

/// NEWSDESK_SEND_RATE is the rate of all workers together: two outboxes on one
/// database at 20 messages a second send 28 messages in about 1.4 s, not 0.7 s.
#[tokio::test]
async fn two_workers_on_one_database_share_the_send_rate() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some((app, id)) = digest_ready(db, &smtp, |s| {
            s.delivery.rate_per_second = 20.0;
            s.delivery.batch_size = 4;
        })
        .await
        else {
            continue;
        };
        let started = Instant::now();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let outbox =
                    Outbox::new(app.state.app().clone(), app.state.settings.delivery.clone());
                tokio::spawn(async move { work_off(&outbox).await })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let took = started.elapsed();
        let c = counts(&app, id).await;
        assert_eq!(c["sent"], MEMBERS, "{db:?}: {c}");
        let per = by_recipient(&smtp.messages()).len();
        assert_eq!(per, MEMBERS, "{db:?}");
        // 28 slots 50 ms apart: the last at 1.35 s at the earliest.
        assert!(
            took >= Duration::from_millis(1300),
            "{db:?}: two workers sent {MEMBERS} in {took:?}, over the shared rate"
        );
        assert!(took < Duration::from_secs(10), "{db:?}: {took:?}");
    }
}
