//! The recorder: marks of sent messages on their way to the database. A mark is queued
//! as soon as the server accepts the message and committed with the marks that are ready
//! at the same moment (a group commit after one yield, never waiting for more), so the
//! window in which a crash repeats a message stays short. On PostgreSQL the marks have
//! a connection of their own: they never wait behind a claim or a read of the next
//! batch. A mark counts only for a row still held by the claim that sent it; one that
//! is not (another worker took the row) is dropped and logged.

use crate::clock::SharedClock;
use crate::store::{OutboxConnection, SentRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;

/// Marks committed together at most.
const MARK_GROUP: usize = 256;
/// Least time between two commits of marks.
const MARK_SPACING: Duration = Duration::from_millis(2);

pub(super) enum ToRecorder {
    /// A sent message on its way to the database, when the server accepted it, and its
    /// place among the unrecorded messages (given back once its mark is committed).
    Mark(SentRecord, Instant, OwnedSemaphorePermit),
    /// Answers once every mark queued before it is committed (or failed): how many were
    /// recorded, and how many could not be, since the previous flush.
    Flush(oneshot::Sender<(usize, usize)>),
}

/// Records sent messages as soon as their answers come in, together when several come
/// in at once: one transaction for many rows, without waiting for more.
pub(super) fn start(
    db: Arc<Mutex<OutboxConnection>>,
    clock: SharedClock,
) -> mpsc::Sender<ToRecorder> {
    let (tx, rx) = mpsc::channel::<ToRecorder>(4096);
    tokio::spawn(record(rx, db, clock));
    tx
}

/// Times from the server's acceptance of a message to the commit of its mark.
#[derive(Default)]
struct Latencies(Vec<Duration>);

impl Latencies {
    /// Logs and forgets what was gathered: count, median, 99th percentile, maximum.
    fn report(&mut self) {
        if self.0.is_empty() {
            return;
        }
        self.0.sort_unstable();
        let at = |q: f64| {
            let i = ((self.0.len() - 1) as f64 * q).round() as usize;
            self.0[i].as_secs_f64() * 1000.0
        };
        tracing::info!(
            marks = self.0.len(),
            p50_ms = format!("{:.2}", at(0.5)),
            p99_ms = format!("{:.2}", at(0.99)),
            max_ms = format!("{:.2}", at(1.0)),
            "time from the mail server's acceptance to the committed mark"
        );
        self.0.clear();
    }
}

async fn record(
    mut rx: mpsc::Receiver<ToRecorder>,
    db: Arc<Mutex<OutboxConnection>>,
    clock: SharedClock,
) {
    let mut group: Vec<SentRecord> = Vec::with_capacity(MARK_GROUP);
    let mut accepted: Vec<Instant> = Vec::with_capacity(MARK_GROUP);
    let mut permits: Vec<OwnedSemaphorePermit> = Vec::with_capacity(MARK_GROUP);
    let mut latencies = Latencies::default();
    let mut flushes = Vec::new();
    let (mut recorded, mut lost) = (0, 0);
    let mut last_commit: Option<tokio::time::Instant> = None;
    while let Some(first) = rx.recv().await {
        // Answers often come in together: the tasks they woke run first and queue their
        // marks, which then share this transaction. Under load, commits are at least
        // MARK_SPACING apart: a mark waits that long at most, and the group grows with
        // what came in meanwhile (a commit writes its pages whatever their number of
        // rows: small groups cost the database many writes). After a quiet spell the
        // first mark is committed at once.
        if let Some(last) = last_commit {
            tokio::time::sleep_until(last + MARK_SPACING).await;
        }
        tokio::task::yield_now().await;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                ToRecorder::Mark(record, at, permit) => {
                    group.push(record);
                    accepted.push(at);
                    permits.push(permit);
                }
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
                    .mark_deliveries_sent(&group, clock.now())
                    .await
            };
            let committed = Instant::now();
            last_commit = Some(committed);
            match result {
                Ok(lost) => {
                    latencies
                        .0
                        .extend(accepted.iter().map(|at| committed.duration_since(*at)));
                    recorded += group.len() - lost.len();
                    if !lost.is_empty() {
                        // Sent, but by then the row was another worker's (this one's
                        // lease ran out and the row was claimed again): its mark and its
                        // items are not recorded over the other's.
                        tracing::warn!(
                            deliveries = ?lost,
                            "sent after the lease ran out and the rows were taken by another worker: marks dropped"
                        );
                    }
                }
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
            accepted.clear();
            permits.clear();
        }
        if !flushes.is_empty() {
            latencies.report();
        }
        for answer in flushes.drain(..) {
            let _ = answer.send((recorded, lost));
            (recorded, lost) = (0, 0);
        }
    }
}
