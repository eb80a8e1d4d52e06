//! Digests delivered at the schedule's time in each reader's own zone, on a test clock
//! that the database's clock follows: the demo's partners (Karachi, Phnom Penh,
//! Singapore, Kuala Lumpur, Shanghai) and a few more readers, the digest built once,
//! each message arriving at the real SMTP server on loopback at 08:00 where its reader
//! is and not before, and a reader whose time and grace period passed not sent. Each
//! test runs on SQLite and PostgreSQL.

use crate::helpers::{Db, TestApp, spawn_app_on_database_clock};
use crate::smtp_server::{Behaviour, SmtpServer, parse};
use chrono::{DateTime, TimeZone, Utc};
use newsdesk::delivery::schedule::{TickOutcome, catch_up, on_schedule, tick};
use newsdesk::domain::DigestTrigger;
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

fn utc(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2023, 11, d, h, m, s).unwrap()
}

/// Readers by when their W45 digest is due (Monday 6 November 2023, 08:00 where they
/// are): the demo's eight through their institutions, and three more.
fn due_groups() -> Vec<(DateTime<Utc>, Vec<&'static str>)> {
    vec![
        // 08:00 at UTC+8: Singapore, Kuala Lumpur, Shanghai; a reader with no zone of
        // their own and no institution reads the list's (Asia/Shanghai).
        (
            utc(6, 0, 0, 0),
            vec![
                "weiling.tan@tp-sg.example.edu",
                "rajesh.kumar@tp-sg.example.edu",
                "nurul.aisyah@uthm-my.example.edu",
                "li.wei@zjtie-cn.example.edu",
                "chen.jing@zjtie-cn.example.edu",
                "nozone@example.org",
            ],
        ),
        // 08:00 ICT in Phnom Penh.
        (utc(6, 1, 0, 0), vec!["sokha.chan@ppi-kh.example.edu"]),
        // 08:00 PKT in Karachi; a Shanghai partner's contact who set Karachi as their
        // own zone goes with it.
        (
            utc(6, 3, 0, 0),
            vec![
                "ayesha.khan@ntu-pk.example.edu",
                "bilal.ahmed@ntu-pk.example.edu",
                "visiting@zjtie-cn.example.edu",
            ],
        ),
        // 08:00 CET in Paris.
        (utc(6, 7, 0, 0), vec!["paris@example.org"]),
    ]
}

