//! The send rate: messages spaced out so that at most `rate_per_second` go out.

use std::time::Duration;

/// Spaces sends out to a rate.
pub(super) struct Pace {
    interval: Option<Duration>,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    /// `rate_per_second` 0 (or less) sets no limit.
    pub(super) fn new(rate_per_second: f64) -> Self {
        Self {
            interval: (rate_per_second > 0.0)
                .then(|| Duration::from_secs_f64(1.0 / rate_per_second)),
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    /// Waits for this message's slot: each caller takes the next one.
    pub(super) async fn wait(&self) {
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
