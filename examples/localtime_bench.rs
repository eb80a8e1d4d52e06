//! Reader-local delivery at scale: READERS readers (default 100,000) spread over 40 time
//! zones, on a list delivered "Mondays 08:00 in each reader's zone", with the real
//! server, its real workers, a real database and a real SMTP sink on loopback, and a test
//! clock stepping through the week. Run by `bench/localtime.sh`.
//!
//! The clock is a [`ShiftedClock`]: real time plus an offset, which the database's
//! clock follows (the store adds the same offset to `now()` in SQL), so every time that
//! is compared (due times, leases) is still compared on the database's clock. Between
//! two readers' 08:00s nothing is due, and the clock jumps to two seconds before the
//! next one; around each, time runs at its real pace, so the lateness measured is the
//! real one: the worker's poll, the claim, rendering and the SMTP exchange.
//!
//! 1. **Lateness.** The week's digest is built when the schedule fires (Monday 08:00 at
//!    UTC+14); then for each distinct due instant the clock jumps to just before it and
//!    the run waits until the sink has every message due by then. Each message's
//!    lateness is its arrival at the sink (on the test clock) minus its reader's 08:00,
//!    computed here independently from the zone names. Reports p50 / p99 / max, the
//!    number later than 60 s, and any that came early.
//! 2. **Claim.** With the workers off, claims of 200 rows (as a worker makes them) are
//!    timed on the same database: of the reader-local week (the outbox holding 100,000
//!    rows due across the week, the clock at each instant in turn), and of the same
//!    readers on a list-zone list, every row due at once (how every digest was sent
//!    before). Reports p50 / p99 / mean per claim for both.
//!
//! ```sh
//! cargo run --release --example localtime_bench -- sqlite:///tmp/lt.db [READERS]
//! cargo run --release --example localtime_bench -- postgres://postgres@127.0.0.1/lt [READERS]
//! ```
//!
//! The database must be new (empty). Loopback only.

use anyhow::{Context, bail};
use chrono::{DateTime, TimeZone as _, Utc};
use chrono_tz::Tz;
use newsdesk::clock::{Clock, SharedClock, ShiftedClock};
use newsdesk::config::Settings;
use newsdesk::delivery::schedule::{TickOutcome, on_schedule};
use newsdesk::domain::{
    CronExpr, DeliveryZone, DigestTrigger, Email, IsoWeek, JoinedVia, Language, ListDraft,
    MembershipStatus, OptIn, PartnerDraft, Schedule, Slug, SubscriberStatus, Text, TimeZone,
    Visibility,
};
use newsdesk::http::AppState;
use newsdesk::startup::Application;
use newsdesk::store::{ImportRow, ImportTerms, Store};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Forty zones from UTC+14 to UTC−11, with half- and quarter-hour offsets and zones on
/// summer time in November 2023 (the southern hemisphere).
const ZONES: [&str; 40] = [
    "Pacific/Kiritimati",
    "Pacific/Tongatapu",
    "Pacific/Auckland",
    "Pacific/Chatham",
    "Pacific/Fiji",
    "Pacific/Noumea",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Australia/Brisbane",
    "Australia/Adelaide",
    "Australia/Darwin",
    "Asia/Tokyo",
    "Australia/Eucla",
    "Asia/Shanghai",
    "Asia/Singapore",
    "Asia/Bangkok",
    "Asia/Yangon",
    "Asia/Dhaka",
    "Asia/Kathmandu",
    "Asia/Kolkata",
    "Asia/Karachi",
    "Asia/Kabul",
    "Asia/Dubai",
    "Asia/Tehran",
    "Europe/Moscow",
    "Africa/Nairobi",
    "Africa/Cairo",
    "Europe/Paris",
    "Europe/London",
    "Atlantic/Azores",
    "Atlantic/South_Georgia",
    "America/Sao_Paulo",
    "America/St_Johns",
    "America/Halifax",
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Pacific/Pago_Pago",
];

