//! `newsdesk digest preview|send`.

use super::{DigestCommand, PreviewFormat};
use crate::app::App;
use crate::delivery::Outbox;
use crate::domain::{
    DeliveryCounts, Digest, DigestTrigger, Email, IsoWeek, Language, LocalWait, MailingList,
};
use crate::services::digests::{self, DryRun};
use crate::services::{ServiceError, lists, retention};
use crate::store::Created;
use std::sync::Arc;
use std::time::Duration;

pub(super) async fn digest(app: &App, command: DigestCommand) -> anyhow::Result<()> {
    let (list, period) = match &command {
        DigestCommand::Preview { list, period, .. } | DigestCommand::Send { list, period, .. } => {
            (list, period)
        }
        DigestCommand::Prune => return prune(app).await,
    };
    let list = lists::find(app, list).await.map_err(|e| match e {
        ServiceError::NotFound(_) => ServiceError::not_found(format!("list {list:?}")),
        other => other,
    })?;
    let period = IsoWeek::parse(period).map_err(|e| ServiceError::invalid("--period", e))?;
    match command {
        DigestCommand::Preview {
            subscriber,
            language,
            format,
            ..
        } => {
            let language = language
                .as_deref()
                .map(Language::parse)
                .transpose()
                .map_err(|m| ServiceError::invalid("--language", m))?;
            preview(
                app,
                &list,
                period,
                subscriber.as_deref(),
                language.as_ref(),
                format,
            )
            .await
        }
        DigestCommand::Send { dry_run: true, .. } => {
            print_dry_run(
                &digests::dry_run(app, &list, period)
                    .await
                    .map_err(failure)?,
            );
            Ok(())
        }
        DigestCommand::Send { .. } => send(app, &list, period).await,
        DigestCommand::Prune => prune(app).await,
    }
}

/// Applies the retention now (as the service does every hour).
async fn prune(app: &App) -> anyhow::Result<()> {
    let Some(days) = app.settings.delivery_retention_days else {
        println!(
            "NEWSDESK_DELIVERY_RETENTION_DAYS is 0: deliveries are kept for ever; nothing pruned"
        );
        return Ok(());
    };
    match retention::prune(app, days).await.map_err(failure)? {
        None => println!("another instance is pruning right now; nothing done"),
        Some(p) => println!(
            "pruned the deliveries of {} digest(s) finished more than {days} days ago: \
             {} delivery rows, {} sent-item rows (their totals are kept)",
            p.digests, p.deliveries, p.delivered_items
        ),
    }
    Ok(())
}

/// A service's refusal, kept as such so that `main` reports it with its exit code.
fn failure(e: ServiceError) -> anyhow::Error {
    anyhow::Error::new(e)
}

async fn preview(
    app: &App,
    list: &MailingList,
    period: IsoWeek,
    subscriber: Option<&str>,
    language: Option<&Language>,
    format: PreviewFormat,
) -> anyhow::Result<()> {
    let reader = match subscriber {
        None => None,
        Some(e) => Some(Email::parse(e).map_err(|m| ServiceError::invalid("--subscriber", m))?),
    };
    let rendered = digests::preview_in(app, list, period, reader.as_ref(), language)
        .await
        .map_err(|e| match (e, &reader) {
            (ServiceError::NotFound(_), Some(email)) => {
                ServiceError::not_found(format!("subscriber {email}"))
            }
            (other, _) => other,
        })?;
    match rendered {
        None => println!("Nothing new for this reader in {period}."),
        Some(r) => match format {
            PreviewFormat::Html => println!("{}", r.html),
            PreviewFormat::Text => println!("Subject: {}\n\n{}", r.subject, r.text),
        },
    }
    Ok(())
}

fn print_dry_run(plan: &DryRun) {
    println!(
        "{} {}: {} item(s){}",
        plan.list,
        plan.period,
        plan.items,
        if plan.skipped {
            " (would be skipped: fewer than the list's minimum)"
        } else {
            ""
        }
    );
    for t in &plan.coming_up {
        println!("  coming up: {t}");
    }
    for t in &plan.news {
        println!("  news: {t}");
    }
    let getting = plan.recipients.iter().filter(|r| r.items > 0).count();
    for r in &plan.recipients {
        println!("  {} <- {} item(s)", r.email, r.items);
    }
    println!(
        "{getting} of {} confirmed member(s) would get a message; nothing was sent or stored",
        plan.recipients.len()
    );
}

