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
use crate::app::App;
use crate::config::DeliverySettings;
use crate::domain::IsoWeek;
use crate::mail::{MailError, OutgoingMail};
use crate::store::{ClaimedDelivery, MailingList, OutboxConnection, Selection, SentRecord};
use crate::subscriptions::{delivery_link_token, list_id_header};
use anyhow::Context;
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Mutex;

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
    list_id: String,
    /// Group renderings of this digest: the templates run once per group of readers.
    renderer: GroupRenderer,
}

/// A claimed delivery, rendered and built: ready to go (or known not to go).
struct Prepared {
    delivery_id: i64,
    digest_id: i64,
    subscriber_id: i64,
    attempts: u32,
    work: Work,
}

enum Work {
    /// The message, and what it carries (to record once sent): its items and the
    /// hash of its links' token.
    Send {
        mail: crate::mail::BuiltMail,
        items: Vec<(i64, DateTime<Utc>)>,
        link_hash: String,
    },
    /// Everything was sent to this reader before.
    Skip,
    /// The templates failed: our fault, not the recipient's.
    RenderFailed(String),
    /// The message cannot be built (a bad address, say): as a permanent refusal.
    Refused(MailError),
}

enum Done {
    /// Accepted by the server; its mark is with the recorder, which commits it at once.
    /// The send slot is free meanwhile: the next message need not wait for this one's
    /// commit, and the recorder gets bigger groups.
    Sent,
    Skipped,
    Retried,
    Failed {
        bounced: bool,
    },
}

enum ToRecorder {
    /// A sent message on its way to the database.
    Mark(SentRecord),
    /// Answers once every mark queued before it is committed (or failed): how many were
    /// recorded, and how many could not be, since the previous flush.
    Flush(tokio::sync::oneshot::Sender<(usize, usize)>),
}

/// Records sent messages as soon as their answers come in, together when several come
/// in at once: one transaction for many rows, without waiting for more.
fn start_recorder(
    db: Arc<Mutex<OutboxConnection>>,
    clock: crate::clock::SharedClock,
    worker: String,
) -> tokio::sync::mpsc::Sender<ToRecorder> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<ToRecorder>(4096);
    tokio::spawn(async move {
        let mut group: Vec<SentRecord> = Vec::with_capacity(MARK_GROUP);
        let mut flushes = Vec::new();
        let (mut recorded, mut lost) = (0, 0);
        let mut last_commit: Option<tokio::time::Instant> = None;
        while let Some(first) = rx.recv().await {
            // Answers often come in together: the tasks they woke run first and queue
            // their marks, which then share this transaction. Under load, commits are at least MARK_SPACING apart: a mark waits that long
            // at most, and the group grows with what came in meanwhile (a commit writes
            // its pages whatever their number of rows: small groups cost the database
            // many writes). After a quiet spell the first mark is committed at once.
            if let Some(last) = last_commit {
                tokio::time::sleep_until(last + MARK_SPACING).await;
            }
            tokio::task::yield_now().await;
            let mut next = Some(first);
            while let Some(message) = next.take() {
                match message {
                    ToRecorder::Mark(record) => group.push(record),
                    ToRecorder::Flush(answer) => flushes.push(answer),
                }
                if group.len() < MARK_GROUP {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                let result = {
                    db.lock()
                        .await
                        .mark_deliveries_sent(&group, &worker, clock.now())
                        .await
                };
                last_commit = Some(tokio::time::Instant::now());
                match result {
                    Ok(()) => recorded += group.len(),
                    Err(e) => {
                        // Their rows stay claimed: they go again when the lease runs out.
                        lost += group.len();
                        tracing::error!(
                            error = format!("{e:#}"),
                            deliveries = group.len(),
                            "sent deliveries could not be recorded"
                        );
                    }
                }
                group.clear();
            }
            for answer in flushes.drain(..) {
                let _ = answer.send((recorded, lost));
                (recorded, lost) = (0, 0);
            }
        }
    });
    tx
}

/// Marks committed together at most.
const MARK_GROUP: usize = 256;
/// Least time between two commits of marks.
const MARK_SPACING: Duration = Duration::from_millis(2);

pub struct Outbox {
    state: App,
    recorder: tokio::sync::mpsc::Sender<ToRecorder>,
    /// This worker's claims, tokens and marks, on a connection of its own. Its other
    /// writes to the outbox take turns here too, rather than in SQLite's busy handler,
    /// which sleeps.
    db: Arc<Mutex<OutboxConnection>>,
    settings: DeliverySettings,
    worker: String,
    pace: Pace,
    bundles: Mutex<HashMap<i64, Arc<Bundle>>>,
    stopping: AtomicBool,
    /// Messages finished (sent, failed or skipped), for progress reports.
    finished: AtomicU64,
}

