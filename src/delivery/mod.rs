//! The delivery engine. The outbox worker claims due rows of the outbox in batches
//! (leased, so a crashed worker's rows come back), renders each subscriber's digest
//! ([`batch`]), sends it through the mailer at a bounded pace ([`pacing`], [`send`]), and
//! records the result at once ([`recorder`]). The [`schedule`] builds the digests that
//! fill the outbox.
//!
//! At the moment of a crash the guarantee is at least once: a message the mail server
//! accepted in the instant before its row was marked sent goes again when the lease
//! runs out, byte for byte the message first sent ([`identity`]). That window is short:
//! the mark is queued as soon as the server replies and committed with the marks that
//! are ready at the same moment. Every other moment loses nothing and repeats nothing.
//! Leases are on the database's clock, and a worker sends only while its lease holds
//! ([`fence`]), so instances sharing a database with skewed clocks or paused processes
//! do not send a message twice.

mod batch;
mod fence;
mod identity;
mod pacing;
mod recorder;
pub mod schedule;
mod send;

pub use schedule::{DigestScheduler, TickOutcome};

use crate::app::App;
use crate::config::DeliverySettings;
use crate::store::OutboxConnection;
use batch::{Bundle, Prepared};
use fence::{Fence, Fences};
use futures_util::StreamExt;
use identity::DeliveryKey;
use pacing::Pace;
use recorder::ToRecorder;
use send::Done;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::sync::{Mutex, mpsc, watch};

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RunOutcome {
    pub claimed: usize,
    pub sent: usize,
    pub skipped: usize,
    /// Not sent: first taken past their reader's time and the list's grace period.
    pub missed: usize,
    pub retried: usize,
    pub failed: usize,
    pub bounced: usize,
}

/// What the claiming side of a pass did: deliveries claimed, whether the last claim
/// found the outbox drained, and how it ended.
type Produced = (usize, bool, anyhow::Result<()>);

pub struct Outbox {
    app: App,
    recorder: mpsc::Sender<ToRecorder>,
    /// Messages the server accepted whose marks are not committed yet: at most twice the
    /// send concurrency, so a crash resends at most three times the concurrency (those in
    /// an SMTP exchange and those waiting for the recorder's commit).
    unrecorded: Arc<tokio::sync::Semaphore>,
    /// This worker's claims, tokens and marks, on a connection of its own. Its other
    /// writes to the outbox take turns here too, rather than in SQLite's busy handler,
    /// which sleeps.
    db: Arc<Mutex<OutboxConnection>>,
    /// Lease checks right before a send and the shared send rate: on PostgreSQL a
    /// connection of their own (on SQLite, with one writer, the one above).
    side: Arc<Mutex<OutboxConnection>>,
    settings: DeliverySettings,
    worker: String,
    /// Claims made so far: each claim's rows are held as `worker:n`.
    claims: AtomicU64,
    fences: Arc<Fences>,
    key: tokio::sync::OnceCell<Arc<DeliveryKey>>,
    pace: Pace,
    bundles: Mutex<HashMap<i64, Arc<Bundle>>>,
    stopping: AtomicBool,
    /// Messages finished (sent, failed or skipped), for progress reports.
    finished: AtomicU64,
    /// Temporary failures (each message goes again after its back-off).
    retried: AtomicU64,
}