/// Builds the digest (or finds the one built before, and finishes its build if that
/// stopped) and delivers it here, with a progress bar, then reports how its deliveries
/// ended. SIGINT or SIGTERM stops it cleanly: see [`Interrupted`].
async fn send(app: &App, list: &MailingList, period: IsoWeek) -> anyhow::Result<()> {
    let now = app.clock.now();
    let signals = Signals::listen();
    let build = digests::build(&app.store, list, period, DigestTrigger::Manual, None, now);
    let created = tokio::select! {
        built = build => built.map_err(failure)?,
        signal = signals.next() => {
            eprintln!(
                "newsdesk: stopped by {signal} while the digest was built; nothing was sent. \
                 Run the same command again: the build resumes where it stopped."
            );
            return Err(Interrupted { signal, left: None }.into());
        }
    };
    let digest = match created {
        Created::New(d) => d,
        Created::Existing(d) => {
            eprintln!(
                "{} {}: a digest exists already ({:?}); finishing its deliveries",
                list.slug, d.period, d.status
            );
            d
        }
    };
    if !digest.note.is_empty() {
        eprintln!("{}", digest.note);
    }
    if let Some(signal) = deliver(app, &digest, &signals).await? {
        let c = digests::counts(app, digest.id).await.map_err(failure)?;
        let left = c.pending + c.sending;
        eprintln!(
            "newsdesk: stopped by {signal}: {} sent in all, {left} deliveries left (none held: \
             another run or the service can take them at once). Run `newsdesk digest send \
             --list {} --period {}` again to finish.",
            c.sent, list.slug, digest.period
        );
        return Err(Interrupted {
            signal,
            left: Some(left),
        }
        .into());
    }
    let finished = digests::detail(app, digest.id, 100)
        .await
        .map_err(failure)?;
    let c = finished.counts;
    println!(
        "{} {}: {} sent, {} failed, {} skipped (nothing new), {} missed (past the reader's time and the grace period), {} cancelled",
        list.slug, digest.period, c.sent, c.failed, c.skipped, c.missed, c.cancelled
    );
    for f in finished.failed {
        eprintln!(
            "  failed: {} after {} attempt(s): {}",
            f.email, f.attempts, f.error
        );
    }
    Ok(())
}

/// `digest send` stopped by a signal. It exits with 130 after SIGINT and 143 after
/// SIGTERM (128 + the signal's number, as a shell reports a process the signal
/// killed), having finished or given back every delivery it held.
#[derive(Debug, thiserror::Error)]
#[error("stopped by {signal}")]
pub struct Interrupted {
    pub signal: &'static str,
    /// Deliveries of the digest still to go (`None`: stopped while building).
    pub left: Option<u64>,
}

impl Interrupted {
    pub fn exit_code(&self) -> u8 {
        if self.signal == "SIGTERM" { 143 } else { 130 }
    }
}

/// SIGINT and SIGTERM, listened to from the start of a send. The first one stops the
/// send cleanly; a second one exits at once (the rows held then wait for their lease).
#[derive(Clone)]
struct Signals {
    got: tokio::sync::watch::Receiver<Option<&'static str>>,
}

impl Signals {
    fn listen() -> Self {
        let (tx, got) = tokio::sync::watch::channel(None);
        tokio::spawn(async move {
            let mut count = 0;
            loop {
                let signal = next_signal().await;
                count += 1;
                if count > 1 {
                    eprintln!("newsdesk: {signal} again: exiting now");
                    std::process::exit(if signal == "SIGTERM" { 143 } else { 130 });
                }
                let _ = tx.send(Some(signal));
            }
        });
        Self { got }
    }

    /// The signal received, if any.
    fn received(&self) -> Option<&'static str> {
        *self.got.borrow()
    }

    /// Waits for the first signal.
    async fn next(&self) -> &'static str {
        let mut got = self.got.clone();
        let signal = got
            .wait_for(Option::is_some)
            .await
            .map(|signal| signal.unwrap_or("SIGINT"));
        match signal {
            Ok(signal) => signal,
            Err(_) => std::future::pending().await,
        }
    }
}

async fn next_signal() -> &'static str {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(mut int), Ok(mut term)) => tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
            },
            _ => std::future::pending().await,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// Why a round of sending ended early.