impl Outbox {
    pub fn new(state: App, settings: DeliverySettings) -> Self {
        // Written into every row the worker claims: short, and random enough that two
        // workers never share one.
        let worker = format!("w{:016x}", rand::random::<u64>());
        let db = Arc::new(Mutex::new(OutboxConnection::new(state.store.clone())));
        Self {
            recorder: start_recorder(db.clone(), state.clock.clone(), worker.clone()),
            db,
            pace: Pace::new(settings.rate_per_second),
            worker,
            state,
            settings,
            bundles: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            finished: AtomicU64::new(0),
        }
    }

    /// Stops before the next message; rows not sent yet go back to the outbox.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }

    /// Messages this outbox has finished (sent, failed or skipped) so far.
    pub fn finished(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
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
            list_id: list_id_header(&list.slug, &self.state.settings.base_url),
            list,
            period,
            selection,
            renderer: GroupRenderer::new(),
        });
        bundles.insert(digest_id, bundle.clone());
        Ok(bundle)
    }

    /// Claims one batch and works it off. `claimed == 0` means nothing was due.
    pub async fn run_once(&self) -> anyhow::Result<RunOutcome> {
        self.pass(1).await
    }

    /// Works the outbox until nothing is due (or `stop`): batch after batch, the next
    /// claimed and prepared while the current one is being sent, so the connections
    /// never wait for the database. `claimed == 0` means nothing was due.
    pub async fn run_until_idle(&self) -> anyhow::Result<RunOutcome> {
        self.pass(usize::MAX).await
    }

    /// Up to `batches` batches, each claimed and prepared while the one before is sent.
    async fn pass(&self, batches: usize) -> anyhow::Result<RunOutcome> {
        let store = &self.state.store;
        let clock = &self.state.clock;
        let lease = chrono::Duration::from_std(self.settings.lease)
            .unwrap_or(chrono::Duration::seconds(60));
        let batch_size = self.settings.batch_size as usize;
        // Keeps the rows this worker holds while it works through them.
        let heartbeat = {
            let store = store.clone();
            let clock = clock.clone();
            let worker = self.worker.clone();
            let every = self.settings.lease / 3;
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(every).await;
                    if let Err(e) = store
                        .renew_leases(&worker, clock.now(), clock.now() + lease)
                        .await
                    {
                        tracing::warn!(error = format!("{e:#}"), "could not renew delivery leases");
                    }
                }
            })
        };
        // One prepared batch waits while another is sent.
        let (ready, mut batches_in) = tokio::sync::mpsc::channel::<Vec<Prepared>>(1);
        // Deliveries claimed and not finished. The next batch is claimed once half of the
        // current one is done: early enough that the connections never wait for it, late
        // enough that rows not about to be sent stay pending (and can be cancelled).
        let (unfinished, mut unfinished_now) = tokio::sync::watch::channel(0usize);
        let unfinished = &unfinished;
        let produce = async move {
            let mut claimed_total = 0;
            let mut drained = false;
            let result: anyhow::Result<()> = async {
                for _ in 0..batches {
                    if self.stopping() {
                        return Ok(());
                    }
                    let now = clock.now();
                    let claimed = self
                        .db
                        .lock()
                        .await
                        .claim_deliveries(&self.worker, now, now + lease, batch_size as u32)
                        .await?;
                    claimed_total += claimed.len();
                    // A full batch means more rows are likely due: the claim that finds
                    // fewer (or none) completes the digests.
                    drained = claimed.len() < batch_size;
                    if !claimed.is_empty() {
                        let prepared = self.prepare(claimed).await?;
                        unfinished.send_modify(|n| *n += prepared.len());
                        if ready.send(prepared).await.is_err() {
                            return Ok(());
                        }
                    }
                    if drained {
                        return Ok(());
                    }
                    if unfinished_now
                        .wait_for(|n| *n <= batch_size / 2)
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                }
                Ok(())
            }
            .await;
            drop(ready);
            (claimed_total, drained, result)
        };
        let consume = async {
            let mut outcome = RunOutcome::default();
            let prepared = futures_util::stream::poll_fn(|cx| batches_in.poll_recv(cx))
                .flat_map(futures_util::stream::iter);
            prepared
                .map(|p| self.deliver(p))
                .buffer_unordered(self.settings.concurrency.max(1))
                .for_each(|r| {
                    unfinished.send_modify(|n| *n = n.saturating_sub(1));
                    match r {
                        Ok(Some(Done::Sent)) => {}
                        Ok(Some(Done::Skipped)) => outcome.skipped += 1,
                        Ok(Some(Done::Retried)) => outcome.retried += 1,
                        Ok(Some(Done::Failed { bounced })) => {
                            outcome.failed += 1;
                            outcome.bounced += usize::from(bounced);
                        }
                        Ok(None) => {}
                        Err(e) => tracing::error!(
                            error = format!("{e:#}"),
                            "a delivery could not be recorded"
                        ),
                    }
                    std::future::ready(())
                })
                .await;
            outcome
        };
        let ((claimed, drained, produced), mut outcome) = tokio::join!(produce, consume);
        // Every mark in the database before anything is given back: a row released
        // before its mark is committed would be sent again.
        let flushed = self.flush().await;
        heartbeat.abort();
        self.db.lock().await.release();
        outcome.claimed = claimed;
        if let Ok((recorded, _)) = flushed {
            outcome.sent = recorded;
        }
        if self.stopping() {
            store.release_claims(&self.worker, clock.now()).await?;
        }
        if drained {
            store.complete_digests(clock.now()).await?;
        }
        produced?;
        flushed?;
        Ok(outcome)
    }

    /// Waits until every mark queued so far is committed: (recorded, not recorded).
    async fn flush(&self) -> anyhow::Result<(usize, usize)> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        self.recorder
            .send(ToRecorder::Flush(answer))
            .await
            .map_err(|_| anyhow::anyhow!("the delivery recorder stopped"))?;
        answered
            .await
            .map_err(|_| anyhow::anyhow!("the delivery recorder stopped"))
    }

    /// Readies a claimed batch: the digests, what each reader was sent before, the
    /// personal links of each message (their token's hash is stored with the mark that
    /// records the message as sent), and every message rendered and built. The rendering and building run on a thread of their
    /// own, off the one that talks to the SMTP server and the database.
    async fn prepare(&self, claimed: Vec<ClaimedDelivery>) -> anyhow::Result<Vec<Prepared>> {
        let mut bundles: HashMap<i64, Arc<Bundle>> = HashMap::new();
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
        let mut sent_before: HashMap<i64, HashMap<i64, DateTime<Utc>>> = HashMap::new();
        let delivered = self
            .db
            .lock()
            .await
            .delivered_items(&subscriber_ids, &item_ids)
            .await?;
        for ((subscriber, item), at) in delivered {
            sent_before.entry(subscriber).or_default().insert(item, at);
        }
        // Messages are built with the server's answer to EHLO (8BITMIME) in mind.
        self.state.mailer.connect_ahead().await;
        let state = self.state.clone();
        tokio::task::spawn_blocking(move || build_batch(&state, claimed, &bundles, sent_before))
            .await
            .context("building a batch of messages")
    }

    async fn deliver(&self, p: Prepared) -> anyhow::Result<Option<Done>> {
        if self.stopping() {
            return Ok(None);
        }
        let done = self.deliver_now(p).await;
        if matches!(done, Ok(Some(_))) {
            self.finished.fetch_add(1, Ordering::Relaxed);
        }
        done
    }

    async fn deliver_now(&self, p: Prepared) -> anyhow::Result<Option<Done>> {
        let Prepared {
            delivery_id,
            digest_id,
            subscriber_id,
            attempts,
            work,
        } = p;
        let state = &self.state;
        let store = &state.store;
        let (result, items, link_hash) = match work {
            Work::Send {
                mail,
                items,
                link_hash,
            } => {
                self.pace.wait().await;
                (state.mailer.send_built(&mail).await, items, link_hash)
            }
            Work::Refused(e) => (Err(e), Vec::new(), String::new()),
            Work::Skip => {
                let _writing = self.db.lock().await;
                store
                    .mark_delivery_skipped(delivery_id, &self.worker, state.clock.now())
                    .await?;
                return Ok(Some(Done::Skipped));
            }
            Work::RenderFailed(error) => {
                // Our fault, not the recipient's: failed (an admin can retry once the
                // template is fixed), not counted as a bounce.
                tracing::error!(delivery = delivery_id, error, "delivery failed");
                let _writing = self.db.lock().await;
                store
                    .mark_delivery_failed(
                        delivery_id,
                        &self.worker,
                        subscriber_id,
                        &error,
                        false,
                        self.settings.bounce_after,
                        state.clock.now(),
                    )
                    .await?;
                return Ok(Some(Done::Failed { bounced: false }));
            }
        };
        let now = state.clock.now();
        match result {
            Ok(sent) => {
                let record = SentRecord {
                    delivery_id,
                    subscriber_id,
                    digest_id,
                    message_id: sent.message_id,
                    items,
                    link_hash,
                };
                self.recorder
                    .send(ToRecorder::Mark(record))
                    .await
                    .map_err(|_| anyhow::anyhow!("the delivery recorder stopped"))?;
                Ok(Some(Done::Sent))
            }
            Err(MailError::Temporary(error)) if attempts < self.settings.max_attempts => {
                let wait = self.backoff(attempts);
                tracing::info!(
                    delivery = delivery_id,
                    attempts,
                    error,
                    "temporary failure; will retry"
                );
                let _writing = self.db.lock().await;
                store
                    .mark_delivery_retry(delivery_id, &self.worker, &error, now + wait, now)
                    .await?;
                Ok(Some(Done::Retried))
            }
            Err(e) => {
                let permanent = !e.is_temporary();
                let error = if permanent {
                    e.message().to_owned()
                } else {
                    format!("gave up after {attempts} attempts: {}", e.message())
                };
                tracing::warn!(delivery = delivery_id, error, "delivery failed");
                let _writing = self.db.lock().await;
                let bounced = store
                    .mark_delivery_failed(
                        delivery_id,
                        &self.worker,
                        subscriber_id,
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
            if *stop.borrow() || self.stopping() {
                self.stop();
                break;
            }
            // A pass runs until nothing is due; a stop meanwhile ends it after the
            // messages in hand, and the pass gives back the rest.
            let pass = self.run_until_idle();
            tokio::pin!(pass);
            let result = tokio::select! {
                r = &mut pass => r,
                _ = stop.changed() => {
                    self.stop();
                    pass.await
                }
            };
            let idle = match result {
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
        if let Err(e) = self
            .state
            .store
            .release_claims(&self.worker, self.state.clock.now())
            .await
        {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not release claimed deliveries"
            );
        }
    }
}

/// Personal links, rendering and building for a claimed batch: plain CPU work, done
/// away from the async thread.
fn build_batch(
    state: &App,
    claimed: Vec<ClaimedDelivery>,
    bundles: &HashMap<i64, Arc<Bundle>>,
    mut sent_before: HashMap<i64, HashMap<i64, DateTime<Utc>>>,
) -> Vec<Prepared> {
    let base = &state.settings.base_url;
    let mut prepared = Vec::with_capacity(claimed.len());
    let no_items = HashMap::new();
    for d in claimed {
        let bundle = &bundles[&d.digest_id];
        // One token for both links of the message: the delivery's own.
        let (token, link_hash) = delivery_link_token(d.id);
        let links = PersonalLinks {
            unsubscribe_url: format!("{base}/unsubscribe/{token}"),
            preferences_url: format!("{base}/preferences/{token}"),
        };
        let sent = sent_before.remove(&d.subscriber.id);
        let ctx = DigestContext {
            list: &bundle.list,
            period: bundle.period,
            selection: &bundle.selection,
            site_name: &state.settings.site_name,
            base_url: base,
        };
        let work = match bundle.renderer.render_for(
            &state.templates,
            &ctx,
            &d.subscriber,
            sent.as_ref().unwrap_or(&no_items),
            &links,
        ) {
            Ok(None) => Work::Skip,
            Err(e) => Work::RenderFailed(format!("the digest could not be rendered: {e:#}")),
            Ok(Some(rendered)) => {
                let mail = OutgoingMail {
                    to_email: d.subscriber.email,
                    to_name: d.subscriber.name,
                    subject: rendered.subject,
                    text: rendered.text,
                    html: rendered.html,
                    list_unsubscribe: Some(links.unsubscribe_url),
                    list_id: Some(bundle.list_id.clone()),
                };
                match state.mailer.build_mail(&mail) {
                    Ok(mail) => Work::Send {
                        mail,
                        items: rendered.items,
                        link_hash,
                    },
                    Err(e) => Work::Refused(e),
                }
            }
        };
        prepared.push(Prepared {
            delivery_id: d.id,
            digest_id: d.digest_id,
            subscriber_id: d.subscriber.id,
            attempts: d.attempts,
            work,
        });
    }
    prepared
}