/// A worker's claim.
const BATCH: u32 = 200;

/// `LOCALTIME_LAYOUT=blocks`: each zone's readers one after another (as when each
/// institution's contacts are imported together); by default the zones are interleaved
/// (reader N in zone N mod 40), the worst case for where a zone's rows lie.
fn blocks() -> bool {
    std::env::var("LOCALTIME_LAYOUT").is_ok_and(|v| v == "blocks")
}

/// The zone (index in [`ZONES`]) of reader `n` of `readers`.
fn zone_of(n: usize, readers: usize) -> usize {
    if blocks() {
        n * ZONES.len() / readers.max(1)
    } else {
        n % ZONES.len()
    }
}

/// What the sink saw: each recipient and when its message's data ended, on the test
/// clock.
type Arrivals = Arc<Mutex<Vec<(String, DateTime<Utc>)>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(database_url) = args.first().cloned() else {
        bail!("usage: localtime_bench DATABASE_URL [READERS]");
    };
    let readers: usize = match args.get(1) {
        Some(n) => n.parse().context("READERS must be a number")?,
        None => 100_000,
    };
    let week = IsoWeek::parse("2023-W45").map_err(anyhow::Error::msg)?;
    let local = week.monday().and_hms_opt(8, 0, 0).context("Monday 08:00")?;

    let arrivals: Arrivals = Arc::default();
    let clock = ShiftedClock::starting_at(Utc.with_ymd_and_hms(2023, 11, 1, 0, 0, 0).unwrap());
    let smtp_port = sink(arrivals.clone(), clock.clone()).await?;
    let dir = tempfile::tempdir()?;

    // ---- the server, its workers, the readers ----------------------------------------
    let (app, stop) = start(&database_url, smtp_port, dir.path(), &clock, true).await?;
    let store = app.store.clone();
    let started = Instant::now();
    newsdesk::demo::load(&store, clock.now()).await?;
    let list = seed(&store, &database_url, &clock, readers).await?;
    eprintln!(
        "seeded {readers} readers in {} zones in {:.1} s",
        ZONES.len(),
        started.elapsed().as_secs_f64()
    );
    // Each reader's 08:00, from the zone names alone.
    let due_of_zone: Vec<DateTime<Utc>> = ZONES
        .iter()
        .map(|z| {
            let tz: Tz = z.parse().expect("a known zone");
            tz.from_local_datetime(&local)
                .single()
                .expect("08:00 exists once in every zone this week")
                .with_timezone(&Utc)
        })
        .collect();
    let due_of = |email: &str| -> DateTime<Utc> {
        let n: usize = email
            .trim_start_matches("reader")
            .split('@')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("a reader's address");
        due_of_zone[zone_of(n, readers)]
    };
    let build_at = local_first(local);

    // ---- 1. lateness -----------------------------------------------------------------
    clock.jump_to(build_at - chrono::Duration::seconds(1));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let building = Instant::now();
    let outcome = on_schedule(app.app(), list.id).await?;
    let build_secs = building.elapsed().as_secs_f64();
    let Some(TickOutcome::Built { digest_id, period }) = outcome else {
        bail!("the schedule built nothing: {outcome:?}");
    };
    eprintln!("built {period} (digest {digest_id}) in {build_secs:.1} s, at {build_at}");
    let mut instants: Vec<DateTime<Utc>> = due_of_zone.clone();
    instants.sort();
    instants.dedup();
    let mut due_by: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
    for n in 0..readers {
        *due_by.entry(due_of_zone[zone_of(n, readers)]).or_default() += 1;
    }
    let mut expected = 0;
    let sending = Instant::now();
    for at in &instants {
        expected += due_by[at];
        if clock.now() < *at - chrono::Duration::seconds(2) {
            clock.jump_to(*at - chrono::Duration::seconds(2));
        }
        let waited = Instant::now();
        loop {
            let got = arrivals.lock().unwrap().len();
            if got >= expected {
                break;
            }
            if waited.elapsed() > Duration::from_secs(180) {
                bail!("at {at}: {got} of {expected} messages after 180 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // The rest of the week: nothing more.
    clock.jump_to(Utc.with_ymd_and_hms(2023, 11, 9, 0, 0, 0).unwrap());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let sending_secs = sending.elapsed().as_secs_f64();
    let got = arrivals.lock().unwrap().clone();
    let mut lateness: Vec<f64> = got
        .iter()
        .map(|(to, at)| (*at - due_of(to)).num_milliseconds() as f64 / 1000.0)
        .collect();
    let mut per_zone_max: BTreeMap<&str, f64> = BTreeMap::new();
    for (to, at) in &got {
        let n: usize = to
            .trim_start_matches("reader")
            .split('@')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let late = (*at - due_of(to)).num_milliseconds() as f64 / 1000.0;
        let e = per_zone_max
            .entry(ZONES[zone_of(n, readers)])
            .or_insert(f64::MIN);
        *e = e.max(late);
    }
    lateness.sort_by(f64::total_cmp);
    let distinct: std::collections::HashSet<&String> = got.iter().map(|(to, _)| to).collect();
    let early = lateness.iter().filter(|l| **l < 0.0).count();
    let over_60 = lateness.iter().filter(|l| **l > 60.0).count();
    let status = app_digest_status(&store, digest_id).await?;
    stop.send(()).ok();
    // Let the first server stop (its workers give back what they hold).
    tokio::time::sleep(Duration::from_secs(2)).await;

    // ---- 2. the claim ----------------------------------------------------------------
    let (app2, stop2) = start(&database_url, smtp_port, dir.path(), &clock, false).await?;
    let store = app2.store.clone();
    // The reader-local week after: its rows due across the week, the clock at each
    // instant in turn; claims as a worker makes them (leased long, so a row claimed
    // stays out of the way of the next instant's).
    let next_build = build_at + chrono::Duration::days(7);
    clock.jump_to(next_build);
    let Some(TickOutcome::Built { .. }) = on_schedule(app2.app(), list.id).await? else {
        bail!("the second week was not built");
    };
    let mut local_claims = Vec::new();
    // The first claim after each jump of the clock, apart: the shift is part of its SQL,
    // so that claim prepares its statements anew (production has no shift).
    let mut first_claims = Vec::new();
    let mut conn = store.outbox().connection();
    let mut n = 0;
    for at in &instants {
        clock.jump_to(*at + chrono::Duration::days(7) + chrono::Duration::seconds(1));
        let mut first = true;
        loop {
            let t = Instant::now();
            let got = conn
                .claim_deliveries(&format!("bench:{n}"), clock.now(), 30 * 86_400, BATCH)
                .await?;
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if first {
                first_claims.push(ms);
            } else {
                local_claims.push(ms);
            }
            first = false;
            n += 1;
            if got.len() < BATCH as usize {
                break;
            }
        }
    }
    // The same readers on a list-zone list: every row due at once, as before.
    let today = store
        .lists()
        .create(
            &list_draft("bench-today", DeliveryZone::ListZone)?,
            clock.now(),
        )
        .await?;
    copy_members(&database_url, list.id, today.id).await?;
    let week3 = IsoWeek::parse("2023-W46").map_err(anyhow::Error::msg)?;
    newsdesk::services::digests::build(
        &store,
        &today,
        week3,
        DigestTrigger::Manual,
        None,
        clock.now(),
    )
    .await?;
    let mut zone_claims = Vec::new();
    loop {
        let t = Instant::now();
        let got = conn
            .claim_deliveries(&format!("bench:{n}"), clock.now(), 30 * 86_400, BATCH)
            .await?;
        zone_claims.push(t.elapsed().as_secs_f64() * 1000.0);
        n += 1;
        if got.len() < BATCH as usize {
            break;
        }
    }
    conn.release();
    stop2.send(()).ok();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // ---- the report ------------------------------------------------------------------
    let q = |v: &[f64], p: f64| -> f64 {
        if v.is_empty() {
            return f64::NAN;
        }
        v[(((v.len() - 1) as f64) * p).round() as usize]
    };
    let summary = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let mean = v.iter().sum::<f64>() / v.len().max(1) as f64;
        (v.len(), q(&v, 0.5), q(&v, 0.99), mean)
    };
    let backend = if database_url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "=== reader-local delivery, {backend}: {readers} readers in {} zones ({}), {} distinct send times",
        ZONES.len(),
        if blocks() {
            "each zone's readers together"
        } else {
            "zones interleaved"
        },
        instants.len()
    );
    println!(
        "build: {build_secs:.1} s (digest {digest_id}, {period}, status after the week: {status})"
    );
    println!(
        "delivered: {} messages to {} readers (expected {readers}), stepping took {sending_secs:.0} s",
        got.len(),
        distinct.len()
    );
    println!(
        "lateness vs each reader's 08:00: p50 {:.2} s, p99 {:.2} s, max {:.2} s; later than 60 s: {over_60}; early: {early}",
        q(&lateness, 0.5),
        q(&lateness, 0.99),
        q(&lateness, 1.0)
    );
    let worst: Vec<String> = {
        let mut z: Vec<(&&str, &f64)> = per_zone_max.iter().collect();
        z.sort_by(|a, b| b.1.total_cmp(a.1));
        z.iter()
            .take(3)
            .map(|(zone, late)| format!("{zone} {late:.1} s"))
            .collect()
    };
    println!("latest zones (max): {}", worst.join(", "));
    let (fn_, f50, f99, fmean) = summary(first_claims);
    let (ln, l50, l99, lmean) = summary(local_claims);
    let (zn, z50, z99, zmean) = summary(zone_claims);
    println!(
        "claim of {BATCH}, reader-local outbox (rows due across the week), but the first after each clock jump: {ln} claims, p50 {l50:.2} ms, p99 {l99:.2} ms, mean {lmean:.2} ms"
    );
    println!(
        "  the first claim after each jump of the test clock: {fn_} claims, p50 {f50:.2} ms, p99 {f99:.2} ms, mean {fmean:.2} ms"
    );
    println!(
        "claim of {BATCH}, list-zone outbox (every row due at once, as before): {zn} claims, p50 {z50:.2} ms, p99 {z99:.2} ms, mean {zmean:.2} ms"
    );
    let ok = got.len() == readers && distinct.len() == readers && over_60 == 0 && early == 0;
    println!("{}", if ok { "RESULT: ok" } else { "RESULT: FAILED" });
    if !ok {
        std::process::exit(1);
    }
    Ok(())
}

/// The moment the schedule's local time first comes: at UTC+14.
fn local_first(local: chrono::NaiveDateTime) -> DateTime<Utc> {
    chrono_tz::Etc::GMTMinus14
        .from_local_datetime(&local)
        .single()
        .expect("UTC+14 has no clock changes")
        .with_timezone(&Utc)
}

/// Starts the real server on the database, mailing the sink; `workers` off for the
/// claim timings. Returns its handle and what stops it.
async fn start(
    database_url: &str,
    smtp_port: u16,
    dir: &std::path::Path,
    clock: &ShiftedClock,
    workers: bool,
) -> anyhow::Result<(AppState, tokio::sync::oneshot::Sender<()>)> {
    let vars = [
        ("DATABASE_URL", database_url.to_owned()),
        ("NEWSDESK_BIND", "127.0.0.1:0".to_owned()),
        ("NEWSDESK_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        (
            "NEWSDESK_OUTBOX_DIR",
            dir.join("outbox").display().to_string(),
        ),
        (
            "NEWSDESK_MAIL_FROM",
            "SZPU News <news@szpu.example.edu>".to_owned(),
        ),
        ("NEWSDESK_BASE_URL", "https://news.example.edu".to_owned()),
        (
            "NEWSDESK_WORKERS",
            if workers { "on" } else { "off" }.to_owned(),
        ),
    ];
    let settings: Settings = Settings::from_lookup(|k| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(k).ok().filter(|_| k.starts_with("NEWSDESK_")))
    })?;
    let shared: SharedClock = Arc::new(clock.clone());
    let app = Application::build(settings, shared).await?;
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Err(e) = app
            .run_until(async {
                let _ = stopped.await;
            })
            .await
        {
            eprintln!("the server stopped: {e:#}");
        }
    });
    Ok((state, stop))
}