#[derive(Clone, Copy)]
enum Halt {
    Signal(&'static str),
    /// The SMTP server does not answer: wait and look again.
    ServerDown,
}

/// Runs the outbox until the digest has nothing pending, the bar following it. With
/// the SMTP server unreachable it says so once and waits for it (claiming nothing
/// meanwhile) instead of trying every reader in turn. While nothing is due but
/// deliveries wait for their readers' local time, it says how many and when the next
/// is due (once, and again when that changes). On a signal it stops claiming,
/// lets the messages in hand finish, gives back the rest (due again at once) and
/// returns the signal.
async fn deliver(
    app: &App,
    digest: &Digest,
    signals: &Signals,
) -> anyhow::Result<Option<&'static str>> {
    let counts = digests::counts(app, digest.id).await.map_err(failure)?;
    let bar = progress_bar(&counts);
    let server = app
        .settings
        .mail
        .smtp_url
        .as_ref()
        .and_then(|url| crate::config::SmtpEndpoint::parse(url.expose()).ok());
    let settings = &app.settings.delivery;
    // What this run finished, over every round.
    let mut finished_before = 0;
    // The wait for readers' local time last said (how many, the next due time).
    let mut wait_said: Option<(u64, chrono::DateTime<chrono::Utc>)> = None;
    loop {
        let outbox = Arc::new(Outbox::new(app.clone(), settings.clone()));
        let (halt_tx, mut halt) = tokio::sync::watch::channel::<Option<Halt>>(None);
        // The bar follows the outbox; the same task notices a server that is down: as
        // many temporary failures in a row as messages go at once, and no connection.
        let watcher = {
            let (bar, outbox, server) = (bar.clone(), outbox.clone(), server.clone());
            let halt_tx = halt_tx.clone();
            let in_a_row = settings.concurrency.max(1) as u64;
            tokio::spawn(async move {
                let (mut finished, mut retried) = (0, 0);
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    bar.set_position(finished_before + outbox.finished());
                    if outbox.finished() > finished {
                        (finished, retried) = (outbox.finished(), outbox.retried());
                    } else if outbox.retried() >= retried + in_a_row {
                        retried = outbox.retried();
                        if let Some(server) = &server
                            && unreachable(server).await.is_some()
                        {
                            outbox.stop();
                            let _ = halt_tx.send(Some(Halt::ServerDown));
                            return;
                        }
                    }
                }
            })
        };
        let signal_watch = {
            let (signals, outbox, bar) = (signals.clone(), outbox.clone(), bar.clone());
            tokio::spawn(async move {
                let signal = signals.next().await;
                bar.suspend(|| {
                    eprintln!(
                        "newsdesk: {signal}: stopping; the messages in hand finish, the rest go \
                         back to the outbox (Ctrl-C again to exit at once)"
                    )
                });
                outbox.stop();
                let _ = halt_tx.send(Some(Halt::Signal(signal)));
            })
        };
        let result = run_round(app, digest, &outbox, &mut halt).await;
        watcher.abort();
        signal_watch.abort();
        finished_before += outbox.finished();
        bar.set_position(finished_before);
        let halted = *halt.borrow();
        match (result?, halted) {
            (_, Some(Halt::Signal(signal))) => {
                bar.abandon();
                return Ok(Some(signal));
            }
            (_, Some(Halt::ServerDown)) => {
                let Some(server) = &server else { continue };
                // Looked at again after the back-off of a failed message, doubled while
                // the server stays away; nothing is claimed meanwhile.
                let base = settings.retry_base.max(Duration::from_secs(1));
                let mut tries = 0u32;
                while let Some(error) = unreachable(server).await {
                    let wait = base
                        .saturating_mul(2u32.saturating_pow(tries.min(16)))
                        .min(settings.retry_max.max(base));
                    tries += 1;
                    let at = app.clock.now() + chrono::Duration::from_std(wait)?;
                    if tries == 1 {
                        let line = format!(
                            "newsdesk: the SMTP server {}:{} is unreachable ({error}); next try \
                             at {} (in {} s). Ctrl-C is safe: nothing is lost, and running this \
                             command again finishes the digest.",
                            server.host,
                            server.port,
                            at.format("%H:%M:%S UTC"),
                            wait.as_secs()
                        );
                        // Printed even when the bar is hidden (not a terminal).
                        bar.suspend(|| eprintln!("{line}"));
                    }
                    bar.set_message(format!(
                        "waiting: SMTP server unreachable, next try at {}",
                        at.format("%H:%M:%S")
                    ));
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        signal = signals.next() => {
                            bar.abandon();
                            return Ok(Some(signal));
                        }
                    }
                }
                bar.set_message("");
            }
            (Round::Done, None) => break,
            (Round::Waiting, None) => {
                // Rows waiting for their reader's local time, for a retry, or held by
                // another worker's lease.
                let wait = digests::waiting_for_local_time(app, digest.id)
                    .await
                    .map_err(failure)?;
                let said = wait.map(|w| (w.count, w.next_due));
                if said != wait_said {
                    wait_said = said;
                    match wait {
                        Some(w) => {
                            let line = local_wait_line(&w);
                            // Printed even when the bar is hidden (not a terminal).
                            bar.suspend(|| eprintln!("newsdesk: {line}"));
                            bar.set_message(format!(
                                "waiting: next due at {}",
                                w.next_due.format("%Y-%m-%d %H:%M UTC")
                            ));
                        }
                        None => bar.set_message(""),
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(settings.poll) => {}
                    signal = signals.next() => {
                        bar.abandon();
                        return Ok(Some(signal));
                    }
                }
            }
        }
        if let Some(signal) = signals.received() {
            bar.abandon();
            return Ok(Some(signal));
        }
    }
    digests::complete_finished(app).await.map_err(failure)?;
    bar.finish_and_clear();
    Ok(None)
}

