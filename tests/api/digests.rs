//! Weekly digests end to end: built from the demo content, delivered through a real SMTP
//! server on loopback, read back with mail-parser.

use crate::helpers::{Db, TestApp, spawn_app_with};
use crate::smtp_server::{Behaviour, Received, SmtpServer, parse};
use chrono::{Duration as Days, TimeZone, Utc};
use newsdesk::delivery::schedule::{TickOutcome, catch_up, on_schedule, tick};
use newsdesk::domain::DigestTrigger;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::Duration;

const MEMBERS: usize = 8;

async fn app(behaviour: Behaviour) -> (TestApp, SmtpServer) {
    let smtp = SmtpServer::start(behaviour).await;
    let url = smtp.url();
    let app = spawn_app_with(Db::Sqlite, move |s| {
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
    })
    .await
    .unwrap();
    app.load_demo().await;
    (app, smtp)
}

async fn send_now(app: &TestApp, period: &str) -> (StatusCode, Value) {
    let r = app
        .admin(Method::POST, "/api/v1/lists/partners/digests")
        .json(&json!({"period": period}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
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

/// Waits until the digest has no pending or sending deliveries left.
async fn settled(app: &TestApp, id: i64) -> Value {
    for _ in 0..400 {
        let d = digest(app, id).await;
        if d["counts"]["pending"] == 0 && d["counts"]["sending"] == 0 && d["status"] != "sending" {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("digest {id} did not settle: {}", digest(app, id).await);
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

#[tokio::test]
async fn the_demo_digests_arrive_with_the_right_content_for_every_member() {
    let (app, smtp) = app(Behaviour::accept_all()).await;
    let (status, created) = send_now(&app, "2023-W45").await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let titles: Vec<&str> = created["coming_up"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        ["2023 UNEVOC Network Coaction Initiative: final session and closing ceremony"]
    );
    let id = created["id"].as_i64().unwrap();
    let done = settled(&app, id).await;
    assert_eq!(done["status"], "sent");
    assert_eq!(done["counts"]["sent"], MEMBERS);

    let received = smtp.wait_for(MEMBERS, Duration::from_secs(10)).await;
    let per = by_recipient(&received);
    assert_eq!(per.len(), MEMBERS);
    assert!(per.values().all(|m| m.len() == 1), "each member once");
    for (to, messages) in &per {
        let mail = parse(&messages[0].raw);
        // The partner in China reads Chinese; the others English.
        let chinese = to.ends_with("@zjtie-cn.example.edu");
        let (subject, title) = if chinese {
            (
                "合作院校通讯：2023年第45周摘要（11月6日至12日）",
                newsdesk::demo::FINAL_SESSION_TITLE_ZH,
            )
        } else {
            (
                "Partner institutions digest: 6–12 November 2023",
                "2023 UNEVOC Network Coaction Initiative: final session and closing ceremony",
            )
        };
        assert_eq!(mail.subject.as_deref(), Some(subject), "{to}");
        assert_eq!(mail.content_type, "multipart/alternative");
        let (text, html) = (mail.text.clone().unwrap(), mail.html.clone().unwrap());
        for part in [&text, &html] {
            assert!(part.contains(title), "{to}");
            // Each reader is linked to the pages in their language.
            let pages = format!("{}/{}", app.address, if chinese { "zh" } else { "en" });
            assert!(
                part.contains(&format!(
                    "{pages}/items/unevoc-coaction-initiative-2023-final-session.ics"
                )),
                "{to}: {part}"
            );
            let page = format!("{pages}/items/unevoc-coaction-initiative-2023-final-session");
            assert!(
                part.matches(&page).count() > part.matches(&format!("{page}.ics")).count(),
                "{to}: the item's page in the reader's language: {part}"
            );
            assert!(
                part.contains(&format!("{pages}/digests/partners")),
                "{to}: the archive in the reader's language"
            );
            assert!(part.contains(&format!("{pages}/unsubscribe/")), "{to}");
            assert!(part.contains(&format!("{pages}/preferences/")), "{to}");
            assert!(
                !part.contains("ends with shared cases"),
                "the report is next week's"
            );
        }
        assert!(!html.contains("<script"), "no scripts in mail");
        let unsubscribe = mail.header("List-Unsubscribe").unwrap();
        assert!(
            unsubscribe.starts_with(&format!("<{}/unsubscribe/", app.address)),
            "{unsubscribe}"
        );
        assert_eq!(
            mail.header("List-Unsubscribe-Post"),
            Some("List-Unsubscribe=One-Click")
        );
    }
    // Each reader sees the event in their institution's zone and language.
    let text_of = |to: &str| parse(&per[to][0].raw).text.unwrap();
    let li = text_of("li.wei@zjtie-cn.example.edu");
    assert!(li.contains("Li Wei，您好！"), "{li}");
    assert!(
        li.contains("2023年11月9日（星期四）14:00至17:30（北京时间，UTC+08:00）"),
        "{li}"
    );
    assert!(
        li.contains("以下是为浙江经济职业技术学院各位同事整理的"),
        "their institution by its Chinese name: {li}"
    );
    let ayesha = text_of("ayesha.khan@ntu-pk.example.edu");
    assert!(ayesha.contains("Hello Ayesha Khan"), "{ayesha}");
    assert!(
        ayesha.contains("Thu 9 November 2023, 11:00 – 14:30 (Asia/Karachi, UTC+05:00)"),
        "{ayesha}"
    );

    // The unsubscribe link of the digest works in one click, for this list only.
    let header = parse(&per["ayesha.khan@ntu-pk.example.edu"][0].raw)
        .header("List-Unsubscribe")
        .unwrap()
        .to_owned();
    let url = header.trim_matches(|c| c == '<' || c == '>');
    let r = app
        .client
        .post(url)
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // The same message's preferences link opens that reader's page; a token changed in
    // one digit, or one of another message with this one's delivery id, opens nothing.
    let text = parse(&per["li.wei@zjtie-cn.example.edu"][0].raw)
        .text
        .unwrap();
    // The Chinese reader's links lead to the Chinese pages.
    let start = text
        .find(&format!("{}/zh/preferences/", app.address))
        .unwrap();
    let preferences: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '>' && *c != ')')
        .collect();
    let page = app.client.get(&preferences).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{preferences}");
    let html = page.text().await.unwrap();
    assert!(html.contains("li.wei@zjtie-cn.example.edu"));
    assert!(html.contains("<html lang=\"zh\">"), "{html}");
    let last = preferences.chars().last().unwrap();
    let changed = format!(
        "{}{}",
        &preferences[..preferences.len() - 1],
        if last == '0' { '1' } else { '0' }
    );
    let page = app.client.get(&changed).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND, "{changed}");
    let (_, other_id) = header.rsplit_once("/unsubscribe/d").unwrap();
    let (other_id, _) = other_id.split_once('-').unwrap();
    let (_, secret) = preferences.rsplit_once('-').unwrap();
    let crossed = format!("{}/zh/preferences/d{other_id}-{secret}", app.address);
    let page = app.client.get(&crossed).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND, "{crossed}");

    // The next week carries the news report, to the seven still on the list.
    let (_, w46) = send_now(&app, "2023-W46").await;
    let news: Vec<&str> = w46["news"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert!(news.contains(&"The 2023 UNEVOC Network Coaction Initiative ends with shared cases from six institutions"), "{w46}");
    assert!(w46["coming_up"].as_array().unwrap().is_empty());
    let done = settled(&app, w46["id"].as_i64().unwrap()).await;
    assert_eq!(done["counts"]["sent"], MEMBERS - 1);
    let all = smtp
        .wait_for(2 * MEMBERS - 1, Duration::from_secs(10))
        .await;
    assert!(
        by_recipient(&all)["ayesha.khan@ntu-pk.example.edu"].len() == 1,
        "no W46 after unsubscribing"
    );
}

#[tokio::test]
async fn a_second_send_or_tick_of_the_same_period_sends_nothing() {
    let (app, smtp) = app(Behaviour::accept_all()).await;
    let (_, created) = send_now(&app, "2023-W45").await;
    settled(&app, created["id"].as_i64().unwrap()).await;
    let (status, problem) = send_now(&app, "2023-W45").await;
    assert_eq!(status, StatusCode::CONFLICT, "{problem}");
    // Ticks of the schedule for the current week: once, then never again.
    let list = app
        .state
        .store
        .lists()
        .by_slug("partners")
        .await
        .unwrap()
        .unwrap();
    app.clock
        .set(Utc.with_ymd_and_hms(2023, 11, 27, 1, 0, 0).unwrap()); // Mon 09:00 Shanghai
    let first = tick(app.state.app(), &list, DigestTrigger::Schedule)
        .await
        .unwrap();
    assert!(
        matches!(first, TickOutcome::Built { ref period, .. } if period == "2023-W48"),
        "{first:?}"
    );
    for _ in 0..3 {
        let again = tick(app.state.app(), &list, DigestTrigger::Schedule)
            .await
            .unwrap();
        assert_eq!(
            again,
            TickOutcome::AlreadyThere {
                period: "2023-W48".into()
            }
        );
    }
    let digests: Value = app
        .admin(Method::GET, "/api/v1/digests?list=partners")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let periods: Vec<&str> = digests
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["period"].as_str().unwrap())
        .collect();
    assert_eq!(periods, ["2023-W48", "2023-W45"]);
    assert_eq!(digests[0]["trigger"], "schedule");
    // W48 carries the news since W45, the last digest sent: the report of W46.
    settled(&app, digests[0]["id"].as_i64().unwrap()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let messages = smtp.messages();
    let per = by_recipient(&messages);
    assert!(
        per.values().all(|m| m.len() == 2),
        "once per digest: {:?}",
        per.values().map(Vec::len).collect::<Vec<_>>()
    );
}

/// The digests of a list, newest first, as the API shows them.
async fn digests_of(app: &TestApp, list: &str) -> Vec<Value> {
    let r = app
        .admin(Method::GET, &format!("/api/v1/digests?list={list}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Value>().await.unwrap().as_array().unwrap().clone()
}

#[tokio::test]
async fn a_week_of_hourly_ticks_on_the_test_clock_builds_the_monday_digest_once_at_its_hour() {
    // No workers: only the ticks below build anything.
    let app = spawn_app_with(Db::Sqlite, |s| s.run_workers = false)
        .await
        .unwrap();
    let r = app
        .admin(Method::POST, "/api/v1/lists")
        .json(
            &json!({"slug": "weekly", "name": "Weekly", "schedule_cron": "0 0 8 * * Mon",
                      "schedule_timezone": "Europe/Berlin"}),
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
    let list = app
        .state
        .store
        .lists()
        .by_slug("weekly")
        .await
        .unwrap()
        .unwrap();
    // Made on Monday 20 November at 10:00 in Berlin, after that day's window: the one
    // window of the week that follows is Monday 27 November, 08:00 in Berlin.
    let start = app.state.clock.now();
    let window = Utc.with_ymd_and_hms(2023, 11, 27, 7, 0, 0).unwrap();
    let mut built_at = Vec::new();
    for hour in 1..=(7 * 24 + 12) {
        let now = start + Days::hours(hour);
        app.clock.set(now);
        let outcome = on_schedule(app.state.app(), list.id)
            .await
            .unwrap()
            .expect("the list exists");
        if let TickOutcome::Built { ref period, .. } = outcome {
            assert_eq!(period, "2023-W48");
            built_at.push(now);
        }
        let expected = match now.cmp(&window) {
            std::cmp::Ordering::Less => TickOutcome::NotDue,
            std::cmp::Ordering::Equal => outcome.clone(),
            std::cmp::Ordering::Greater => TickOutcome::AlreadyThere {
                period: "2023-W48".into(),
            },
        };
        assert_eq!(outcome, expected, "at {now}");
        let digests = digests_of(&app, "weekly").await;
        assert_eq!(digests.len(), usize::from(now >= window), "at {now}");
    }
    assert_eq!(built_at, [window], "built once, at its hour");
    let digests = digests_of(&app, "weekly").await;
    assert_eq!(digests[0]["period"], "2023-W48");
    assert_eq!(digests[0]["trigger"], "schedule");
    assert_eq!(
        digests[0]["scheduled_for"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<Utc>>().unwrap()),
        Some(window)
    );
    assert_eq!(
        digests[0]["created_at"]
            .as_str()
            .map(|t| t.parse::<chrono::DateTime<Utc>>().unwrap()),
        Some(window)
    );
}

#[tokio::test]
async fn missed_windows_are_sent_late_within_the_grace_period_and_recorded_after_it() {
    let (app, smtp) = app(Behaviour::accept_all()).await;
    let list = app
        .state
        .store
        .lists()
        .by_slug("partners")
        .await
        .unwrap()
        .unwrap();
    // The list was made after this week's window: nothing to catch up.
    assert_eq!(
        catch_up(app.state.app(), &list).await.unwrap(),
        TickOutcome::NotDue
    );
    // Down over the next window, back three hours later: sent late.
    let event = app
        .create_item(json!({"title": "Partner workshop", "categories": ["events"], "status": "published",
            "published_at": "2023-11-21T02:00:00Z",
            "event": {"starts_at": "2023-11-29T10:00", "timezone": "Asia/Shanghai", "mode": "in_person", "venue": "Room 101"}}))
        .await;
    assert_eq!(event["status"], "published");
    app.clock
        .set(Utc.with_ymd_and_hms(2023, 11, 27, 3, 0, 0).unwrap());
    let late = catch_up(app.state.app(), &list).await.unwrap();
    assert!(
        matches!(late, TickOutcome::Built { ref period, .. } if period == "2023-W48"),
        "{late:?}"
    );
    let received = smtp.wait_for(MEMBERS, Duration::from_secs(10)).await;
    assert!(
        parse(&received[0].raw)
            .text
            .unwrap()
            .contains("Partner workshop")
    );
    // Down for a week and two days: recorded as missed, nothing sent.
    app.clock
        .set(Utc.with_ymd_and_hms(2023, 12, 6, 3, 0, 0).unwrap());
    assert_eq!(
        catch_up(app.state.app(), &list).await.unwrap(),
        TickOutcome::Missed {
            period: "2023-W49".into()
        }
    );
    assert_eq!(
        catch_up(app.state.app(), &list).await.unwrap(),
        TickOutcome::AlreadyThere {
            period: "2023-W49".into()
        }
    );
    let digests: Value = app
        .admin(Method::GET, "/api/v1/digests")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let shown: Vec<(String, String, String)> = digests
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["period"].as_str().unwrap().into(),
                d["status"].as_str().unwrap().into(),
                d["trigger"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        shown[0],
        ("2023-W49".into(), "missed".into(), "schedule".into())
    );
    assert_eq!(shown[1].0, "2023-W48");
    assert_eq!(shown[1].2, "late");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        smtp.messages().len(),
        MEMBERS,
        "nothing for the missed window"
    );
}

#[tokio::test]
async fn an_item_sent_before_is_not_repeated_and_an_edited_one_is_marked_updated() {
    let (app, smtp) = app(Behaviour::accept_all()).await;
    // Announced in W47's news; starts in W48, where it is "coming up" again.
    let event = app
        .create_item(json!({"title": "Digital pedagogy clinic", "categories": ["events"], "status": "published",
            "published_at": "2023-11-15T02:00:00Z",
            "event": {"starts_at": "2023-11-28T10:00", "timezone": "Asia/Shanghai", "mode": "online",
                      "online_url": "https://meet.example.org/clinic"}}))
        .await;
    let (_, w47) = send_now(&app, "2023-W47").await;
    assert_eq!(w47["news"][0]["title"], "Digital pedagogy clinic");
    settled(&app, w47["id"].as_i64().unwrap()).await;
    smtp.wait_for(MEMBERS, Duration::from_secs(10)).await;

    // Unchanged: W48 holds it, but every member had it already; nobody gets mail.
    let (_, w48) = send_now(&app, "2023-W48").await;
    assert_eq!(w48["coming_up"][0]["title"], "Digital pedagogy clinic");
    let done = settled(&app, w48["id"].as_i64().unwrap()).await;
    assert_eq!(done["counts"]["skipped"], MEMBERS, "{done}");
    assert_eq!(done["counts"]["sent"], 0);

    // Edited since: W49 would not hold it, so rebuild the situation with a new week:
    // the event moves into W49 and is edited, and comes as "Updated".
    app.clock.advance(Days::hours(2));
    let mut edited = json!({"title": "Digital pedagogy clinic (new room)", "categories": ["events"], "status": "published",
        "published_at": "2023-11-15T02:00:00Z",
        "event": {"starts_at": "2023-12-05T10:00", "timezone": "Asia/Shanghai", "mode": "online",
                  "online_url": "https://meet.example.org/clinic"}});
    edited["slug"] = event["slug"].clone();
    let r = app
        .admin(Method::PUT, &format!("/api/v1/items/{}", event["id"]))
        .json(&edited)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, w49) = send_now(&app, "2023-W49").await;
    let done = settled(&app, w49["id"].as_i64().unwrap()).await;
    assert_eq!(done["counts"]["sent"], MEMBERS, "{done}");
    let all = smtp.wait_for(2 * MEMBERS, Duration::from_secs(10)).await;
    let mail = parse(&all.last().unwrap().raw);
    let text = mail.text.unwrap();
    assert!(
        text.contains("Digital pedagogy clinic (new room)"),
        "{text}"
    );
    assert!(
        text.contains("[Updated]") || text.contains("[已更新]"),
        "{text}"
    );
}

#[tokio::test]
async fn nothing_new_is_recorded_as_skipped_and_nothing_is_sent() {
    let (app, smtp) = app(Behaviour::accept_all()).await;
    let (status, d) = send_now(&app, "2024-W10").await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(d["status"], "skipped");
    assert!(d["note"].as_str().unwrap().contains("nothing new"), "{d}");
    assert_eq!(d["counts"]["pending"], 0);
    // A minimum of items is honoured too.
    let r = app
        .admin(Method::PUT, "/api/v1/lists/partners")
        .json(&json!({"slug": "partners", "name": "Partner institutions digest", "categories": ["news-events"],
                      "min_items": 3, "schedule_timezone": "Asia/Shanghai"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (_, d) = send_now(&app, "2023-W46").await;
    assert_eq!(d["status"], "skipped", "2 items < 3: {d}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn an_smtp_server_answering_4xx_for_a_while_gets_every_message_in_the_end() {
    let (app, smtp) = app(Behaviour::accept_all().temporary_failure_at_rcpt(5)).await;
    let (_, created) = send_now(&app, "2023-W45").await;
    let done = settled(&app, created["id"].as_i64().unwrap()).await;
    assert_eq!(done["counts"]["sent"], MEMBERS, "{done}");
    let messages = smtp.messages();
    let per = by_recipient(&messages);
    assert_eq!(per.len(), MEMBERS);
    assert!(
        per.values().all(|m| m.len() == 1),
        "retries sent nobody twice"
    );
}

/// Asks for a digest's failed deliveries to be retried: the answer's JSON.
async fn retry(app: &TestApp, id: i64) -> Value {
    app.admin(Method::POST, &format!("/api/v1/digests/{id}/retry"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_5xx_recipient_is_marked_failed_while_the_others_arrive_and_bounces_when_it_repeats() {
    let bad = "sokha.chan@ppi-kh.example.edu";
    let (app, smtp) = app(Behaviour::accept_all().unknown_recipient(bad)).await;
    let (_, created) = send_now(&app, "2023-W45").await;
    let id = created["id"].as_i64().unwrap();
    let done = settled(&app, id).await;
    assert_eq!(
        (
            done["counts"]["sent"].as_u64(),
            done["counts"]["failed"].as_u64()
        ),
        (Some(7), Some(1)),
        "{done}"
    );
    assert_eq!(done["failed"][0]["email"], bad);
    assert_eq!(done["failed"][0]["permanent"], true);
    assert!(
        done["failed"][0]["error"].as_str().unwrap().contains("550"),
        "{done}"
    );
    assert_eq!(by_recipient(&smtp.messages()).len(), 7);

    // Retried by an admin, it fails again: twice in a row, the subscriber is bounced.
    let r = retry(&app, id).await;
    assert_eq!(r["deliveries"], 1);
    let done = settled(&app, id).await;
    assert_eq!(done["counts"]["failed"], 1);
    let found: Value = app
        .admin(Method::GET, "/api/v1/subscribers?q=sokha")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["subscribers"][0]["status"], "bounced");
    // Now bounced, the address is not retried again.
    let r = retry(&app, id).await;
    assert_eq!(r["deliveries"], 0, "{r}");
    assert_eq!(digest(&app, id).await["status"], "sent");
    // A bounced subscriber gets no more digests.
    let (_, w46) = send_now(&app, "2023-W46").await;
    let done = settled(&app, w46["id"].as_i64().unwrap()).await;
    assert_eq!(done["counts"]["sent"], 7);
    assert_eq!(done["counts"]["failed"], 0);
}

#[tokio::test]
async fn previews_and_dry_runs_send_and_store_nothing() {
    let (app, smtp) = app(Behaviour::accept_all()).await;
    let r = app
        .admin(
            Method::GET,
            "/api/v1/lists/partners/digests/2023-W45/preview",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("final session and closing ceremony")
    );
    let text = app
        .admin(Method::GET, "/api/v1/lists/partners/digests/2023-W45/preview?format=text&subscriber=li.wei@zjtie-cn.example.edu")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("2023年11月9日（星期四）14:00至17:30"),
        "{text}"
    );
    let dry: Value = app
        .admin(
            Method::GET,
            "/api/v1/lists/partners/digests/2023-W46/dry-run",
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dry["recipients"].as_array().unwrap().len(), MEMBERS);
    assert_eq!(
        dry["items"], 1,
        "the report, once: its Chinese is a version of it"
    );
    for (query, field) in [
        ("2023-45/preview", "period"),
        ("2023-W45/preview?format=pdf", "format"),
        ("2023-W45/preview?subscriber=nobody", "subscriber"),
        ("2023-W45/preview?language=zh_CN", "language"),
    ] {
        let r = app
            .admin(
                Method::GET,
                &format!("/api/v1/lists/partners/digests/{query}"),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], field);
    }
    let digests: Value = app
        .admin(Method::GET, "/api/v1/digests")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(digests.as_array().unwrap().is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn a_digest_being_sent_can_be_cancelled() {
    let smtp = SmtpServer::start(Behaviour::accept_all()).await;
    let url = smtp.url();
    let app = spawn_app_with(Db::Sqlite, move |s| {
        s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
        s.delivery.rate_per_second = 4.0;
        s.delivery.batch_size = 2;
    })
    .await
    .unwrap();
    app.load_demo().await;
    let (_, created) = send_now(&app, "2023-W45").await;
    let id = created["id"].as_i64().unwrap();
    smtp.wait_for(1, Duration::from_secs(10)).await;
    let r = app
        .admin(Method::POST, &format!("/api/v1/digests/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cancelled: Value = r.json().await.unwrap();
    assert!(
        cancelled["deliveries"].as_u64().unwrap() >= 4,
        "{cancelled}"
    );
    // What was in flight at the cancel settles (on a loaded machine, it may take a
    // while): then what the server got is what is counted as sent.
    let started = std::time::Instant::now();
    let d = loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let d = digest(&app, id).await;
        let settled = d["counts"]["sending"].as_u64() == Some(0)
            && d["counts"]["sent"].as_u64() == Some(smtp.messages().len() as u64);
        if settled || started.elapsed() > Duration::from_secs(15) {
            break d;
        }
    };
    assert_eq!(d["status"], "cancelled");
    let sent = d["counts"]["sent"].as_u64().unwrap();
    assert_eq!(
        smtp.messages().len() as u64,
        sent,
        "what was sent is counted: {d}"
    );
    assert!(sent < MEMBERS as u64);
    let r = app
        .admin(Method::POST, &format!("/api/v1/digests/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // Nor does a retry bring a cancelled digest back.
    let r = app
        .admin(Method::POST, &format!("/api/v1/digests/{id}/retry"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(digest(&app, id).await["status"], "cancelled");
}

#[tokio::test]
async fn the_public_archive_shows_sent_digests_of_public_lists() {
    let (app, _smtp) = app(Behaviour::accept_all()).await;
    let (_, created) = send_now(&app, "2023-W45").await;
    settled(&app, created["id"].as_i64().unwrap()).await;
    let (_, skipped) = send_now(&app, "2023-W30").await; // nothing new in July: not in the archive
    assert_eq!(skipped["status"], "skipped");
    let page = app
        .get("/digests/partners")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("6–12 November 2023"), "{page}");
    assert!(!page.contains("2023-W30"));
    let issue = app.get("/digests/partners/2023-W45").send().await.unwrap();
    assert_eq!(issue.status(), StatusCode::OK);
    assert!(
        issue
            .text()
            .await
            .unwrap()
            .contains("final session and closing ceremony")
    );
    let feed = app
        .get("/digests/partners.atom")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let feed = atom_syndication::Feed::read_from(feed.as_bytes()).unwrap();
    assert_eq!(feed.entries().len(), 1);
    assert_eq!(
        feed.entries()[0].title().as_str(),
        "Partner institutions digest: 6–12 November 2023"
    );
    assert_eq!(feed.lang(), Some("en"));
    // In Chinese: the list, the week, the sections and the items named in it, links to
    // the /zh/ pages; a feed of its own.
    let zh = app
        .get("/digests/partners.atom?lang=zh")
        .send()
        .await
        .unwrap();
    assert_eq!(zh.status(), StatusCode::OK);
    let zh = zh.text().await.unwrap();
    let zh_feed = atom_syndication::Feed::read_from(zh.as_bytes()).unwrap();
    assert_eq!(zh_feed.lang(), Some("zh"));
    assert_ne!(zh_feed.id(), feed.id());
    assert_eq!(zh_feed.title().as_str(), "合作院校通讯：往期摘要 · 中文");
    let entry = &zh_feed.entries()[0];
    assert_eq!(
        entry.id(),
        feed.entries()[0].id(),
        "the digest keeps its id"
    );
    assert_eq!(
        entry.title().as_str(),
        "合作院校通讯：2023年11月6日 – 2023年11月12日"
    );
    assert!(
        entry.links()[0]
            .href()
            .ends_with("/zh/digests/partners/2023-W45")
    );
    let content = entry.content().and_then(|c| c.value()).unwrap();
    for expected in [
        "<h2>即将举行</h2>",
        "2023 UNEVOC网络协作倡议项目：最后一场研讨会暨闭幕式",
        "/zh/items/",
    ] {
        assert!(content.contains(expected), "{expected:?} in {content}");
    }
    assert!(!content.contains("Coming up"), "{content}");
    // The /zh/ archive page links it; its address under /zh/ is sent there; a language
    // the site is not read in is a 404 naming it, one spelt otherwise is sent to it.
    let page = app.get("/zh/digests/partners").send().await.unwrap();
    let page = page.text().await.unwrap();
    assert!(
        page.contains("/digests/partners.atom?lang&#x3D;zh"),
        "{page}"
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (path, status, to) in [
        (
            "/zh/digests/partners.atom",
            308,
            Some("/digests/partners.atom?lang=zh"),
        ),
        (
            "/digests/partners.atom?lang=ZH",
            308,
            Some("/digests/partners.atom?lang=zh"),
        ),
        ("/digests/partners.atom?lang=fr", 404, None),
        ("/digests/nope.atom?lang=zh", 404, None),
    ] {
        let r = no_redirects.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        assert_eq!(
            r.headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            to,
            "{path}"
        );
        if status == 404 && path.contains("fr") {
            let said = r.text().await.unwrap();
            assert!(
                said.contains("lang=") && said.contains("fr") && said.contains("en, zh"),
                "{said}"
            );
        }
    }
    assert_eq!(
        app.get("/digests/partners/2023-W30")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    app.admin(Method::POST, "/api/v1/lists")
        .json(&json!({"slug": "staff", "name": "Staff", "visibility": "private"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        app.get("/digests/staff").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn two_workers_sharing_the_database_send_each_message_once() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let url = smtp.url();
        let Some(app) = spawn_app_with(db, move |s| {
            s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
            s.run_workers = false;
            s.delivery.batch_size = 3;
        })
        .await
        else {
            continue;
        };
        app.load_demo().await;
        // 60 more confirmed members.
        let csv: String = std::iter::once("email,name\n".to_owned())
            .chain((0..60).map(|n| format!("member{n}@example.org,Member {n}\n")))
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
        let (_, created) = send_now(&app, "2023-W45").await;
        let settings = app.state.settings.delivery.clone();
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let outbox =
                    newsdesk::delivery::Outbox::new(app.state.app().clone(), settings.clone());
                tokio::spawn(async move {
                    loop {
                        if outbox.run_once().await.unwrap().claimed == 0 {
                            break;
                        }
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
        let done = settled(&app, created["id"].as_i64().unwrap()).await;
        assert_eq!(done["counts"]["sent"], MEMBERS + 60, "{db:?}: {done}");
        let messages = smtp.messages();
        let per = by_recipient(&messages);
        assert_eq!(per.len(), MEMBERS + 60, "{db:?}");
        assert!(
            per.values().all(|m| m.len() == 1),
            "{db:?}: somebody got it twice"
        );
    }
}

/// The admin digest page's archive entry (`<dd id="digest-archive">...</dd>`).
async fn admin_archive_entry(b: &crate::admin_pages::Browser<'_>, id: i64) -> String {
    let (status, html) = b.page(&format!("/admin/digests/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let start = html
        .find("<dd id=\"digest-archive\">")
        .unwrap_or_else(|| panic!("no archive entry: {html}"));
    let entry = &html[start..];
    entry[..entry.find("</dd>").unwrap()].to_owned()
}

#[tokio::test]
async fn a_private_lists_digest_links_to_no_archive_in_mail_or_on_the_admin_page() {
    for db in [Db::Sqlite, Db::Postgres] {
        let smtp = SmtpServer::start(Behaviour::accept_all()).await;
        let url = smtp.url();
        let Some(app) = spawn_app_with(db, move |s| {
            s.mail.smtp_url = Some(newsdesk::config::Secret::new(url));
        })
        .await
        else {
            continue;
        };
        app.load_demo().await;
        crate::admin_pages::add_user(&app, "ad", newsdesk::domain::Role::Admin).await;
        let b = crate::admin_pages::sign_in(&app, "ad").await;

        // While public: a sent digest's admin page links its public page, a skipped
        // one's says why it has none.
        let (_, sent) = send_now(&app, "2023-W44").await;
        let sent_id = sent["id"].as_i64().unwrap();
        settled(&app, sent_id).await;
        let entry = admin_archive_entry(&b, sent_id).await;
        let issue = format!("{}/digests/partners/2023-W44", app.address);
        assert!(
            entry.contains(&format!("<a href=\"{issue}\">Public page</a>")),
            "{db:?}: {entry}"
        );
        assert_eq!(
            app.get("/digests/partners/2023-W44")
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::OK
        );
        let (_, skipped) = send_now(&app, "2023-W30").await;
        assert_eq!(skipped["status"], "skipped");
        let entry = admin_archive_entry(&b, skipped["id"].as_i64().unwrap()).await;
        assert!(!entry.contains("<a "), "{db:?}: {entry}");
        assert!(
            entry.contains("only digests that were sent"),
            "{db:?}: {entry}"
        );
        let before = smtp.messages().len();

        // The list made private, through the API (the rest of it as it was).
        let list: Value = app
            .admin(Method::GET, "/api/v1/lists/partners")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let mut request = json!({});
        for key in [
            "slug",
            "name",
            "names",
            "description",
            "categories",
            "opt_in",
            "schedule_cron",
            "schedule_timezone",
            "min_items",
            "grace_minutes",
            "schedule_delivery",
        ] {
            request[key] = list[key].clone();
        }
        request["visibility"] = json!("private");
        let r = app
            .admin(Method::PUT, "/api/v1/lists/partners")
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            StatusCode::OK,
            "{db:?}: {}",
            r.text().await.unwrap()
        );
        assert_eq!(
            app.get("/zh/digests/partners")
                .send()
                .await
                .unwrap()
                .status(),
            StatusCode::NOT_FOUND,
            "a private list has no public archive"
        );

        // Its digest: no archive link in either part, in English or Chinese.
        let (status, created) = send_now(&app, "2023-W45").await;
        assert_eq!(status, StatusCode::CREATED, "{db:?}: {created}");
        let id = created["id"].as_i64().unwrap();
        let done = settled(&app, id).await;
        assert_eq!(done["counts"]["sent"], MEMBERS, "{db:?}: {done}");
        let received = smtp
            .wait_for(before + MEMBERS, Duration::from_secs(10))
            .await;
        let mut languages = Vec::new();
        for message in &received[before..] {
            let mail = parse(&message.raw);
            let chinese = message.rcpt_to[0].ends_with("@zjtie-cn.example.edu");
            languages.push(chinese);
            let (text, html) = (mail.text.clone().unwrap(), mail.html.clone().unwrap());
            for part in [&text, &html] {
                assert!(
                    part.contains(if chinese {
                        "/zh/unsubscribe/"
                    } else {
                        "/en/unsubscribe/"
                    }),
                    "{db:?}: the mail's links are there: {part}"
                );
                for absent in ["/digests/partners", "Past digests", "往期摘要"] {
                    assert!(!part.contains(absent), "{db:?}: {absent:?} in {part}");
                }
            }
        }
        assert!(
            languages.contains(&true) && languages.contains(&false),
            "both languages read"
        );

        // The admin page says there is no public page, and links none.
        let entry = admin_archive_entry(&b, id).await;
        assert!(!entry.contains("<a "), "{db:?}: {entry}");
        assert!(entry.contains("the list is private"), "{db:?}: {entry}");
        let entry = admin_archive_entry(&b, sent_id).await;
        assert!(
            entry.contains("the list is private"),
            "{db:?}: the earlier one too: {entry}"
        );
    }
}
