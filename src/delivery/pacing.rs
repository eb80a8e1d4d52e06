//! The send rate: messages spaced out so that at most `rate_per_second` go out, counted
//! for every worker on the database together (NEWSDESK_SEND_RATE is the rate of the
//! whole deployment, not of each instance). The slots are handed out by the database on
//! its own clock (`send_budget`, migration 0008), a few at a time: each worker takes the
//! next free stretch of the schedule and spaces its messages through it on its own
//! monotonic clock, so that instances together keep to the rate.

use crate::store::OutboxConnection;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// Spaces sends out to a rate shared through the database.
pub(super) struct Pace {
    interval: Option<Duration>,
    /// Slots taken from the database and not used yet.
    slots: Mutex<VecDeque<Instant>>,
    /// Slots taken at a time: about a tenth of a second's worth.
    chunk: u32,
    db: Arc<Mutex<OutboxConnection>>,
    /// When the database cannot be asked: spaced out here alone.
    next_local: std::sync::Mutex<Instant>,
}

impl Pace {
    /// `rate_per_second` 0 (or less) sets no limit.
    pub(super) fn new(rate_per_second: f64, db: Arc<Mutex<OutboxConnection>>) -> Self {
        Self {
            interval: (rate_per_second > 0.0)
                .then(|| Duration::from_secs_f64(1.0 / rate_per_second)),
            slots: Mutex::new(VecDeque::new()),
            chunk: (rate_per_second / 10.0).clamp(1.0, 256.0) as u32,
            db,
            next_local: std::sync::Mutex::new(Instant::now()),
        }
    }

    /// Waits for this message's slot: each caller takes the next one.
    pub(super) async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut slots = self.slots.lock().await;
            // Slots already past were missed (the worker was busy): dropped, not spent
            // in a burst.
            let now = Instant::now();
            while slots.front().is_some_and(|s| *s + interval < now) {
                slots.pop_front();
            }
            if slots.is_empty() {
                self.take(&mut slots, interval).await;
            }
            slots.pop_front()
        };
        match slot {
            Some(slot) => tokio::time::sleep_until(slot).await,
            None => self.wait_local(interval).await,
        }
    }

    /// The next stretch of slots from the database.
    async fn take(&self, slots: &mut VecDeque<Instant>, interval: Duration) {
        let interval_us = (interval.as_micros() as i64).max(1);
        let started = Instant::now();
        let first = self
            .db
            .lock()
            .await
            .take_send_slots(self.chunk, interval_us)
            .await;
        match first {
            Ok(first_us) => {
                let first = started + Duration::from_micros(first_us.max(0) as u64);
                slots.extend((0..self.chunk).map(|i| first + interval * i));
            }
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "could not take send slots from the database; pacing this worker alone"
            ),
        }
    }

    async fn wait_local(&self, interval: Duration) {
        let slot = {
            let mut next = self.next_local.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            let slot = (*next).max(now);
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}