fn list_draft(slug: &str, delivery: DeliveryZone) -> anyhow::Result<ListDraft> {
    let err = anyhow::Error::msg;
    Ok(ListDraft {
        slug: Slug::parse(slug).map_err(err)?,
        name: Text::parse("Benchmark digest", 200, true, false).map_err(err)?,
        names: Default::default(),
        description: Text::parse("", 2000, false, true).map_err(err)?,
        categories: vec![Slug::parse("news-events").map_err(err)?],
        opt_in: OptIn::Single,
        visibility: Visibility::Private,
        schedule: Schedule {
            cron: CronExpr::parse(CronExpr::DEFAULT).map_err(err)?,
            timezone: TimeZone::parse("UTC").map_err(err)?,
            min_items: 1,
            grace_minutes: 60,
            delivery,
        },
    })
}

/// A partner per zone, and `readers` confirmed readers: reader N in zone
/// [`zone_of`]`(N)`, nine in ten through their institution's zone, one in ten (N a
/// multiple of 10) by a zone of their own and no institution. Returns the reader-local
/// list they are on.
async fn seed(
    store: &Store,
    database_url: &str,
    clock: &ShiftedClock,
    readers: usize,
) -> anyhow::Result<newsdesk::domain::MailingList> {
    let err = anyhow::Error::msg;
    let now = clock.now();
    let list = store
        .lists()
        .create(&list_draft("bench", DeliveryZone::ReaderZone)?, now)
        .await?;
    let mut partners = Vec::new();
    for (n, zone) in ZONES.iter().enumerate() {
        let p = store
            .people()
            .create_partner(
                &PartnerDraft {
                    names: Default::default(),
                    name: Text::parse(&format!("Partner {n} ({zone})"), 200, true, false)
                        .map_err(err)?,
                    country: Text::parse("", 100, false, false).map_err(err)?,
                    website: None,
                    timezone: TimeZone::parse(zone).map_err(err)?,
                    language: Language::parse("en").map_err(err)?,
                },
                now,
            )
            .await?;
        partners.push(p.id);
    }
    let terms = ImportTerms {
        list_id: Some(list.id),
        member_status: MembershipStatus::Confirmed,
        subscriber_status: SubscriberStatus::Confirmed,
        consent_source: Some("benchmark".into()),
        via: JoinedVia::Import,
    };
    let mut session = store.import().begin(terms, now).await?;
    let rows: Vec<ImportRow> = (0..readers)
        .map(|n| ImportRow {
            line: n as u64 + 2,
            email: Email::parse(&format!("reader{n}@staff{}.example.edu", n % 97))
                .expect("a valid address"),
            name: format!("Reader {n}"),
            partner_id: (n % 10 != 0).then(|| partners[zone_of(n, readers)]),
            language: "en".into(),
            attributes: "{}".into(),
        })
        .collect();
    for chunk in rows.chunks(5_000) {
        session.apply(chunk).await?;
    }
    session.commit().await?;
    // The demo's own list sends nothing (its members leave it): the sink hears only
    // the benchmark's readers.
    let mut conn = connect(database_url).await?;
    sqlx::query(
        "UPDATE memberships SET status = 'unsubscribed'
         WHERE list_id = (SELECT id FROM lists WHERE slug = 'partners')",
    )
    .execute(&mut conn)
    .await?;
    // One in ten: a zone of their own.
    let first = first_reader_id(&mut conn).await?;
    let in_zone = if blocks() {
        "(id - $2) * $3 / $5 = $4"
    } else {
        "(id - $2) % $3 = $4 AND $5 > 0"
    };
    for (z, zone) in ZONES.iter().enumerate() {
        sqlx::query(&format!(
            "UPDATE subscribers SET timezone = $1
             WHERE partner_id IS NULL AND email LIKE 'reader%' AND {in_zone}"
        ))
        .bind(*zone)
        .bind(first)
        .bind(ZONES.len() as i64)
        .bind(z as i64)
        .bind(readers as i64)
        .execute(&mut conn)
        .await?;
    }
    Ok(list)
}

