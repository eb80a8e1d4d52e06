//! Fencing: a worker hands a message to the mail server only while the row is still its
//! own, by the database's clock. A claim's lease runs `lease` from the database's
//! clock at the claim; the worker counts that down on its own monotonic clock (which a
//! pause, `SIGSTOP` say, does not stop, and which a wrong wall clock does not move),
//! less a margin for the send itself. Past that, before the next message of the claim
//! goes, one statement leases again those rows of the claim that nobody took meanwhile
//! (see `Outbox::relet`); the others are not sent. The heartbeat's renewals move the
//! deadline on without a statement of their own.

use crate::store::OutboxConnection;
use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// The rows of one claim, and until when (on this process's monotonic clock) they are
/// surely still the worker's with time to spare for a send.
pub(super) struct Fence {
    claim: String,
    lease: Duration,
    margin: Duration,
    state: Mutex<State>,
    /// The deadline as whole microseconds after `origin`, readable without the lock.
    until_us: std::sync::atomic::AtomicU64,
    origin: Instant,
}

struct State {
    /// Rows of the claim not handed to the transport yet.
    waiting: HashSet<i64>,
    /// Rows found taken by another worker: never sent by this one.
    lost: HashSet<i64>,
}

/// Rows a lease covers for sure, given the start of the statement that wrote it: the
/// database's clock is read in whole seconds (one may be lost to rounding down), and
/// a send needs time too.
fn deadline(started: Instant, lease: Duration, margin: Duration) -> Instant {
    started + lease.saturating_sub(Duration::from_secs(1) + margin)
}

impl Fence {
    /// The fence of a claim whose statement started at `started`.
    pub(super) fn new(claim: String, ids: &[i64], lease: Duration, started: Instant) -> Self {
        let margin = lease / 4;
        let fence = Self {
            claim,
            lease,
            margin,
            state: Mutex::new(State {
                waiting: ids.iter().copied().collect(),
                lost: HashSet::new(),
            }),
            until_us: 0.into(),
            origin: started,
        };
        fence.extend(deadline(started, lease, margin));
        fence
    }

    pub(super) fn claim(&self) -> &str {
        &self.claim
    }

    fn until(&self) -> Instant {
        self.origin
            + Duration::from_micros(self.until_us.load(std::sync::atomic::Ordering::Acquire))
    }

    fn extend(&self, to: Instant) {
        let us = to.saturating_duration_since(self.origin).as_micros() as u64;
        self.until_us
            .fetch_max(us, std::sync::atomic::Ordering::AcqRel);
    }

    /// A renewal of this worker's leases ran from `started` to `ended`: rows still
    /// leased when it ran (the deadline was after its end) now hold a full lease from
    /// its start.
    pub(super) fn renewed(&self, started: Instant, ended: Instant) {
        if self.until() > ended {
            self.extend(deadline(started, self.lease, self.margin));
        }
    }

    /// Whether delivery `id` is known to have been taken by another worker.
    pub(super) async fn lost(&self, id: i64) -> bool {
        self.state.lock().await.lost.contains(&id)
    }

    /// Whether delivery `id` may be handed to the mail server now. Called right before
    /// the send; asks the database only when the deadline has passed.
    pub(super) async fn admits(&self, id: i64, db: &Mutex<OutboxConnection>) -> bool {
        let mut state = self.state.lock().await;
        if state.lost.contains(&id) {
            return false;
        }
        if Instant::now() >= self.until() {
            let waiting: Vec<i64> = state.waiting.iter().copied().collect();
            let started = Instant::now();
            let lease_secs = self.lease.as_secs().max(1) as i64;
            let held = db
                .lock()
                .await
                .relet(&waiting, &self.claim, lease_secs)
                .await;
            match held {
                Ok(held) => {
                    let held: HashSet<i64> = held.into_iter().collect();
                    let lost: Vec<i64> = waiting
                        .iter()
                        .copied()
                        .filter(|id| !held.contains(id))
                        .collect();
                    if !lost.is_empty() {
                        tracing::warn!(
                            claim = self.claim,
                            deliveries = lost.len(),
                            "the lease of claimed deliveries ran out and another worker took them: not sent here"
                        );
                    }
                    state.lost.extend(lost);
                    state.waiting.retain(|id| held.contains(id));
                    self.extend(deadline(started, self.lease, self.margin));
                }
                Err(e) => {
                    // Not known to be ours: not sent now. The row stays claimed and goes
                    // again when its lease runs out.
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "could not check the lease of claimed deliveries"
                    );
                    return false;
                }
            }
            if state.lost.contains(&id) || Instant::now() >= self.until() {
                return false;
            }
        }
        state.waiting.remove(&id)
    }
}

/// The fences of a worker's claims being worked on, for the heartbeat.
#[derive(Default)]
pub(super) struct Fences(std::sync::Mutex<Vec<Weak<Fence>>>);

impl Fences {
    pub(super) fn add(&self, fence: &Arc<Fence>) {
        let mut fences = self.0.lock().unwrap_or_else(|e| e.into_inner());
        fences.retain(|f| f.strong_count() > 0);
        fences.push(Arc::downgrade(fence));
    }

    pub(super) fn renewed(&self, started: Instant, ended: Instant) {
        let fences = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for fence in fences.iter().filter_map(Weak::upgrade) {
            fence.renewed(started, ended);
        }
    }
}
