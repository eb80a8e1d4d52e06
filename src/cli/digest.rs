//! `newsdesk digest preview|send`.

use super::{DigestCommand, PreviewFormat};
use crate::app::App;
use crate::delivery::Outbox;
use crate::domain::{DeliveryCounts, Digest, DigestTrigger, Email, IsoWeek, MailingList};
use crate::services::digests::{self, DryRun};
use crate::services::{ServiceError, lists};
use crate::store::Created;
use std::sync::Arc;

pub(super) async fn digest(app: &App, command: DigestCommand) -> anyhow::Result<()> {
    let (list, period) = match &command {
        DigestCommand::Preview { list, period, .. } | DigestCommand::Send { list, period, .. } => {
            (list, period)
        }
    };
    let list = lists::find(app, list).await.map_err(|e| match e {
        ServiceError::NotFound(_) => ServiceError::not_found(format!("list {list:?}")),
        other => other,
    })?;
    let period = IsoWeek::parse(period).map_err(|e| ServiceError::invalid("--period", e))?;
    match command {
        DigestCommand::Preview {
            subscriber, format, ..
        } => preview(app, &list, period, subscriber.as_deref(), format).await,
        DigestCommand::Send { dry_run: true, .. } => {
            print_dry_run(
                &digests::dry_run(app, &list, period)
                    .await
                    .map_err(failure)?,
            );
            Ok(())
        }
        DigestCommand::Send { .. } => send(app, &list, period).await,
    }
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
    format: PreviewFormat,
) -> anyhow::Result<()> {
    let reader = match subscriber {
        None => None,
        Some(e) => Some(Email::parse(e).map_err(|m| ServiceError::invalid("--subscriber", m))?),
    };
    let rendered = digests::preview_for(app, list, period, reader.as_ref())
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

/// Builds the digest (or finds the one built before) and delivers it here, with a
/// progress bar, then reports how its deliveries ended.
async fn send(app: &App, list: &MailingList, period: IsoWeek) -> anyhow::Result<()> {
    let now = app.clock.now();
    let created = digests::build(&app.store, list, period, DigestTrigger::Manual, None, now)
        .await
        .map_err(failure)?;
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
    deliver(app, &digest).await?;
    let finished = digests::detail(app, digest.id, 100)
        .await
        .map_err(failure)?;
    let c = finished.counts;
    println!(
        "{} {}: {} sent, {} failed, {} skipped (nothing new), {} cancelled",
        list.slug, digest.period, c.sent, c.failed, c.skipped, c.cancelled
    );
    for f in finished.failed {
        eprintln!(
            "  failed: {} after {} attempt(s): {}",
            f.email, f.attempts, f.error
        );
    }
    Ok(())
}

/// Runs the outbox until the digest has nothing pending, the bar following it.
async fn deliver(app: &App, digest: &Digest) -> anyhow::Result<()> {
    let outbox = Arc::new(Outbox::new(app.clone(), app.settings.delivery.clone()));
    let counts = digests::counts(app, digest.id).await.map_err(failure)?;
    let done_before = counts.sent + counts.failed + counts.skipped + counts.cancelled;
    let bar = progress_bar(&counts, done_before);
    // The outbox works batch after batch without a pause; the bar follows it.
    let ticker = {
        let (bar, outbox) = (bar.clone(), outbox.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                bar.set_position(done_before + outbox.finished());
            }
        })
    };
    loop {
        let outcome = outbox.run_until_idle().await?;
        if outcome.claimed == 0 {
            // Counted only when nothing was due: counting a large digest after
            // every batch would cost more than the batch.
            let counts = digests::counts(app, digest.id).await.map_err(failure)?;
            if counts.pending + counts.sending == 0 {
                break;
            }
            // Rows waiting for a retry, or held by another worker's lease.
            tokio::time::sleep(app.settings.delivery.poll).await;
        }
    }
    ticker.abort();
    digests::complete_finished(app).await.map_err(failure)?;
    bar.finish_and_clear();
    Ok(())
}

fn progress_bar(counts: &DeliveryCounts, done_before: u64) -> indicatif::ProgressBar {
    let total = counts.pending
        + counts.sending
        + counts.sent
        + counts.failed
        + counts.skipped
        + counts.cancelled;
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} messages {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(done_before);
    bar
}