/// The id of reader0 (readers were created in order, so reader N is that plus N).
async fn first_reader_id(conn: &mut sqlx::AnyConnection) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT id FROM subscribers WHERE email = 'reader0@staff0.example.edu'")
            .fetch_one(conn)
            .await?,
    )
}

async fn connect(url: &str) -> anyhow::Result<sqlx::AnyConnection> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    Ok(sqlx::AnyConnection::connect(url).await?)
}

/// Puts every member of one list on another, confirmed.
async fn copy_members(url: &str, from: i64, to: i64) -> anyhow::Result<()> {
    let mut conn = connect(url).await?;
    sqlx::query(
        "INSERT INTO memberships (list_id, subscriber_id, status, created_at, updated_at, confirmed_at)
         SELECT $2, subscriber_id, status, created_at, updated_at, confirmed_at FROM memberships
         WHERE list_id = $1",
    )
    .bind(from)
    .bind(to)
    .execute(&mut conn)
    .await?;
    Ok(())
}

async fn app_digest_status(store: &Store, id: i64) -> anyhow::Result<String> {
    let d = store.digests().by_id(id).await?.context("the digest")?;
    let c = store.digests().delivery_counts(id).await?;
    Ok(format!(
        "{} ({} sent, {} missed, {} pending)",
        d.status.as_str(),
        c.sent,
        c.missed,
        c.pending + c.sending
    ))
}