/// The demo loaded on 1 November 2023 (so W45's window counts), its list read in each
/// reader's zone with a grace period of an hour, three more readers, and the clock
/// just before W45's digest is built.
async fn reader_local_demo(db: Db, smtp: &SmtpServer) -> Option<TestApp> {
    let url = smtp.url();
    let app = spawn_app_on_database_clock(db, move |s| {
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
    })
    .await?;
    let loaded = utc(1, 0, 0, 0);
    app.clock.set(loaded);
    newsdesk::demo::load(&app.state.store, loaded)
        .await
        .unwrap();
    let r = app
        .admin(Method::PUT, "/api/v1/lists/partners")
        .json(&json!({
            "slug": "partners", "name": "Partner institutions digest",
            "categories": ["news-events"], "schedule_cron": "0 0 8 * * Mon",
            "schedule_timezone": "Asia/Shanghai", "schedule_delivery": "reader_zone",
            "grace_minutes": 60
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
    // The scheduler hears of the change and plans the list's job at UTC+14 (and looks
    // for a missed window, on the clock as it is now): wait for it, so that it does not
    // look again later, on a clock the test has moved.
    let list_id = app
        .state
        .store
        .lists()
        .by_slug("partners")
        .await
        .unwrap()
        .unwrap()
        .id;
    for _ in 0..200 {
        if app
            .state
            .planned
            .get(list_id)
            .is_some_and(|(_, tz)| tz == "Etc/GMT-14")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.state.planned.get(list_id),
        Some(("0 0 8 * * Mon".to_owned(), "Etc/GMT-14".to_owned()))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let shanghai = partner_id(&app, "Zhejiang").await;
    for (email, partner, zone) in [
        ("nozone@example.org", None, None),
        ("paris@example.org", None, Some("Europe/Paris")),
        (
            "visiting@zjtie-cn.example.edu",
            Some(shanghai),
            Some("Asia/Karachi"),
        ),
    ] {
        let r = app
            .admin(Method::POST, "/api/v1/subscribers")
            .json(
                &json!({"email": email, "name": "Reader", "partner_id": partner, "timezone": zone,
                "list": "partners", "consent_source": "test"}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::CREATED,
            "{}",
            r.text().await.unwrap()
        );
    }
    app.clock.set(utc(5, 17, 0, 0));
    Some(app)
}

async fn partner_id(app: &TestApp, name_part: &str) -> i64 {
    let partners: Value = app
        .admin(Method::GET, "/api/v1/partners")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    partners
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"].as_str().unwrap().contains(name_part))
        .unwrap_or_else(|| panic!("a partner named like {name_part}: {partners}"))["id"]
        .as_i64()
        .unwrap()
}

async fn digest(app: &TestApp, id: i64) -> Value {
    app.admin(Method::GET, &format!("/api/v1/digests/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The addresses the SMTP server has received messages for.
fn recipients(smtp: &SmtpServer) -> BTreeSet<String> {
    smtp.messages()
        .iter()
        .flat_map(|m| m.rcpt_to.clone())
        .collect()
}

/// When each reader's delivery of the digest is due, as stored (read over a connection
/// of the test's own).
async fn stored_due_times(app: &TestApp, digest_id: i64) -> BTreeMap<String, DateTime<Utc>> {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(&app.database_url())
        .await
        .unwrap();
    let rows: Vec<(String, Option<i64>)> = sqlx::query_as(
        "SELECT s.email, d.due_at FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
         WHERE d.digest_id = $1",
    )
    .bind(digest_id)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(email, due)| {
            let due = due.expect("a reader-local delivery has its due time");
            (email, Utc.timestamp_opt(due, 0).unwrap())
        })
        .collect()
}

/// Sets the clock, then waits until the server has `n` messages (or fails).
async fn at_expect(app: &TestApp, smtp: &SmtpServer, at: DateTime<Utc>, n: usize, what: &str) {
    app.clock.set(at);
    let got = smtp.wait_for(n, Duration::from_secs(15)).await;
    assert_eq!(got.len(), n, "{what} at {at}: {:?}", recipients(smtp));
    // Nothing more comes meanwhile.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        smtp.messages().len(),
        n,
        "{what} at {at}: {:?}",
        recipients(smtp)
    );
}

#[tokio::test]
async fn each_reader_gets_the_week_at_0800_their_time_and_not_before() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some(app) = reader_local_demo(db, &smtp).await else {
            continue;
        };
        let list = app
            .state
            .store
            .lists()
            .by_slug("partners")
            .await
            .unwrap()
            .unwrap();
        // The API says how the list is delivered and when its digest is built: Monday
        // 08:00 at UTC+14, Sunday 18:00 UTC.
        let shown: Value = app
            .admin(Method::GET, "/api/v1/lists/partners")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shown["schedule_delivery"], "reader_zone", "{db:?}");
        assert_eq!(shown["next_digest_at"], "2023-11-05T18:00:00Z", "{db:?}");

        // A minute before: nothing is due. (Asked directly: a job firing when its
        // schedule says nothing has them read again, which would race the test.)
        app.clock.set(utc(5, 17, 59, 0));
        assert_eq!(
            tick(app.state.app(), &list, DigestTrigger::Schedule)
                .await
                .unwrap(),
            TickOutcome::NotDue,
            "{db:?}"
        );
        // The job fires: the week's digest, built once.
        app.clock.set(utc(5, 18, 0, 0));
        let Some(TickOutcome::Built { period, digest_id }) =
            on_schedule(app.state.app(), list.id).await.unwrap()
        else {
            panic!("{db:?}: the digest is built when the job fires")
        };
        assert_eq!(period, "2023-W45");
        assert_eq!(
            on_schedule(app.state.app(), list.id).await.unwrap(),
            Some(TickOutcome::AlreadyThere {
                period: "2023-W45".into()
            }),
            "{db:?}: a second firing builds nothing"
        );
        let built = digest(&app, digest_id).await;
        assert_eq!(built["send_local"], "2023-11-06T08:00:00", "{db:?}");
        assert_eq!(built["counts"]["pending"], 11, "{db:?}: {built}");
        let coming: Vec<&str> = built["coming_up"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap())
            .collect();
        assert_eq!(
            coming,
            ["2023 UNEVOC Network Coaction Initiative: final session and closing ceremony"]
        );
        // Each reader's delivery is due at 08:00 where they are, fixed at the build.
        let expected: BTreeMap<String, DateTime<Utc>> = due_groups()
            .into_iter()
            .flat_map(|(at, readers)| readers.into_iter().map(move |r| (r.to_owned(), at)))
            .collect();
        assert_eq!(stored_due_times(&app, digest_id).await, expected, "{db:?}");

        // Nothing goes before the first readers' 08:00.
        app.clock.set(utc(5, 23, 59, 50));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(
            smtp.messages().is_empty(),
            "{db:?}: {:?}",
            recipients(&smtp)
        );

        let mut sent = 0;
        for (due, readers) in due_groups().into_iter().take(3) {
            // Ten seconds before: not yet.
            at_expect(
                &app,
                &smtp,
                due - chrono::Duration::seconds(10),
                sent,
                "before",
            )
            .await;
            sent += readers.len();
            at_expect(&app, &smtp, due, sent, "at 08:00 local").await;
            let got = recipients(&smtp);
            for r in &readers {
                assert!(got.contains(*r), "{db:?}: {r} at {due}");
            }
        }
        // Shanghai's reader reads it in Chinese, Karachi's in English, each with the
        // final session in their zone.
        let text_of = |to: &str| {
            let m = smtp
                .messages()
                .into_iter()
                .find(|m| m.rcpt_to.iter().any(|r| r == to))
                .unwrap();
            parse(&m.raw).text.unwrap()
        };
        let li_wei = text_of("li.wei@zjtie-cn.example.edu");
        assert!(li_wei.contains("北京时间，UTC+08:00"), "{li_wei}");
        assert!(text_of("ayesha.khan@ntu-pk.example.edu").contains("(Asia/Karachi, UTC+05:00)"));

        // The service is down over Paris's 08:00 (07:00 UTC) and its hour of grace:
        // at 08:30 UTC that reader's delivery is recorded as missed, not sent.
        app.clock.set(utc(6, 8, 30, 0));
        let mut done = Value::Null;
        for _ in 0..400 {
            done = digest(&app, digest_id).await;
            if done["status"] == "sent" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(done["status"], "sent", "{db:?}: {done}");
        assert_eq!(done["counts"]["sent"], 10, "{db:?}: {done}");
        assert_eq!(done["counts"]["missed"], 1, "{db:?}: {done}");
        assert_eq!(done["counts"]["skipped"], 0, "{db:?}: {done}");
        // The metrics' delivery gauge tells missed from skipped too.
        let stats = app.state.app().store.stats().delivery().await.unwrap();
        let count = |status: &str| {
            stats
                .deliveries
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n)
        };
        assert_eq!(
            (count("missed"), count("skipped")),
            (1, 0),
            "{db:?}: {stats:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !recipients(&smtp).contains("paris@example.org"),
            "{db:?}: past the grace period nothing is sent"
        );
        assert_eq!(smtp.messages().len(), 10, "{db:?}");
        // The reason is in the reader's history.
        let paris = app
            .state
            .store
            .people()
            .subscriber_by_email("paris@example.org")
            .await
            .unwrap()
            .unwrap();
        let history = app
            .state
            .store
            .digests()
            .deliveries_of(paris.id, 5)
            .await
            .unwrap();
        assert_eq!(history[0].status, "skipped");
        let reason = history[0].last_error.clone().unwrap_or_default();
        assert!(
            reason.starts_with("missed: due at 2023-11-06 07:00 UTC")
                && reason.contains("grace of 60 minutes"),
            "{db:?}: {reason}"
        );
    }
}

#[tokio::test]
async fn a_window_missed_while_down_is_built_late_and_each_reader_keeps_to_the_grace_period() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some(app) = reader_local_demo(db, &smtp).await else {
            continue;
        };
        let list = app
            .state
            .store
            .lists()
            .by_slug("partners")
            .await
            .unwrap()
            .unwrap();
        // Down from before the build until 02:30 UTC on Monday: the first readers'
        // 08:00 (00:00 and 01:00 UTC) and their hour of grace have passed, Karachi's and
        // Paris's have not.
        app.clock.set(utc(6, 2, 30, 0));
        let outcome = catch_up(app.state.app(), &list).await.unwrap();
        let TickOutcome::Built { period, digest_id } = outcome else {
            panic!("{db:?}: built late: {outcome:?}")
        };
        assert_eq!(period, "2023-W45");
        let mut counts = Value::Null;
        for _ in 0..400 {
            counts = digest(&app, digest_id).await["counts"].clone();
            if counts["missed"] == 7 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(counts["missed"], 7, "{db:?}: {counts}");
        assert_eq!(counts["pending"], 4, "{db:?}: {counts}");
        assert!(smtp.messages().is_empty(), "{db:?}");
        assert_eq!(digest(&app, digest_id).await["trigger"], "late");
        // Karachi's time comes: those three get it, Paris's reader later.
        at_expect(&app, &smtp, utc(6, 3, 0, 0), 3, "Karachi").await;
        at_expect(&app, &smtp, utc(6, 7, 0, 0), 4, "Paris").await;

        // Down for the whole of the next week's sends (built Sunday 12 November 18:00
        // UTC, last readers' 08:00 26 hours later) and their grace: missed, nothing built.
        app.clock.set(utc(13, 21, 1, 0));
        assert_eq!(
            catch_up(app.state.app(), &list).await.unwrap(),
            TickOutcome::Missed {
                period: "2023-W46".into()
            },
            "{db:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(smtp.messages().len(), 4, "{db:?}");
    }
}

#[tokio::test]
async fn the_delivery_zone_is_checked_at_the_edge_and_defaults_to_the_list_zone() {
    let Some(app) = spawn_app_on_database_clock(Db::Sqlite, |_| {}).await else {
        return;
    };
    let r = app
        .admin(Method::POST, "/api/v1/lists")
        .json(&json!({"slug": "weekly", "name": "Weekly", "schedule_delivery": "everyone's"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let problem: Value = r.json().await.unwrap();
    assert_eq!(
        problem["errors"][0]["field"], "schedule_delivery",
        "{problem}"
    );
    assert!(
        problem["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("\"list_zone\", \"reader_zone\""),
        "{problem}"
    );
    let r = app
        .admin(Method::POST, "/api/v1/lists")
        .json(&json!({"slug": "weekly", "name": "Weekly", "schedule_timezone": "Europe/Berlin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["schedule_delivery"], "list_zone");
    // 20 November 2023 09:00 UTC: the next Monday 08:00 in Berlin.
    assert_eq!(created["next_digest_at"], "2023-11-27T07:00:00Z");
}

/// A signed-in admin's session cookie and CSRF token.
async fn admin_browser(app: &TestApp) -> (String, String) {
    let hash = newsdesk::passwords::hash("correct horse battery staple").unwrap();
    app.state
        .store
        .users()
        .create(
            "alice",
            &hash,
            newsdesk::domain::Role::Admin,
            utc(1, 0, 0, 0),
        )
        .await
        .unwrap();
    let cookie_of = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| {
                let (k, val) = v.split(';').next()?.split_once('=')?;
                (k == name && !val.is_empty()).then(|| format!("{k}={val}"))
            })
            .unwrap()
    };
    let csrf_of = |html: &str| {
        let at = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        html[at..at + html[at..].find('"').unwrap()].to_owned()
    };
    let form = app.get("/admin/sign-in").send().await.unwrap();
    let pre = cookie_of(&form, "nd_signin");
    let csrf = csrf_of(&form.text().await.unwrap());
    let r = app
        .client
        .post(app.url("/admin/sign-in"))
        .header(COOKIE, &pre)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "alice"),
            ("password", "correct horse battery staple"),
            ("next", "/admin"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let session = cookie_of(&r, "nd_session");
    let page = app
        .get("/admin")
        .header(COOKIE, &session)
        .send()
        .await
        .unwrap();
    let csrf = csrf_of(&page.text().await.unwrap());
    (session, csrf)
}

#[tokio::test]
async fn the_admin_page_sets_a_day_a_time_and_the_zone_and_shows_the_next_sends_per_zone() {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let Some(app) = reader_local_demo(Db::Sqlite, &smtp).await else {
        return;
    };
    let (session, csrf) = admin_browser(&app).await;
    let page = |path: &'static str| {
        let (app, session) = (&app, session.clone());
        async move {
            let r = app.get(path).header(COOKIE, session).send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    // The list as the demo set it up: Monday 08:00, each reader's zone; the next sends
    // per zone, earliest first.
    let (status, html) = page("/admin/lists/partners").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains(r#"<option value="mon" selected>Monday</option>"#),
        "the day"
    );
    assert!(
        html.contains(r#"name="schedule_time" type="time" value="08:00""#),
        "the time"
    );
    assert!(
        html.contains(r#"<option value="reader_zone" selected>"#),
        "the zone choice"
    );
    assert!(
        html.contains(r#"name="schedule_cron" type="text" value="0 0 8 * * Mon""#),
        "the cron, advanced"
    );
    let table = &html[html.find(r#"id="next-sends""#).expect("the next sends")..];
    let table = &table[..table.find("</table>").unwrap()];
    let rows: Vec<&str> = table.split("<tr>").skip(2).collect();
    let cells = |row: &str| -> Vec<String> {
        row.split("<td")
            .skip(1)
            .map(|c| {
                let c = &c[c.find('>').unwrap() + 1..];
                c[..c.find("</td>").unwrap()].to_owned()
            })
            .collect()
    };
    let shown: Vec<Vec<String>> = rows.iter().map(|r| cells(r)).collect();
    let expected = [
        [
            "Asia/Kuala_Lumpur",
            "Mon 6 Nov 2023 08:00 +08",
            "Mon 6 Nov 2023 00:00 UTC",
            "1",
        ],
        [
            "Asia/Shanghai",
            "Mon 6 Nov 2023 08:00 CST",
            "Mon 6 Nov 2023 00:00 UTC",
            "3",
        ],
        [
            "Asia/Singapore",
            "Mon 6 Nov 2023 08:00 +08",
            "Mon 6 Nov 2023 00:00 UTC",
            "2",
        ],
        [
            "Asia/Phnom_Penh",
            "Mon 6 Nov 2023 08:00 +07",
            "Mon 6 Nov 2023 01:00 UTC",
            "1",
        ],
        [
            "Asia/Karachi",
            "Mon 6 Nov 2023 08:00 PKT",
            "Mon 6 Nov 2023 03:00 UTC",
            "3",
        ],
        [
            "Europe/Paris",
            "Mon 6 Nov 2023 08:00 CET",
            "Mon 6 Nov 2023 07:00 UTC",
            "1",
        ],
    ];
    assert_eq!(
        shown,
        expected.map(|r| r.map(str::to_owned).to_vec()),
        "{table}"
    );

    let post = |fields: Vec<(&'static str, &'static str)>| {
        let (app, session, csrf) = (&app, session.clone(), csrf.clone());
        async move {
            let mut form = vec![
                ("csrf", csrf.as_str().to_owned()),
                ("slug", "partners".to_owned()),
                ("name", "Partner institutions digest".to_owned()),
                ("categories", "news-events".to_owned()),
                ("opt_in", "double".to_owned()),
                ("visibility", "public".to_owned()),
                ("schedule_timezone", "Asia/Shanghai".to_owned()),
                ("schedule_cron_shown", "0 0 8 * * Mon".to_owned()),
                ("schedule_cron", "0 0 8 * * Mon".to_owned()),
                ("min_items", "1".to_owned()),
                ("grace_minutes", "60".to_owned()),
            ];
            for (k, v) in fields {
                form.retain(|(name, _)| *name != k);
                form.push((k, v.to_owned()));
            }
            app.client
                .post(app.url("/admin/lists/partners"))
                .header(COOKIE, session)
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    // A day and a time in the list's zone.
    let r = post(vec![
        ("schedule_day", "tue"),
        ("schedule_time", "07:30"),
        ("schedule_delivery", "list_zone"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let list = app
        .state
        .store
        .lists()
        .by_slug("partners")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.schedule.cron.as_str(), "0 30 7 * * Tue");
    assert!(!list.schedule.reader_local());
    let (_, html) = page("/admin/lists/partners").await;
    assert!(
        !html.contains(r#"id="next-sends""#),
        "no per-zone sends in the list's zone"
    );
    // The advanced field, edited, wins over the day and time.
    let r = post(vec![
        ("schedule_day", "tue"),
        ("schedule_time", "07:30"),
        ("schedule_cron_shown", "0 30 7 * * Tue"),
        ("schedule_cron", "0 0 9 * * Mon,Thu"),
        ("schedule_delivery", "reader_zone"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let list = app
        .state
        .store
        .lists()
        .by_slug("partners")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(list.schedule.cron.as_str(), "0 0 9 * * Mon,Thu");
    assert!(list.schedule.reader_local());
    let (_, html) = page("/admin/lists/partners").await;
    assert!(
        html.contains(r#"<option value="custom" selected>"#),
        "shown as custom"
    );
    assert!(
        html.contains("Mon 6 Nov 2023 09:00 PKT"),
        "the next sends follow"
    );
    // A bad time and a bad zone choice are named, and nothing is saved.
    let r = post(vec![
        ("schedule_day", "wed"),
        ("schedule_time", "25:99"),
        ("schedule_delivery", "somewhere"),
    ])
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("must be a time of day such as 08:00"),
        "the time's error"
    );
    assert!(
        html.contains("must be one of &quot;list_zone&quot;, &quot;reader_zone&quot;"),
        "the zone's error"
    );
    let list = app
        .state
        .store
        .lists()
        .by_slug("partners")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        list.schedule.cron.as_str(),
        "0 0 9 * * Mon,Thu",
        "unchanged"
    );
}

/// The database's clock in seconds, as SQL of the backend at `url`.
fn db_now_sql(url: &str) -> &'static str {
    if url.starts_with("sqlite") {
        "CAST(strftime('%s', 'now') AS INTEGER)"
    } else {
        "CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS BIGINT)"
    }
}

/// Waits (up to 60 s) for a line of `lines` holding `needle`, and returns it.
fn wait_for_line(lines: &std::sync::Mutex<Vec<String>>, needle: &str) -> String {
    let started = std::time::Instant::now();
    loop {
        if let Some(line) = lines.lock().unwrap().iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no line with {needle:?} in {:?}",
            lines.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `newsdesk digest send` for a reader-local digest whose readers' times are still
/// ahead: the copies due now go, then it says (once) how many wait and when the next
/// is due, read from the database, says it again when that changes, and keeps waiting
/// until Ctrl-C, which says how many are left. The real binary, on both backends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn digest_send_says_how_many_wait_for_their_readers_time_and_when_the_next_is_due() {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some(app) = crate::helpers::spawn_app_with(db, |s| s.run_workers = false).await else {
            continue;
        };
        app.load_demo().await;
        let r = app
            .admin(Method::PUT, "/api/v1/lists/partners")
            .json(&json!({
                "slug": "partners", "name": "Partner institutions digest",
                "categories": ["news-events"], "schedule_cron": "0 0 8 * * Mon",
                "schedule_timezone": "Asia/Shanghai", "schedule_delivery": "reader_zone"
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        // The scheduler's build of W45 (Monday 08:00 at UTC+14).
        let store = &app.state.store;
        let list = store.lists().by_slug("partners").await.unwrap().unwrap();
        let built = newsdesk::services::digests::build(
            store,
            &list,
            newsdesk::domain::IsoWeek::parse("2023-W45").unwrap(),
            DigestTrigger::Schedule,
            Some(utc(5, 18, 0, 0)),
            utc(5, 18, 0, 0),
        )
        .await
        .unwrap();
        let newsdesk::store::Created::New(digest) = built else {
            panic!("{db:?}: built before");
        };
        // Its readers' times moved to the real clock: two due now, three in 5 h 30 min,
        // the other three in 8 h.
        let url = app.database_url();
        let now = db_now_sql(&url);
        let rows = |offset: u32, limit: u32| {
            format!(
                "id IN (SELECT id FROM deliveries WHERE digest_id = {} ORDER BY id LIMIT {limit} OFFSET {offset})",
                digest.id
            )
        };
        let due_in = |secs: i64, which: String| {
            format!(
                "UPDATE deliveries SET due_at = {now} + {secs}, next_attempt_at = {now} + {secs} WHERE {which}"
            )
        };
        crate::helpers::run_sql(
            &url,
            &[
                due_in(0, rows(0, 2)),
                due_in(5 * 3600 + 30 * 60, rows(2, 3)),
                due_in(8 * 3600, rows(5, 100)),
            ],
        )
        .await;
        let next_due = |url: String| async move {
            sqlx::any::install_default_drivers();
            let mut conn = sqlx::AnyConnection::connect(&url).await.unwrap();
            let at: i64 = sqlx::query_scalar(&format!(
                "SELECT MIN(next_attempt_at) FROM deliveries WHERE digest_id = {} AND status = 'pending'",
                digest.id
            ))
            .fetch_one(&mut conn)
            .await
            .unwrap();
            Utc.timestamp_opt(at, 0)
                .unwrap()
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        };

        let mut child = Command::new(env!("CARGO_BIN_EXE_newsdesk"))
            .env("DATABASE_URL", &url)
            .env("NEWSDESK_SMTP_URL", smtp.url())
            .env("NEWSDESK_MAIL_FROM", "SZPU News <news@szpu.example.edu>")
            .env("NEWSDESK_POLL_MS", "100")
            .env_remove("RUST_LOG")
            .args([
                "digest", "send", "--list", "partners", "--period", "2023-W45",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        let reader = {
            let (lines, stderr) = (lines.clone(), child.stderr.take().unwrap());
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stderr).lines() {
                    lines.lock().unwrap().push(line.unwrap());
                }
            })
        };
        let first = {
            let lines = lines.clone();
            tokio::task::spawn_blocking(move || wait_for_line(&lines, "wait for their"))
                .await
                .unwrap()
        };
        assert_eq!(smtp.messages().len(), 2, "{db:?}: the two due now went");
        assert_eq!(
            first,
            format!(
                "newsdesk: 6 deliveries wait for their readers' local time; the next is due at \
                 {} (in 5 h 30 min)",
                next_due(url.clone()).await
            ),
            "{db:?}"
        );

        // One reader's time brought forward: said again, once.
        crate::helpers::run_sql(&url, &[due_in(3600, rows(7, 1))]).await;
        let expected = next_due(url.clone()).await;
        let second = {
            let lines = lines.clone();
            let needle = format!("the next is due at {expected}");
            tokio::task::spawn_blocking(move || wait_for_line(&lines, &needle))
                .await
                .unwrap()
        };
        assert!(second.ends_with("(in 1 h)"), "{db:?}: {second}");
        tokio::time::sleep(Duration::from_millis(800)).await;
        let ok = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
            .await
            .unwrap();
        reader.join().unwrap();
        let stderr = lines.lock().unwrap().join("\n");
        assert_eq!(status.code(), Some(130), "{db:?}: {stderr}");
        assert_eq!(
            stderr.matches("wait for their readers' local time").count(),
            2,
            "{db:?}: said once, and once more when it changed: {stderr}"
        );
        assert!(stderr.contains("6 deliveries left"), "{db:?}: {stderr}");
        assert_eq!(
            smtp.messages().len(),
            2,
            "{db:?}: nothing sent before its time"
        );
    }
}

/// The admin list page of a reader-local list, while the week's digest is built and its
/// copies still wait in zones further west: those sends (zone, local time, UTC time,
/// readers, from the stored due times) under the digest's period, before the next
/// digest's. Both backends.
#[tokio::test]
async fn the_admin_page_shows_the_sends_still_waiting_of_the_digest_being_sent() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some(app) = reader_local_demo(db, &smtp).await else {
            continue;
        };
        let list_id = app
            .state
            .store
            .lists()
            .by_slug("partners")
            .await
            .unwrap()
            .unwrap()
            .id;
        app.clock.set(utc(5, 18, 0, 0));
        let Some(TickOutcome::Built { period, .. }) =
            on_schedule(app.state.app(), list_id).await.unwrap()
        else {
            panic!("{db:?}: the digest is built when the job fires")
        };
        assert_eq!(period, "2023-W45");
        // Monday 02:00 UTC: UTC+8 and Phnom Penh are due already; Karachi (03:00 UTC)
        // and Paris (07:00 UTC) still wait.
        app.clock.set(utc(6, 2, 0, 0));
        let (session, _) = admin_browser(&app).await;
        let r = app
            .get("/admin/lists/partners")
            .header(COOKIE, &session)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{db:?}");
        let html = r.text().await.unwrap();
        let table = |id: &str| -> String {
            let at = html
                .find(&format!(r#"id="{id}""#))
                .unwrap_or_else(|| panic!("{db:?}: no table {id} in {html}"));
            let end = at + html[at..].find("</table>").unwrap();
            html[at..end].to_owned()
        };
        assert!(
            html.contains("Still being sent: 2023-W45, in each reader's time zone"),
            "{db:?}: the digest being sent is named with its period"
        );
        let sending = table("sending-2023-W45");
        let row = |zone: &str, local: &str, utc: &str, readers: u64| {
            format!(
                r#"<td data-label="Time zone">{zone}</td><td data-label="Local time">{local}</td><td data-label="UTC">{utc}</td><td class="num" data-label="Readers">{readers}</td>"#
            )
        };
        let karachi = row(
            "Asia/Karachi",
            "Mon 6 Nov 2023 08:00 PKT",
            "Mon 6 Nov 2023 03:00 UTC",
            3,
        );
        let paris = row(
            "Europe/Paris",
            "Mon 6 Nov 2023 08:00 CET",
            "Mon 6 Nov 2023 07:00 UTC",
            1,
        );
        assert!(sending.contains(&karachi), "{db:?}: {sending}");
        assert!(sending.contains(&paris), "{db:?}: {sending}");
        assert!(
            sending.find(&karachi) < sending.find(&paris),
            "{db:?}: earliest first"
        );
        assert_eq!(
            sending.matches("<tr><td").count(),
            2,
            "{db:?}: only the zones still waiting: {sending}"
        );
        // The next digest (W46) follows, after the one being sent.
        let next = table("next-sends");
        assert!(next.contains("Mon 13 Nov 2023 08:00 PKT"), "{db:?}: {next}");
        assert!(
            html.find(r#"id="sending-2023-W45""#) < html.find(r#"id="next-sends""#),
            "{db:?}: the digest being sent comes first"
        );

        // Once every reader's time passed, nothing waits: no such table.
        app.clock.set(utc(6, 7, 30, 0));
        let html = app
            .get("/admin/lists/partners")
            .header(COOKIE, session)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("Still being sent"), "{db:?}");
    }
}

/// The admin schedule form's time with seconds (07:15:30) keeps them: stored as
/// `30 15 7 * * Tue` and shown back as 07:15:30; a time to the minute stays as it was.
/// Both backends.
#[tokio::test]
async fn the_admin_schedule_form_keeps_the_seconds_of_its_time() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let Some(app) = reader_local_demo(db, &smtp).await else {
            continue;
        };
        let (session, csrf) = admin_browser(&app).await;
        for (time, cron, shown) in [
            ("07:15:30", "30 15 7 * * Tue", "07:15:30"),
            ("07:15", "0 15 7 * * Tue", "07:15"),
        ] {
            let r = app
                .client
                .post(app.url("/admin/lists/partners"))
                .header(COOKIE, &session)
                .form(&[
                    ("csrf", csrf.as_str()),
                    ("slug", "partners"),
                    ("name", "Partner institutions digest"),
                    ("categories", "news-events"),
                    ("opt_in", "double"),
                    ("visibility", "public"),
                    ("schedule_timezone", "Asia/Shanghai"),
                    ("schedule_cron_shown", "0 0 8 * * Mon"),
                    ("schedule_cron", "0 0 8 * * Mon"),
                    ("schedule_day", "tue"),
                    ("schedule_time", time),
                    ("schedule_delivery", "reader_zone"),
                    ("min_items", "1"),
                    ("grace_minutes", "60"),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(
                r.status(),
                StatusCode::SEE_OTHER,
                "{db:?} {time}: {}",
                r.text().await.unwrap()
            );
            let list = app
                .state
                .store
                .lists()
                .by_slug("partners")
                .await
                .unwrap()
                .unwrap();
            assert_eq!(list.schedule.cron.as_str(), cron, "{db:?} {time}");
            let html = app
                .get("/admin/lists/partners")
                .header(COOKIE, &session)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            assert!(
                html.contains(&format!(
                    r#"name="schedule_time" type="time" value="{shown}""#
                )),
                "{db:?} {time}: the form shows the time back as {shown}"
            );
            assert!(
                html.contains(r#"<option value="tue" selected>Tuesday</option>"#),
                "{db:?} {time}: a weekly schedule, not a custom one"
            );
        }
    }
}