enum Round {
    /// Nothing of the digest is left.
    Done,
    /// Deliveries wait for a retry or another worker's lease.
    Waiting,
}

/// Passes of the outbox until nothing is due, or a halt.
async fn run_round(
    app: &App,
    digest: &Digest,
    outbox: &Outbox,
    halt: &mut tokio::sync::watch::Receiver<Option<Halt>>,
) -> anyhow::Result<Round> {
    loop {
        // A halt stops the outbox, which ends the pass after the messages in hand and
        // gives back the rest.
        let outcome = outbox.run_until_idle().await?;
        if halt.borrow().is_some() {
            return Ok(Round::Waiting);
        }
        if outcome.claimed == 0 {
            // Counted only when nothing was due: counting a large digest after
            // every batch would cost more than the batch.
            let counts = digests::counts(app, digest.id).await.map_err(failure)?;
            if counts.pending + counts.sending == 0 {
                return Ok(Round::Done);
            }
            return Ok(Round::Waiting);
        }
    }
}

/// What `digest send` says while deliveries wait for their readers' local time: "3
/// deliveries wait for their readers' local time; the next is due at
/// 2026-12-01T12:00:00Z (in 5 h 30 min)". The time to go is rounded up to the minute
/// (under one, in seconds).
fn local_wait_line(wait: &LocalWait) -> String {
    let secs = (wait.next_due - wait.now).num_seconds().max(0);
    let to_go = if secs < 60 {
        format!("{secs} s")
    } else {
        let minutes = (secs + 59) / 60;
        match (minutes / 60, minutes % 60) {
            (0, m) => format!("{m} min"),
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        }
    };
    let (noun, verb) = if wait.count == 1 {
        ("delivery", "waits")
    } else {
        ("deliveries", "wait")
    };
    format!(
        "{} {noun} {verb} for their readers' local time; the next is due at {} (in {to_go})",
        wait.count,
        wait.next_due.format("%Y-%m-%dT%H:%M:%SZ"),
    )
}

/// Why the SMTP server cannot be reached (a TCP connection within 5 s), or `None`.
async fn unreachable(server: &crate::config::SmtpEndpoint) -> Option<String> {
    let address = (server.host.as_str(), server.port);
    match tokio::time::timeout(
        Duration::from_secs(5),
        tokio::net::TcpStream::connect(address),
    )
    .await
    {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("no answer within 5 s".into()),
    }
}

/// A bar over what this run has to send: a resumed send counts only its own messages
/// (the ones finished before are named in the prefix), at a whole-number rate.
fn progress_bar(counts: &DeliveryCounts) -> indicatif::ProgressBar {
    let left = counts.pending + counts.sending;
    let before = counts.sent + counts.failed + counts.skipped + counts.missed + counts.cancelled;
    let bar = indicatif::ProgressBar::new(left);
    let style = indicatif::ProgressStyle::with_template(
        "{prefix}{bar:40} {human_pos}/{human_len} messages {rate} eta {eta} {msg}",
    )
    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
    .with_key(
        "rate",
        |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(
                w,
                "{}/s",
                indicatif::HumanCount(state.per_sec().max(0.0).round() as u64)
            );
        },
    );
    bar.set_style(style);
    if before > 0 {
        bar.set_prefix(format!("({} done before) ", indicatif::HumanCount(before)));
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_local_wait_line_says_how_many_and_when_the_next_is_due() {
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 6, 30, 0).unwrap();
        let wait = |count, secs| LocalWait {
            count,
            next_due: now + chrono::Duration::seconds(secs),
            now,
        };
        assert_eq!(
            local_wait_line(&wait(3, 5 * 3600 + 30 * 60)),
            "3 deliveries wait for their readers' local time; the next is due at \
             2026-12-01T12:00:00Z (in 5 h 30 min)"
        );
        let to_go = |secs| {
            let line = local_wait_line(&wait(1, secs));
            line[line.find("(in ").unwrap() + 4..line.len() - 1].to_owned()
        };
        assert!(local_wait_line(&wait(1, 60)).starts_with("1 delivery waits for"));
        assert_eq!(to_go(5 * 3600 + 30 * 60 - 1), "5 h 30 min", "rounded up");
        assert_eq!(to_go(3600), "1 h");
        assert_eq!(to_go(61), "2 min");
        assert_eq!(to_go(59), "59 s");
        assert_eq!(to_go(-5), "0 s", "due by now");
        assert_eq!(to_go(26 * 3600 + 60), "26 h 1 min");
    }
}