/// An SMTP sink on loopback that takes every message and notes, for each recipient,
/// when its data ended on the test clock. Returns its port.
async fn sink(arrivals: Arrivals, clock: ShiftedClock) -> anyhow::Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (arrivals, clock) = (arrivals.clone(), clock.clone());
            tokio::spawn(async move {
                let _ = session(stream, arrivals, clock).await;
            });
        }
    });
    Ok(port)
}

async fn session(
    stream: tokio::net::TcpStream,
    arrivals: Arrivals,
    clock: ShiftedClock,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 sink ESMTP\r\n").await?;
    let mut line = Vec::new();
    let mut rcpt: Vec<String> = Vec::new();
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let upper = String::from_utf8_lossy(&line).to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
                .await?;
        } else if upper.starts_with("RCPT TO:") {
            let text = String::from_utf8_lossy(&line);
            let addr = text[8..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_owned();
            rcpt.push(addr);
            write.write_all(b"250 ok\r\n").await?;
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go on\r\n").await?;
            loop {
                line.clear();
                if lines.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(());
                }
                if line == b".\r\n" {
                    break;
                }
            }
            let at = clock.now();
            // Only the benchmark's readers (`readerN@...`) are counted.
            arrivals.lock().unwrap().extend(
                rcpt.drain(..)
                    .filter(|r| r.starts_with("reader"))
                    .map(|r| (r, at)),
            );
            write.write_all(b"250 queued\r\n").await?;
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper.starts_with("RSET") || upper.starts_with("MAIL FROM") {
            rcpt.clear();
            write.write_all(b"250 ok\r\n").await?;
        } else {
            write.write_all(b"250 ok\r\n").await?;
        }
    }
}
