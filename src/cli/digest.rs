//! `newsdesk digest preview|send`.

use super::{DigestCommand, PreviewFormat, find_list};
use std::sync::Arc;

pub(super) async fn digest(state: &crate::app::App, command: DigestCommand) -> anyhow::Result<()> {
    use crate::domain::DigestTrigger;
    use crate::domain::{Email, IsoWeek};
    use crate::store::Created;
    let (list, period) = match &command {
        DigestCommand::Preview { list, period, .. } | DigestCommand::Send { list, period, .. } => {
            (list, period)
        }
    };
    let list = find_list(&state.store, Some(list))
        .await?
        .expect("a list was named");
    let period = IsoWeek::parse(period).map_err(|e| anyhow::anyhow!("--period {e}"))?;
    match command {
        DigestCommand::Preview {
            subscriber, format, ..
        } => {
            let subscriber = match subscriber {
                None => None,
                Some(e) => {
                    let email =
                        Email::parse(&e).map_err(|m| anyhow::anyhow!("--subscriber {m}"))?;
                    Some(
                        state
                            .store
                            .people()
                            .subscriber_by_email(&email.key())
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("there is no subscriber {email}"))?,
                    )
                }
            };
            match crate::digest::preview(state, &list, period, subscriber.as_ref()).await? {
                None => println!("Nothing new for this reader in {period}."),
                Some(r) => match format {
                    PreviewFormat::Html => println!("{}", r.html),
                    PreviewFormat::Text => println!("Subject: {}\n\n{}", r.subject, r.text),
                },
            }
            Ok(())
        }
        DigestCommand::Send { dry_run: true, .. } => {
            let plan = crate::digest::dry_run(state, &list, period).await?;
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
            Ok(())
        }
        DigestCommand::Send { .. } => {
            let now = state.clock.now();
            let digest = match crate::digest::build(
                &state.store,
                &list,
                period,
                DigestTrigger::Manual,
                None,
                now,
            )
            .await?
            {
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
            let outbox = Arc::new(crate::digest::outbox::Outbox::new(
                state.clone(),
                state.settings.delivery.clone(),
            ));
            let counts = state.store.digests().delivery_counts(digest.id).await?;
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
            let done_before = counts.sent + counts.failed + counts.skipped + counts.cancelled;
            bar.set_position(done_before);
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
                    let counts = state.store.digests().delivery_counts(digest.id).await?;
                    if counts.pending + counts.sending == 0 {
                        break;
                    }
                    // Rows waiting for a retry, or held by another worker's lease.
                    tokio::time::sleep(state.settings.delivery.poll).await;
                }
            }
            ticker.abort();
            state.store.digests().complete(state.clock.now()).await?;
            bar.finish_and_clear();
            let c = state.store.digests().delivery_counts(digest.id).await?;
            println!(
                "{} {}: {} sent, {} failed, {} skipped (nothing new), {} cancelled",
                list.slug, digest.period, c.sent, c.failed, c.skipped, c.cancelled
            );
            for f in state
                .store
                .digests()
                .failed_deliveries(digest.id, 100)
                .await?
            {
                eprintln!(
                    "  failed: {} after {} attempt(s): {}",
                    f.email, f.attempts, f.error
                );
            }
            Ok(())
        }
    }
}