impl Outbox {
    pub fn new(app: App, settings: DeliverySettings) -> Self {
        // Written into every row the worker claims: short, and random enough that two
        // workers never share one.
        let worker = format!("w{:016x}", rand::random::<u64>());
        let db = Arc::new(Mutex::new(OutboxConnection::new(app.store.clone())));
        // On PostgreSQL, marks and lease checks never wait behind a claim or the read
        // of the next batch's history. SQLite has one writer: there they take turns on
        // one connection rather than in SQLite's busy handler, which sleeps.
        let own = || {
            if app.store.backend().locks_rows() {
                Arc::new(Mutex::new(OutboxConnection::new(app.store.clone())))
            } else {
                db.clone()
            }
        };
        let (marks, side) = (own(), own());
        Self {
            recorder: recorder::start(marks, app.clock.clone()),
            unrecorded: Arc::new(tokio::sync::Semaphore::new(2 * settings.concurrency.max(1))),
            db,
            pace: Pace::new(settings.rate_per_second, side.clone()),
            side,
            worker,
            claims: AtomicU64::new(0),
            fences: Arc::new(Fences::default()),
            key: tokio::sync::OnceCell::new(),
            app,
            settings,
            bundles: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
            finished: AtomicU64::new(0),
            retried: AtomicU64::new(0),
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

    /// Temporary failures so far (the SMTP server down says so first).
    pub fn retried(&self) -> u64 {
        self.retried.load(Ordering::Relaxed)
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

    /// The lease in whole seconds, as the database counts it.
    fn lease_secs(&self) -> i64 {
        self.settings.lease.as_secs().max(1) as i64
    }

    /// The database's delivery key (migration 0008), read once.
    async fn delivery_key(&self) -> anyhow::Result<Arc<DeliveryKey>> {
        let key = self
            .key
            .get_or_try_init(|| async {
                let secret = self.app.store.outbox().delivery_key().await?;
                anyhow::Ok(Arc::new(DeliveryKey::new(&secret)))
            })
            .await?;
        Ok(key.clone())
    }

    /// Up to `batches` batches, each claimed and prepared while the one before is sent.
    async fn pass(&self, batches: usize) -> anyhow::Result<RunOutcome> {
        let heartbeat = self.keep_leases();
        // One prepared batch waits while another is sent.
        let (ready, batches_in) = mpsc::channel::<Vec<Prepared>>(1);
        // Deliveries claimed and not finished. The next batch is claimed once half of the
        // current one is done: early enough that the connections never wait for it, late
        // enough that rows not about to be sent stay pending (and can be cancelled).
        let (unfinished, unfinished_now) = watch::channel(0usize);
        let ((claimed, drained, produced), mut outcome) = tokio::join!(
            self.produce(batches, ready, &unfinished, unfinished_now),
            self.consume(batches_in, &unfinished),
        );
        // Every mark in the database before anything is given back: a row released
        // before its mark is committed would be sent again.
        let flushed = self.flush().await;
        heartbeat.abort();
        self.db.lock().await.release();
        outcome.claimed = claimed;
        if let Ok((recorded, _)) = flushed {
            outcome.sent = recorded;
        }
        let (store, now) = (&self.app.store, self.app.clock.now());
        if self.stopping() {
            store.outbox().release_claims(&self.worker).await?;
        }
        if drained {
            store.digests().complete(now).await?;
        }
        produced?;
        flushed?;
        Ok(outcome)
    }

    /// Keeps the rows this worker holds while it works through them.
    fn keep_leases(&self) -> tokio::task::JoinHandle<()> {
        let store = self.app.store.clone();
        let worker = self.worker.clone();
        let every = self.settings.lease / 3;
        let lease = self.lease_secs();
        let fences = self.fences.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let started = tokio::time::Instant::now();
                match store.outbox().renew_leases(&worker, lease).await {
                    Ok(_) => fences.renewed(started, tokio::time::Instant::now()),
                    Err(e) => {
                        tracing::warn!(error = format!("{e:#}"), "could not renew delivery leases")
                    }
                }
            }
        })
    }

    /// Claims and prepares batches, handing each to `ready` (dropped at the end, which
    /// ends the sending side).
    async fn produce(
        &self,
        batches: usize,
        ready: mpsc::Sender<Vec<Prepared>>,
        unfinished: &watch::Sender<usize>,
        mut unfinished_now: watch::Receiver<usize>,
    ) -> Produced {
        let batch_size = self.settings.batch_size as usize;
        let lease = self.lease_secs();
        let mut claimed_total = 0;
        let mut drained = false;
        for _ in 0..batches {
            if self.stopping() {
                break;
            }
            let now = self.app.clock.now();
            let claim = format!(
                "{}:{}",
                self.worker,
                self.claims.fetch_add(1, Ordering::Relaxed)
            );
            let (claimed, started) = {
                let mut db = self.db.lock().await;
                let started = tokio::time::Instant::now();
                let claimed = db
                    .claim_deliveries(&claim, now, lease, batch_size as u32)
                    .await;
                (claimed, started)
            };
            let claimed = match claimed {
                Ok(claimed) => claimed,
                Err(e) => return (claimed_total, drained, Err(e.into())),
            };
            claimed_total += claimed.len();
            // A full batch means more rows are likely due: the claim that finds fewer
            // (or none) completes the digests.
            drained = claimed.len() < batch_size;
            if !claimed.is_empty() {
                let ids: Vec<i64> = claimed.iter().map(|d| d.id).collect();
                let fence = Arc::new(Fence::new(claim, &ids, self.settings.lease, started));
                self.fences.add(&fence);
                let prepared = match self.prepare(claimed, fence).await {
                    Ok(prepared) => prepared,
                    Err(e) => return (claimed_total, drained, Err(e)),
                };
                unfinished.send_modify(|n| *n += prepared.len());
                if ready.send(prepared).await.is_err() {
                    break;
                }
            }
            if drained
                || unfinished_now
                    .wait_for(|n| *n <= batch_size / 2)
                    .await
                    .is_err()
            {
                break;
            }
        }
        (claimed_total, drained, Ok(()))
    }

    /// Sends what `produce` prepared, `concurrency` at a time, until it stops.
    async fn consume(
        &self,
        mut batches_in: mpsc::Receiver<Vec<Prepared>>,
        unfinished: &watch::Sender<usize>,
    ) -> RunOutcome {
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
                    Ok(Some(Done::Missed)) => outcome.missed += 1,
                    Ok(Some(Done::Retried)) => outcome.retried += 1,
                    Ok(Some(Done::Failed { bounced })) => {
                        outcome.failed += 1;
                        outcome.bounced += usize::from(bounced);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::error!(
                            error = format!("{e:#}"),
                            "a delivery could not be recorded"
                        )
                    }
                }
                std::future::ready(())
            })
            .await;
        outcome
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

    /// Works the outbox until `stop` is set: a batch at a time, waiting for a wake-up
    /// (a digest was built) or the poll interval when nothing is due.
    pub async fn run(self: Arc<Self>, wake: Arc<tokio::sync::Notify>, stop: watch::Receiver<bool>) {
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
        if let Err(e) = self.app.store.outbox().release_claims(&self.worker).await {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not release claimed deliveries"
            );
        }
    }
}
