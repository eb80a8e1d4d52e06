//! One prepared message sent (at the pace), and what became of it recorded: sent (through
//! the recorder), skipped, to be retried after a back-off, or failed (a bounce when the
//! recipient was refused for good often enough).

use super::Outbox;
use super::batch::{Delivery, Prepared, Work};
use super::fence::Fence;
use super::recorder::ToRecorder;
use crate::mail::{MailError, Sent};
use crate::store::SentRecord;
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;

/// How many leases a row handed to the mail server stays the worker's without a
/// renewal: a worker paused for less than that sends no second copy of what it had in
/// flight, and one killed has those messages sent again once the hold runs out.
pub(crate) const HOLD_LEASES: i64 = 6;

pub(super) enum Done {
    /// Accepted by the server; its mark is with the recorder, which commits it at once.
    /// The send slot is free meanwhile: the next message need not wait for this one's
    /// commit, and the recorder gets bigger groups.
    Sent,
    Skipped,
    /// Not sent: its reader's time and the grace period had passed.
    Missed,
    Retried,
    Failed {
        bounced: bool,
    },
}

impl Outbox {
    /// Sends one prepared message, unless the worker is stopping (`None`).
    pub(super) async fn deliver(&self, p: Prepared) -> anyhow::Result<Option<Done>> {
        if self.stopping() {
            return Ok(None);
        }
        let done = self.deliver_now(p).await;
        match done {
            // Not finished: it goes again after its back-off.
            Ok(Some(Done::Retried)) => self.retried.fetch_add(1, Ordering::Relaxed),
            Ok(Some(_)) => self.finished.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        done
    }

    async fn deliver_now(&self, p: Prepared) -> anyhow::Result<Option<Done>> {
        let Prepared {
            delivery,
            work,
            fence,
        } = p;
        match work {
            Work::Send {
                mail,
                items,
                link_hash,
            } => {
                if fence.lost(delivery.id).await {
                    return Ok(None);
                }
                self.pace.wait().await;
                // Right before the message goes: is the row still this worker's, with
                // time to spare? (A worker paused past its lease stops here.)
                if !fence.admits(delivery.id, &self.side).await
                    || !self.hand(&delivery, &fence).await
                {
                    return Ok(None);
                }
                let result = self.app.mailer.send_built(&mail).await;
                self.settle(delivery, &fence, result, items, link_hash)
                    .await
            }
            Work::Refused(e) => {
                self.settle(delivery, &fence, Err(e), Vec::new(), String::new())
                    .await
            }
            Work::Skip => {
                let recorded = {
                    let _writing = self.db.lock().await;
                    self.app
                        .store
                        .outbox()
                        .mark_skipped(delivery.id, fence.claim(), self.app.clock.now())
                        .await?
                };
                Ok(self.recorded(recorded, delivery, Done::Skipped))
            }
            Work::Missed(reason) => {
                tracing::info!(delivery = delivery.id, reason, "delivery missed");
                let recorded = {
                    let _writing = self.db.lock().await;
                    self.app
                        .store
                        .outbox()
                        .mark_missed(delivery.id, fence.claim(), &reason, self.app.clock.now())
                        .await?
                };
                Ok(self.recorded(recorded, delivery, Done::Missed))
            }
            Work::RenderFailed(error) => {
                // Our fault, not the recipient's: failed (an admin can retry once the
                // template is fixed), not counted as a bounce.
                tracing::error!(delivery = delivery.id, error, "delivery failed");
                let recorded = self
                    .mark_failed(delivery, &fence, &error, false, self.app.clock.now())
                    .await?;
                Ok(recorded.map(|_| Done::Failed { bounced: false }))
            }
        }
    }

    /// Records the hand-off of `delivery` to the mail server before it happens (see
    /// `Outbox::hand` in the store): true when the row is still this claim's and is now
    /// held for it for [`HOLD_LEASES`] leases. A worker paused between the hand-off and
    /// its mark finds the row still its own when it wakes; nobody sent it meanwhile.
    async fn hand(&self, delivery: &Delivery, fence: &Fence) -> bool {
        let hold = self.lease_secs().saturating_mul(HOLD_LEASES);
        let handed = self
            .side
            .lock()
            .await
            .hand(delivery.id, fence.claim(), hold)
            .await;
        match handed {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    delivery = delivery.id,
                    "the row was taken by another worker after this one's lease ran out: not sent here"
                );
                false
            }
            Err(e) => {
                // Not known to be ours: not sent now. The row goes again when its lease
                // runs out.
                tracing::warn!(
                    delivery = delivery.id,
                    error = format!("{e:#}"),
                    "could not record the hand-off of a delivery: not sent now"
                );
                false
            }
        }
    }

    /// `done`, when its mark counted; `None` (and a line in the log) when the row was
    /// no longer this worker's.
    fn recorded(&self, counted: bool, delivery: Delivery, done: Done) -> Option<Done> {
        if !counted {
            tracing::warn!(
                delivery = delivery.id,
                "the row was taken by another worker after this one's lease ran out: not recorded"
            );
        }
        counted.then_some(done)
    }

    /// Records what the transport answered for a message.
    async fn settle(
        &self,
        delivery: Delivery,
        fence: &Fence,
        result: Result<Sent, MailError>,
        items: Vec<(i64, DateTime<Utc>)>,
        link_hash: String,
    ) -> anyhow::Result<Option<Done>> {
        let now = self.app.clock.now();
        let attempts = delivery.attempts;
        match result {
            Ok(sent) => {
                let record = SentRecord {
                    delivery_id: delivery.id,
                    subscriber_id: delivery.subscriber_id,
                    digest_id: delivery.digest_id,
                    message_id: sent.message_id,
                    items,
                    link_hash,
                    claim: fence.claim().to_owned(),
                };
                let accepted = tokio::time::Instant::now();
                // Waits only while the recorder is that far behind: it bounds the
                // messages a crash can leave sent but unrecorded.
                let permit = self.unrecorded.clone().acquire_owned().await?;
                self.recorder
                    .send(ToRecorder::Mark(record, accepted, permit))
                    .await
                    .map_err(|_| anyhow::anyhow!("the delivery recorder stopped"))?;
                Ok(Some(Done::Sent))
            }
            Err(MailError::Temporary(error)) if attempts < self.settings.max_attempts => {
                let wait = self.backoff(attempts);
                tracing::info!(
                    delivery = delivery.id,
                    attempts,
                    error,
                    "temporary failure; will retry"
                );
                let recorded = {
                    let _writing = self.db.lock().await;
                    self.app
                        .store
                        .outbox()
                        .mark_retry(delivery.id, fence.claim(), &error, wait.num_seconds(), now)
                        .await?
                };
                Ok(self.recorded(recorded, delivery, Done::Retried))
            }
            Err(e) => {
                let permanent = !e.is_temporary();
                let error = if permanent {
                    e.message().to_owned()
                } else {
                    format!("gave up after {attempts} attempts: {}", e.message())
                };
                tracing::warn!(delivery = delivery.id, error, "delivery failed");
                let bounced = self
                    .mark_failed(delivery, fence, &error, permanent, now)
                    .await?;
                Ok(bounced.map(|bounced| Done::Failed { bounced }))
            }
        }
    }

    /// Marks a delivery failed; true when that made its subscriber bounced, `None`
    /// when the row was no longer this worker's (nothing recorded).
    async fn mark_failed(
        &self,
        delivery: Delivery,
        fence: &Fence,
        error: &str,
        permanent: bool,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Option<bool>> {
        let _writing = self.db.lock().await;
        let bounced = self
            .app
            .store
            .outbox()
            .mark_failed(
                delivery.id,
                fence.claim(),
                delivery.subscriber_id,
                error,
                permanent,
                self.settings.bounce_after,
                now,
            )
            .await?;
        if bounced.is_none() {
            tracing::warn!(
                delivery = delivery.id,
                "the row was taken by another worker after this one's lease ran out: not recorded"
            );
        }
        Ok(bounced)
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
}
