//! The delivery worker. It claims due rows of the outbox in batches (leased, so a
//! crashed worker's rows come back), renders each subscriber's digest, sends it over
//! the pooled SMTP connection at a bounded pace, and records the result at once.
//!
//! At the moment of a crash the guarantee is at least once: a message the SMTP server
//! accepted in the instant before its row was marked sent goes again when the lease
//! runs out. That window is short: the mark is queued as soon as the server replies and
//! committed with the marks that are ready at the same moment (a group commit after
//! one yield, never waiting for more). Every other moment loses nothing and repeats
//! nothing.

use super::render::{DigestContext, GroupRenderer, PersonalLinks};
use crate::domain::IsoWeek;
use crate::http::AppState;
use crate::mail::{MailError, OutgoingMail};
use crate::store::{ClaimedDelivery, MailingList, Selection, SentRecord, TokenPurpose};
use crate::subscriptions::{list_id_header, new_token, token_hash};
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

/// How the outbox is worked.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Messages sent at once.
    pub concurrency: usize,
    /// Messages per second at most; 0 for no limit.
    pub rate_per_second: f64,
    /// Rows claimed at a time.
    pub batch_size: u32,
    /// How long claimed rows stay this worker's without renewal.
    pub lease: Duration,
    /// Tries before a temporary failure counts as failed.
    pub max_attempts: u32,
    /// First wait after a temporary failure; doubled each time, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Permanent failures in a row that mark a subscriber bounced.
    pub bounce_after: u32,
    /// How often an idle worker looks for due rows.
    pub poll: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            rate_per_second: 0.0,
            batch_size: 200,
            lease: Duration::from_secs(60),
            max_attempts: 8,
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            bounce_after: 2,
            poll: Duration::from_secs(1),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    pub claimed: usize,
    pub sent: usize,
    pub skipped: usize,
    pub retried: usize,
    pub failed: usize,
    pub bounced: usize,
}

