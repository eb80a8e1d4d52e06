//! The recorder: marks of sent messages on their way to the database. A mark is queued
//! as soon as the server accepts the message and committed with the marks that are ready
//! at the same moment (a group commit after one yield, never waiting for more), so the
//! window in which a crash repeats a message stays short.

use crate::clock::SharedClock;
use crate::store::{OutboxConnection, SentRecord};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Marks committed together at most.
const MARK_GROUP: usize = 256;
/// Least time between two commits of marks.
const MARK_SPACING: Duration = Duration::from_millis(2);

pub(super) enum ToRecorder {
    /// A sent message on its way to the database.
    Mark(SentRecord),
    /// Answers once every mark queued before it is committed (or failed): how many were
    /// recorded, and how many could not be, since the previous flush.
    Flush(oneshot::Sender<(usize, usize)>),
}

/// Records sent messages as soon as their answers come in, together when several come
/// in at once: one transaction for many rows, without waiting for more.
pub(super) fn start(
    db: Arc<Mutex<OutboxConnection>>,
    clock: SharedClock,
    worker: String,
) -> mpsc::Sender<ToRecorder> {
    let (tx, rx) = mpsc::channel::<ToRecorder>(4096);
    tokio::spawn(record(rx, db, clock, worker));
    tx
}

async fn record(
    mut rx: mpsc::Receiver<ToRecorder>,
    db: Arc<Mutex<OutboxConnection>>,
    clock: SharedClock,
    worker: String,
) {
    let mut group: Vec<SentRecord> = Vec::with_capacity(MARK_GROUP);
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
}