/// Spaces sends out to a rate.
struct Pace {
    interval: Option<Duration>,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    fn new(rate_per_second: f64) -> Self {
        Self {
            interval: (rate_per_second > 0.0)
                .then(|| Duration::from_secs_f64(1.0 / rate_per_second)),
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

/// Everything the same for every delivery of a digest, loaded once.
struct Bundle {
    list: MailingList,
    period: IsoWeek,
    selection: Selection,
}

enum Done {
    /// Accepted by the server; its mark is with the recorder, which answers here once
    /// it is in the database. The send slot is free meanwhile: the next message need not
    /// wait for this one's commit, and the recorder gets bigger groups.
    Sent(tokio::sync::oneshot::Receiver<Result<(), String>>),
    Skipped,
    Retried,
    Failed {
        bounced: bool,
    },
}

/// A sent message on its way to the database, and who waits for it to be there.
struct Mark {
    record: SentRecord,
    done: tokio::sync::oneshot::Sender<Result<(), String>>,
}

/// Records sent messages as soon as their answers come in, together when several come
/// in at once: one transaction for many rows, without waiting for more.
fn start_recorder(
    store: crate::store::Store,
    clock: crate::clock::SharedClock,
    worker: String,
) -> tokio::sync::mpsc::Sender<Mark> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Mark>(1024);
    tokio::spawn(async move {
        let mut group = Vec::with_capacity(256);
        while let Some(first) = rx.recv().await {
            group.push(first);
            // Answers often come in together: the tasks they woke run first and queue
            // their marks, which then share this transaction. No timer, no waiting for
            // the network: only what is ready already.
            tokio::task::yield_now().await;
            while group.len() < 256 {
                match rx.try_recv() {
                    Ok(m) => group.push(m),
                    Err(_) => break,
                }
            }
            let records: Vec<SentRecord> = group.iter().map(|m| m.record.clone()).collect();
            let result = store
                .mark_deliveries_sent(&records, &worker, clock.now())
                .await
                .map_err(|e| format!("{e:#}"));
            for m in group.drain(..) {
                let _ = m.done.send(result.clone());
            }
        }
    });
    tx
}

pub struct Outbox {
    state: AppState,
    recorder: tokio::sync::mpsc::Sender<Mark>,
    settings: DeliverySettings,
    worker: String,
    pace: Pace,
    bundles: Mutex<HashMap<i64, Arc<Bundle>>>,
    stopping: AtomicBool,
}

impl Outbox {
    pub fn new(state: AppState, settings: DeliverySettings) -> Self {
        let worker = format!("worker-{}", uuid::Uuid::new_v4().simple());
        Self {
            recorder: start_recorder(state.store.clone(), state.clock.clone(), worker.clone()),
            pace: Pace::new(settings.rate_per_second),
            worker,
            state,
            settings,
            bundles: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        }
    }

    /// Stops before the next message; rows not sent yet go back to the outbox.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    async fn bundle(&self, digest_id: i64) -> anyhow::Result<Arc<Bundle>> {
        let mut bundles = self.bundles.lock().await;
        if let Some(b) = bundles.get(&digest_id) {
            return Ok(b.clone());
        }
        let store = &self.state.store;
        let digest = store
            .digest_by_id(digest_id)
            .await?
            .context("a claimed delivery's digest")?;
        let list = store
            .list_by_id(digest.list_id)
            .await?
            .context("a digest's list")?;
        let period = IsoWeek::parse(&digest.period).map_err(anyhow::Error::msg)?;
        let selection = store.digest_items(digest_id).await?;
        // Old digests' bundles are not needed once their rows are done.
        if bundles.len() > 16 {
            bundles.clear();
        }
        let bundle = Arc::new(Bundle {
            list,
            period,
            selection,
        });
        bundles.insert(digest_id, bundle.clone());
        Ok(bundle)
    }

    /// Claims one batch and works it off. `claimed == 0` means nothing was due.
    pub async fn run_once(&self) -> anyhow::Result<RunOutcome> {
        let store = &self.state.store;
        let clock = &self.state.clock;
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or(chrono::Duration::seconds(60));
        let now = clock.now();
        let claimed = store
            .claim_deliveries(&self.worker, now, now + lease, self.settings.batch_size)
            .await?;
        let mut outcome = RunOutcome {
            claimed: claimed.len(),
            ..Default::default()
        };
        if claimed.is_empty() {
            store.complete_digests(now).await?;
            return Ok(outcome);
        }
        // Keeps the batch's rows ours while we work through it.
        let heartbeat = {
            let store = store.clone();
            let clock = clock.clone();
            let worker = self.worker.clone();
            let every = self.settings.lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = store.renew_leases(&worker, clock.now() + lease).await {
                        tracing::warn!(error = format!("{e:#}"), "could not renew delivery leases");
                    }
                }
            })
        };
        let result = self.work(claimed, &mut outcome).await;
        heartbeat.abort();
        if self.stopping.load(Ordering::SeqCst) {
            store.release_claims(&self.worker).await?;
        }
        // A full batch means more rows are likely due: the pass that finds fewer (or
        // none) completes the digests, one statement per pass saved meanwhile.
        if outcome.claimed < self.settings.batch_size as usize {
            store.complete_digests(clock.now()).await?;
        }
        result.map(|()| outcome)
    }

    async fn work(
        &self,
        claimed: Vec<ClaimedDelivery>,
        outcome: &mut RunOutcome,
    ) -> anyhow::Result<()> {
        let store = &self.state.store;
        let now = self.state.clock.now();
        let mut bundles = HashMap::new();
        for d in &claimed {
            if let std::collections::hash_map::Entry::Vacant(slot) = bundles.entry(d.digest_id) {
                slot.insert(self.bundle(d.digest_id).await?);
            }
        }
        let subscriber_ids: Vec<i64> = claimed.iter().map(|d| d.subscriber.id).collect();
        let mut item_ids: Vec<i64> = bundles
            .values()
            .flat_map(|b| {
                b.selection
                    .coming_up
                    .iter()
                    .chain(&b.selection.news)
                    .map(|i| i.id)
            })
            .collect();
        item_ids.sort_unstable();
        item_ids.dedup();
        let sent_before = store
            .delivered_items(&subscriber_ids, &item_ids, None)
            .await?;
        // Two links per message, minted for the whole batch in one statement.
        let base = &self.state.settings.base_url;
        let mut tokens = Vec::with_capacity(claimed.len() * 2);
        let mut links = HashMap::with_capacity(claimed.len());
        for d in &claimed {
            let list_id = bundles[&d.digest_id].list.id;
            let (unsubscribe, preferences) = (new_token(), new_token());
            tokens.push((
                token_hash(&unsubscribe),
                d.subscriber.id,
                TokenPurpose::Unsubscribe,
                Some(list_id),
            ));
            tokens.push((
                token_hash(&preferences),
                d.subscriber.id,
                TokenPurpose::Preferences,
                None,
            ));
            links.insert(
                d.id,
                PersonalLinks {
                    unsubscribe_url: format!("{base}/unsubscribe/{unsubscribe}"),
                    preferences_url: format!("{base}/preferences/{preferences}"),
                },
            );
        }
        store.store_tokens(&tokens, now).await?;
        let renderer = GroupRenderer::new();
        let renderer = &renderer;
        let results: Vec<anyhow::Result<Option<Done>>> = futures_util::stream::iter(claimed)
            .map(|d| {
                let bundle = bundles[&d.digest_id].clone();
                let sent: HashMap<i64, DateTime<Utc>> = sent_before
                    .iter()
                    .filter(|((s, _), _)| *s == d.subscriber.id)
                    .map(|((_, item), at)| (*item, *at))
                    .collect();
                let link = links.remove(&d.id);
                async move {
                    let link = link.context("links for every claimed delivery")?;
                    self.deliver(d, &bundle, &sent, &link, renderer).await
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for r in results {
            match r {
                Ok(Some(Done::Sent(recorded))) => match recorded.await {
                    Ok(Ok(())) => outcome.sent += 1,
                    Ok(Err(error)) => {
                        tracing::error!(error, "a delivery could not be recorded")
                    }
                    Err(_) => tracing::error!(
                        "a delivery could not be recorded: the delivery recorder stopped"
                    ),
                },
                Ok(Some(Done::Skipped)) => outcome.skipped += 1,
                Ok(Some(Done::Retried)) => outcome.retried += 1,
                Ok(Some(Done::Failed { bounced })) => {
                    outcome.failed += 1;
                    outcome.bounced += usize::from(bounced);
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::error!(error = format!("{e:#}"), "a delivery could not be recorded")
                }
            }
        }
        Ok(())
    }

    async fn deliver(
        &self,
        d: ClaimedDelivery,
        bundle: &Bundle,
        sent_before: &HashMap<i64, DateTime<Utc>>,
        links: &PersonalLinks,
        renderer: &GroupRenderer,
    ) -> anyhow::Result<Option<Done>> {
        if self.stopping.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let state = &self.state;
        let store = &state.store;
        let ctx = DigestContext {
            list: &bundle.list,
            period: bundle.period,
            selection: &bundle.selection,
            site_name: &state.settings.site_name,
            base_url: &state.settings.base_url,
        };
        let rendered =
            match renderer.render_for(&state.templates, &ctx, &d.subscriber, sent_before, links) {
                Ok(Some(r)) => r,
                Ok(None) => {
                    store
                        .mark_delivery_skipped(d.id, &self.worker, state.clock.now())
                        .await?;
                    return Ok(Some(Done::Skipped));
                }
                Err(e) => {
                    // Our fault, not the recipient's: failed (an admin can retry once the
                    // template is fixed), not counted as a bounce.
                    let error = format!("the digest could not be rendered: {e:#}");
                    tracing::error!(delivery = d.id, error, "delivery failed");
                    store
                        .mark_delivery_failed(
                            d.id,
                            &self.worker,
                            d.subscriber.id,
                            &error,
                            false,
                            self.settings.bounce_after,
                            state.clock.now(),
                        )
                        .await?;
                    return Ok(Some(Done::Failed { bounced: false }));
                }
            };
        let mail = OutgoingMail {
            to_email: d.subscriber.email.clone(),
            to_name: d.subscriber.name.clone(),
            subject: rendered.subject,
            text: rendered.text,
            html: rendered.html,
            list_unsubscribe: Some(links.unsubscribe_url.clone()),
            list_id: Some(list_id_header(&bundle.list.slug, &state.settings.base_url)),
        };
        self.pace.wait().await;
        let result = state.mailer.send(&mail).await;
        let now = state.clock.now();
        match result {
            Ok(sent) => {
                let (done, recorded) = tokio::sync::oneshot::channel();
                let record = SentRecord {
                    delivery_id: d.id,
                    subscriber_id: d.subscriber.id,
                    digest_id: d.digest_id,
                    message_id: sent.message_id,
                    items: rendered.items,
                };
                self.recorder
                    .send(Mark { record, done })
                    .await
                    .map_err(|_| anyhow::anyhow!("the delivery recorder stopped"))?;
                Ok(Some(Done::Sent(recorded)))
            }
            Err(MailError::Temporary(error)) if d.attempts < self.settings.max_attempts => {
                let wait = self.backoff(d.attempts);
                tracing::info!(
                    delivery = d.id,
                    attempts = d.attempts,
                    error,
                    "temporary failure; will retry"
                );
                store
                    .mark_delivery_retry(d.id, &self.worker, &error, now + wait, now)
                    .await?;
                Ok(Some(Done::Retried))
            }
            Err(e) => {
                let permanent = !e.is_temporary();
                let error = if permanent {
                    e.message().to_owned()
                } else {
                    format!("gave up after {} attempts: {}", d.attempts, e.message())
                };
                tracing::warn!(delivery = d.id, error, "delivery failed");
                let bounced = store
                    .mark_delivery_failed(
                        d.id,
                        &self.worker,
                        d.subscriber.id,
                        &error,
                        permanent,
                        self.settings.bounce_after,
                        now,
                    )
                    .await?;
                Ok(Some(Done::Failed { bounced }))
            }
        }
    }

    fn backoff(&self, attempts: u32) -> chrono::Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        let wait = self
            .settings
            .retry_base
            .saturating_mul(factor)
            .min(self.settings.retry_max);
        chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::hours(1))
    }

    /// Works the outbox until `stop` is set: a batch at a time, waiting for a wake-up
    /// (a digest was built) or the poll interval when nothing is due.
    pub async fn run(
        self: Arc<Self>,
        wake: Arc<tokio::sync::Notify>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) {
        let mut stop = stop;
        loop {
            if *stop.borrow() {
                self.stop();
                break;
            }
            let idle = match self.run_once().await {
                Ok(o) => o.claimed == 0,
                Err(e) => {
                    tracing::error!(
                        error = format!("{e:#}"),
                        "the delivery worker failed a pass"
                    );
                    true
                }
            };
            if idle {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(self.settings.poll) => {}
                    _ = stop.changed() => {}
                }
            }
        }
        if let Err(e) = self.state.store.release_claims(&self.worker).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not release claimed deliveries"
            );
        }
    }
}
