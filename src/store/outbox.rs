//! The outbox aggregate: the deliveries of digests as delivery workers take, hold and
//! settle them, and what each reader was last sent of each item.

use super::people::People;
use super::{Backend, Store, StoreResult, from_ts, to_ts};
use crate::domain::Subscriber;
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, Connection, Executor, Row};
use std::collections::HashMap;

/// Claims, leases and marks of deliveries: `store.outbox()`. A worker claims and
/// marks through its [`OutboxConnection`].
#[derive(Clone, Copy)]
pub struct Outbox<'a> {
    pub(super) store: &'a Store,
}

/// A delivery a worker holds.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub digest_id: i64,
    pub attempts: u32,
    pub subscriber: Subscriber,
    /// When the delivery was first claimed, on the database's clock: the Date of its
    /// message, whichever attempt sends it.
    pub built_at: DateTime<Utc>,
    /// A reader-local delivery's time (its reader's local send time), on the same clock.
    pub due_at: Option<DateTime<Utc>>,
}

/// A message the SMTP server accepted, to be recorded.
#[derive(Debug, Clone)]
pub struct SentRecord {
    pub delivery_id: i64,
    pub subscriber_id: i64,
    pub digest_id: i64,
    pub message_id: String,
    /// (item id, its `updated_at`) of every item the message carried.
    pub items: Vec<(i64, DateTime<Utc>)>,
    /// The SHA-256 of the token of the message's personal links
    /// ([`crate::subscriptions::delivery_link_token`]): they work once this is stored.
    pub link_hash: String,
    /// The claim the worker holds the row by: the mark counts only while the row is
    /// still held by it.
    pub claim: String,
}

/// What a claim reads of each delivery and its reader, as one JSON array per row.
type ClaimedRow = (
    i64,
    i64,
    i64,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<i64>,
    Option<i64>,
    Option<i64>,
);

impl Outbox<'_> {
    /// A worker's own connection for its claims and marks.
    pub fn connection(self) -> OutboxConnection {
        OutboxConnection::new(self.store.clone())
    }

    /// Takes up to `limit` deliveries that are due (pending and due, or held by a
    /// worker whose lease ran out), marks them as held by `claim` for `lease_secs`.
    /// Due and lease are read and written on the database's clock, never the caller's:
    /// an instance whose clock runs ahead does not take rows another still holds.
    ///
    /// A claimed row stays `pending`: its lease is its next attempt. It is due again,
    /// to any worker, when the lease runs out, and until then the due rows' index
    /// passes it by. Claiming moves one entry of one index, where a change of status
    /// would move entries in two (and marking it sent later two more).
    async fn claim(
        self,
        conn: &mut AnyConnection,
        claim: &str,
        now: DateTime<Utc>,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        match self.take_due(conn, claim, now, lease_secs, limit).await? {
            Some(ids) => self.claimed(conn, &ids, now).await,
            None => Ok(Vec::new()),
        }
    }

    /// The transaction of a claim: picks the due rows and leases them to `worker`.
    /// Their ids as a JSON array, `None` when nothing was due.
    async fn take_due(
        self,
        conn: &mut AnyConnection,
        claim: &str,
        now: DateTime<Utc>,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Option<String>> {
        // Every result here is one row holding a JSON array: a row costs the database's
        // thread a copy of each value and a hand-over (a wake-up) to ours, and a claim
        // takes a thousand of them.
        let backend = self.store.backend;
        let (ids_in, aggregate, lock, db_now) = (
            backend.json_ids(1),
            backend.json_agg(),
            backend.skip_locked(),
            self.store.db_now_secs(),
        );
        let mut tx = conn.begin_with(backend.begin_write()).await?;
        let ids: Option<String> = sqlx::query_scalar(&format!(
            "SELECT CAST({aggregate}(id) AS TEXT) FROM (
                 SELECT id FROM deliveries
                 WHERE status = 'pending' AND next_attempt_at <= {db_now}
                 -- No ORDER BY: the index of pending rows by next_attempt_at yields due
                 -- rows in about that order, and sorting every due row of a large digest
                 -- on each claim would make a send quadratic.
                 LIMIT $1 {lock}
             ) AS due"
        ))
        .bind(i64::from(limit))
        .fetch_one(&mut *tx)
        .await?;
        let ids = ids.unwrap_or_default();
        let count = serde_json::from_str::<Vec<i64>>(&ids).map_or(0, |ids| ids.len());
        if count == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        sqlx::query(&format!(
            "UPDATE deliveries SET next_attempt_at = {db_now} + $2, lease_until = {db_now} + $2,
                 claimed_by = $3, attempts = attempts + 1, updated_at = $4,
                 built_at = COALESCE(built_at, {db_now})
             WHERE id IN ({ids_in})"
        ))
        .bind(ids.as_str())
        .bind(lease_secs)
        .bind(claim)
        .bind(to_ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(ids))
    }

    /// The claimed deliveries with their readers, by id.
    async fn claimed(
        self,
        conn: &mut AnyConnection,
        ids: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let backend = self.store.backend;
        let (ids_in, aggregate, array) = (
            backend.json_ids(1),
            backend.json_agg(),
            backend.json_array(),
        );
        // Only what a digest needs of its reader: every column read costs a copy on
        // the database's thread and another on ours.
        let claimed: Option<String> = sqlx::query_scalar(&format!(
            "SELECT CAST({aggregate}({array}(d.id, d.digest_id, d.attempts, s.id, s.email, s.name,
                     p.name, COALESCE(s.timezone, p.timezone), s.language, d.built_at, d.due_at, s.partner_id)) AS TEXT)
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
                 LEFT JOIN partners p ON p.id = s.partner_id
             WHERE d.id IN ({ids_in})"
        ))
        .bind(ids)
        .fetch_one(&mut *conn)
        .await?;
        let rows: Vec<ClaimedRow> = serde_json::from_str(claimed.as_deref().unwrap_or("[]"))
            .context("reading claimed deliveries")?;
        let mut out: Vec<ClaimedDelivery> = rows
            .into_iter()
            .map(
                |(
                    id,
                    digest_id,
                    attempts,
                    subscriber_id,
                    email,
                    name,
                    partner,
                    zone,
                    language,
                    built_at,
                    due_at,
                    partner_id,
                )| {
                    ClaimedDelivery {
                        id,
                        digest_id,
                        attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
                        subscriber: Subscriber {
                            id: subscriber_id,
                            email,
                            name,
                            partner_id,
                            partner_name: partner,
                            partner_timezone: zone,
                            language,
                            ..Subscriber::blank(now)
                        },
                        built_at: built_at.map_or(now, from_ts),
                        due_at: due_at.map(from_ts),
                    }
                },
            )
            .collect();
        out.sort_unstable_by_key(|c| c.id);
        Ok(out)
    }

    /// Gives back the rows a stopping worker holds but did not send: due at once.
    /// `worker` names every claim of the worker (`worker:n`).
    pub async fn release_claims(self, worker: &str) -> StoreResult<()> {
        let db_now = self.store.db_now_secs();
        sqlx::query(&format!(
            "UPDATE deliveries SET next_attempt_at = {db_now}, lease_until = NULL, claimed_by = NULL,
                 attempts = attempts - 1
             WHERE status = 'pending' AND next_attempt_at > {db_now} AND claimed_by LIKE $1
                 AND lease_until IS NOT NULL"
        ))
        .bind(claims_of(worker))
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// Keeps this worker's rows from being taken by others while it works on them,
    /// for `lease_secs` from now on the database's clock. Rows whose lease ran out may
    /// be another's by now, and are left alone (and the worker's fence stops it from
    /// sending them).
    pub async fn renew_leases(self, worker: &str, lease_secs: i64) -> StoreResult<u64> {
        let db_now = self.store.db_now_secs();
        let done = sqlx::query(&format!(
            "UPDATE deliveries SET next_attempt_at = {db_now} + $1, lease_until = {db_now} + $1
             WHERE status = 'pending' AND next_attempt_at > {db_now} AND claimed_by LIKE $2
                 AND lease_until IS NOT NULL"
        ))
        .bind(lease_secs)
        .bind(claims_of(worker))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Leases again, for `lease_secs` from now on the database's clock, those of `ids`
    /// that `claim` still holds (pending and named by it, whether or not its lease ran
    /// out: nobody took them since), and returns them. A worker whose lease may have run
    /// out (it was paused, say) asks this right before it hands messages to the mail
    /// server: a row not in the answer was taken by another worker, and is not sent.
    async fn relet(
        self,
        conn: &mut AnyConnection,
        ids: &[i64],
        claim: &str,
        lease_secs: i64,
    ) -> StoreResult<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let backend = self.store.backend;
        let (ids_in, db_now) = (backend.json_ids(1), self.store.db_now_secs());
        let ids = serde_json::to_string(ids).context("listing ids")?;
        let rows = sqlx::query(&format!(
            "UPDATE deliveries SET next_attempt_at = {db_now} + $3, lease_until = {db_now} + $3
             WHERE id IN ({ids_in}) AND claimed_by = $2 AND status = 'pending'
             RETURNING id"
        ))
        .bind(ids.as_str())
        .bind(claim)
        .bind(lease_secs)
        .fetch_all(&mut *conn)
        .await?;
        let mut held = Vec::with_capacity(rows.len());
        for row in rows {
            held.push(row.try_get(0)?);
        }
        Ok(held)
    }

    /// Records that `claim` hands delivery `id` to the mail server now, right before
    /// the message goes, and holds the row for `hold_secs` from now on the database's
    /// clock, many leases: the outcome of a hand-off is known only once its mark is
    /// committed, and a worker paused in between (`SIGSTOP`, a stalled VM) must find the
    /// row still its own when it wakes, rather than resent by another. Its `lease_until`
    /// is cleared, so the lease renewal and the release of a stopping worker pass it by.
    /// Only a worker that never comes back leaves it to be sent again once the hold
    /// runs out (the window a kill resends). False, and nothing written, when the row is
    /// not the claim's any more or its lease ran out by the database's clock.
    async fn hand(
        self,
        conn: &mut AnyConnection,
        id: i64,
        claim: &str,
        hold_secs: i64,
    ) -> StoreResult<bool> {
        let db_now = self.store.db_now_secs();
        let done = sqlx::query(&format!(
            "UPDATE deliveries SET next_attempt_at = {db_now} + $3, lease_until = NULL
             WHERE id = $1 AND claimed_by = $2 AND status = 'pending'
                 AND lease_until IS NOT NULL AND next_attempt_at > {db_now}"
        ))
        .bind(id)
        .bind(claim)
        .bind(hold_secs)
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The key each delivery's message identity is derived from (migration 0008).
    pub async fn delivery_key(self) -> StoreResult<String> {
        Ok(
            sqlx::query_scalar("SELECT secret FROM delivery_key WHERE id = 1")
                .fetch_one(&self.store.pool)
                .await?,
        )
    }

    /// Takes `count` send slots `interval_ms` apart from the budget every instance
    /// shares (NEWSDESK_SEND_RATE), on the database's clock: how many microseconds
    /// from now the first of them is.
    async fn take_send_slots(
        self,
        conn: &mut AnyConnection,
        count: u32,
        interval_us: i64,
    ) -> StoreResult<i64> {
        let backend = self.store.backend;
        let (now_us, greatest) = (self.store.db_now_us(), backend.greatest());
        let span = i64::from(count) * interval_us;
        let row = sqlx::query(&format!(
            "UPDATE send_budget SET next_slot_us = {greatest}(next_slot_us, {now_us}) + $1
             WHERE id = 1 RETURNING next_slot_us, {now_us}"
        ))
        .bind(span)
        .fetch_one(&mut *conn)
        .await?;
        let (next, now): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
        Ok(next - span - now)
    }

    /// What each of these subscribers was last sent of these items: (subscriber, item)
    /// to the item's `updated_at` then.
    /// Items sent by `except_digest` itself do not count (for previews of a digest
    /// that went out already).
    pub async fn delivered_items(
        self,
        subscriber_ids: &[i64],
        item_ids: &[i64],
        except_digest: Option<i64>,
    ) -> StoreResult<HashMap<(i64, i64), DateTime<Utc>>> {
        self.delivered_items_with(&self.store.pool, subscriber_ids, item_ids, except_digest)
            .await
    }

    async fn delivered_items_with<'c>(
        self,
        executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
        subscriber_ids: &[i64],
        item_ids: &[i64],
        except_digest: Option<i64>,
    ) -> StoreResult<HashMap<(i64, i64), DateTime<Utc>>> {
        let mut out = HashMap::new();
        if subscriber_ids.is_empty() || item_ids.is_empty() {
            return Ok(out);
        }
        // The ids as two JSON arrays: two parameters, and one statement text for any
        // number of them.
        let ids = |ids: &[i64]| serde_json::to_string(ids).context("listing ids");
        let (subscribers, items) = (ids(subscriber_ids)?, ids(item_ids)?);
        let backend = self.store.backend;
        let sql = format!(
            "SELECT subscriber_id, item_id, item_updated_at FROM delivered_items
             WHERE subscriber_id IN ({}) AND item_id IN ({}) AND digest_id <> $3",
            backend.json_ids(1),
            backend.json_ids(2),
        );
        let q = sqlx::query(&sql)
            .bind(subscribers.as_str())
            .bind(items.as_str())
            .bind(except_digest.unwrap_or(0));
        for row in q.fetch_all(executor).await? {
            out.insert((row.try_get(0)?, row.try_get(1)?), from_ts(row.try_get(2)?));
        }
        Ok(out)
    }

    /// The SMTP server took these messages: their rows say so, with what each carried,
    /// in one transaction. The worker records each message as soon as the server has
    /// answered, a few together when several answers arrive at once (a group commit):
    /// the smaller the gap, the smaller the chance that a crash sends one twice.
    ///
    /// A mark counts only for a row still held by the claim the record names (its
    /// lease may have run out, but nobody took it since): the ids of those that were
    /// not, whose marks and items are dropped, are returned.
    async fn mark_sent(
        self,
        conn: &mut AnyConnection,
        sent: &[SentRecord],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        if sent.is_empty() {
            return Ok(Vec::new());
        }
        let now = to_ts(now);
        let (deliveries, items) = sent_payloads(sent)?;
        let backend = self.store.backend;
        if backend.runs_batches() {
            // The whole transaction in one request to the connection's thread, instead of
            // five: a group is often a handful of messages.
            let statements = sent_statements(backend, 3);
            let sql = format!(
                "{}; {}; COMMIT",
                backend.begin_write(),
                statements.join("; ")
            );
            let done = sqlx::query(&sql)
                .bind(deliveries.as_str())
                .bind(now)
                .bind(items.as_str())
                .fetch_all(&mut *conn)
                .await;
            match done {
                Ok(rows) => lost_ids(rows.first()),
                Err(e) => {
                    // Nothing of the group stays: the caller drops this connection too.
                    let _ = conn.execute("ROLLBACK").await;
                    Err(e.into())
                }
            }
        } else {
            let statements = sent_statements(backend, 1);
            let mut tx = conn.begin_with(backend.begin_write()).await?;
            sqlx::query(&statements[0])
                .bind(deliveries.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&statements[1])
                .bind(deliveries.as_str())
                .execute(&mut *tx)
                .await?;
            sqlx::query(&statements[2])
                .bind(items.as_str())
                .execute(&mut *tx)
                .await?;
            let lost = sqlx::query(&statements[3])
                .bind(deliveries.as_str())
                .fetch_optional(&mut *tx)
                .await?;
            tx.commit().await?;
            lost_ids(lost.as_ref())
        }
    }

    /// Nothing new for this subscriber: every item was sent to them before, unchanged.
    /// False when `claim` no longer holds the row (another worker took it): nothing
    /// is recorded then.
    pub async fn mark_skipped(
        self,
        delivery_id: i64,
        claim: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.skip(
            delivery_id,
            claim,
            "every item was sent to this subscriber before",
            false,
            now,
        )
        .await
    }

    /// Not sent: the reader's local send time and the list's grace period had passed
    /// when the delivery was first taken (`reason` says when it was due). False when
    /// `claim` no longer holds the row.
    pub async fn mark_missed(
        self,
        delivery_id: i64,
        claim: &str,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.skip(delivery_id, claim, reason, true, now).await
    }

    async fn skip(
        self,
        delivery_id: i64,
        claim: &str,
        reason: &str,
        missed: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'skipped', lease_until = NULL, updated_at = $1,
                 last_error = $4, missed = $5
             WHERE id = $2 AND claimed_by = $3 AND status = 'pending'",
        )
        .bind(to_ts(now))
        .bind(delivery_id)
        .bind(claim)
        .bind(reason)
        .bind(i64::from(missed))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A temporary failure: back to pending, due again `retry_secs` from now on the
    /// database's clock. False when `claim` no longer holds the row.
    pub async fn mark_retry(
        self,
        delivery_id: i64,
        claim: &str,
        error: &str,
        retry_secs: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let db_now = self.store.db_now_secs();
        let done = sqlx::query(&format!(
            "UPDATE deliveries SET status = 'pending', lease_until = NULL, claimed_by = NULL, last_error = $1,
                 next_attempt_at = {db_now} + $2, updated_at = $3
             WHERE id = $4 AND claimed_by = $5 AND status = 'pending'"
        ))
        .bind(error)
        .bind(retry_secs)
        .bind(to_ts(now))
        .bind(delivery_id)
        .bind(claim)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives up on a delivery. A permanent failure counts towards the subscriber's
    /// bounces: `bounce_after` of them in a row and the subscriber is marked bounced.
    /// Returns whether that happened, or `None` when `claim` no longer holds the row
    /// (nothing is recorded then).
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_failed(
        self,
        delivery_id: i64,
        claim: &str,
        subscriber_id: i64,
        error: &str,
        permanent: bool,
        bounce_after: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<bool>> {
        let mut tx = self.store.write_tx().await?;
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'failed', lease_until = NULL, last_error = $1, permanent_failure = $2,
                 updated_at = $3
             WHERE id = $4 AND claimed_by = $5 AND status = 'pending'",
        )
        .bind(error)
        .bind(i64::from(permanent))
        .bind(to_ts(now))
        .bind(delivery_id)
        .bind(claim)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.commit().await?;
            return Ok(None);
        }
        let mut bounced = false;
        if permanent {
            // Counted per subscriber and reset by any delivery that goes through, so
            // `bounce_after` permanent failures in a row mark the address bounced.
            let failures: i64 = sqlx::query_scalar(
                "UPDATE subscribers SET permanent_failures = permanent_failures + 1 WHERE id = $1 RETURNING permanent_failures",
            )
            .bind(subscriber_id)
            .fetch_one(&mut *tx)
            .await?;
            People::record(&mut tx, subscriber_id, now, "delivery failed", error).await?;
            if failures >= i64::from(bounce_after) {
                let changed = sqlx::query(
                    "UPDATE subscribers SET status = 'bounced', updated_at = $1 WHERE id = $2 AND status = 'confirmed'",
                )
                .bind(to_ts(now))
                .bind(subscriber_id)
                .execute(&mut *tx)
                .await?;
                if changed.rows_affected() == 1 {
                    People::record(
                        &mut tx,
                        subscriber_id,
                        now,
                        "bounced",
                        &format!("{failures} permanent failures in a row"),
                    )
                    .await?;
                    bounced = true;
                }
            }
        }
        tx.commit().await?;
        Ok(Some(bounced))
    }
}

/// The `LIKE` pattern of every claim of `worker`.
fn claims_of(worker: &str) -> String {
    format!("{worker}:%")
}

/// The ids in the one-row answer of the last statement of a mark (a JSON array).
fn lost_ids(row: Option<&sqlx::any::AnyRow>) -> StoreResult<Vec<i64>> {
    let lost: Option<String> = match row {
        Some(row) => row.try_get(0)?,
        None => None,
    };
    Ok(serde_json::from_str(lost.as_deref().unwrap_or("[]")).context("reading lost marks")?)
}

/// The rows of a group of sent messages as the two JSON arrays its statements read:
/// (delivery, message id, subscriber, link hash) per message, and (subscriber, item,
/// digest, item's `updated_at`) per item sent. The statements' text is the same
/// whatever their number, so each is prepared once per connection, and one parameter
/// is bound instead of hundreds.
fn sent_payloads(sent: &[SentRecord]) -> StoreResult<(String, String)> {
    let deliveries = serde_json::to_string(
        &sent
            .iter()
            .map(|r| {
                (
                    r.delivery_id,
                    r.message_id.as_str(),
                    r.subscriber_id,
                    r.link_hash.as_str(),
                    r.claim.as_str(),
                )
            })
            .collect::<Vec<_>>(),
    )
    .context("listing sent deliveries")?;
    // What each subscriber got of each item; the last wins when one message of a
    // group repeats another's item for the same reader (two lists' digests).
    let mut items: HashMap<(i64, i64), (i64, i64, i64, &str)> = HashMap::new();
    for r in sent {
        for (item, at) in &r.items {
            items.insert(
                (r.subscriber_id, *item),
                (r.digest_id, to_ts(*at), r.delivery_id, r.claim.as_str()),
            );
        }
    }
    let items = serde_json::to_string(
        &items
            .into_iter()
            .map(|((subscriber, item), (digest, at, delivery, claim))| {
                (subscriber, item, digest, at, delivery, claim)
            })
            .collect::<Vec<_>>(),
    )
    .context("listing delivered items")?;
    Ok((deliveries, items))
}

/// The statements that record a group as sent: the deliveries (the first array as
/// `$1`, the time `$2`) still held by the claim each names, their readers' bounce
/// counts, what each reader was sent (the second array as `$items`), for those rows
/// only; and last the ids of the deliveries whose marks were dropped, as one JSON array.
fn sent_statements(backend: Backend, items: usize) -> [String; 4] {
    let (elements, int) = (backend.json_rows(1), backend.json_int());
    [
        format!(
            "UPDATE deliveries SET status = 'sent', sent_at = $2, updated_at = $2, lease_until = NULL,
                 last_error = NULL, message_id = v.value ->> 1, link_hash = v.value ->> 3
             FROM {elements}
             WHERE deliveries.id = (v.value ->> 0){int} AND deliveries.claimed_by = v.value ->> 4
                 AND deliveries.status = 'pending'"
        ),
        format!(
            "UPDATE subscribers SET permanent_failures = 0
             WHERE permanent_failures > 0 AND id IN (SELECT (v.value ->> 2){int} FROM {elements})"
        ),
        format!(
            "INSERT INTO delivered_items (subscriber_id, item_id, digest_id, item_updated_at)
             SELECT (v.value ->> 0){int}, (v.value ->> 1){int}, (v.value ->> 2){int}, (v.value ->> 3){int}
             FROM {} JOIN deliveries d ON d.id = (v.value ->> 4){int}
             WHERE d.status = 'sent' AND d.claimed_by = v.value ->> 5
             ON CONFLICT (subscriber_id, item_id) DO UPDATE SET
                 digest_id = excluded.digest_id, item_updated_at = excluded.item_updated_at",
            backend.json_rows(items)
        ),
        format!(
            "SELECT CAST({}(lost.id) AS TEXT) FROM (
                 SELECT (v.value ->> 0){int} AS id FROM {elements}
                 WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.id = (v.value ->> 0){int}
                     AND d.status = 'sent' AND d.claimed_by = v.value ->> 4)
             ) AS lost",
            backend.json_agg()
        ),
    ]
}

/// A delivery worker's own connection for its claims, tokens and marks, which it makes
/// one at a time: taken from the pool once rather than for each statement (a pooled
/// connection is pinged every time it is handed out, one more round trip to the
/// database). With a pool of fewer than three connections it is given back after each
/// use, and it always is when an error leaves its state in doubt or [`release`] is called.
///
/// [`release`]: OutboxConnection::release
pub struct OutboxConnection {
    store: Store,
    conn: Option<PoolConnection<sqlx::Any>>,
    keep: bool,
}

impl OutboxConnection {
    pub fn new(store: Store) -> Self {
        let keep = store.pool.options().get_max_connections() >= 3;
        Self {
            store,
            conn: None,
            keep,
        }
    }

    /// Gives the connection back to the pool.
    pub fn release(&mut self) {
        self.conn = None;
    }

    async fn conn(&mut self) -> StoreResult<&mut PoolConnection<sqlx::Any>> {
        Ok(match &mut self.conn {
            Some(conn) => conn,
            slot @ None => slot.insert(self.store.pool.acquire().await?),
        })
    }

    fn done<T>(&mut self, result: StoreResult<T>) -> StoreResult<T> {
        if result.is_err() || !self.keep {
            self.conn = None;
        }
        result
    }

    /// See [`Outbox::claim`].
    pub async fn claim_deliveries(
        &mut self,
        claim: &str,
        now: DateTime<Utc>,
        lease_secs: i64,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store
            .outbox()
            .claim(conn, claim, now, lease_secs, limit)
            .await;
        self.done(result)
    }

    /// See [`Outbox::relet`].
    pub async fn relet(
        &mut self,
        ids: &[i64],
        claim: &str,
        lease_secs: i64,
    ) -> StoreResult<Vec<i64>> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store.outbox().relet(conn, ids, claim, lease_secs).await;
        self.done(result)
    }

    /// See [`Outbox::hand`].
    pub async fn hand(&mut self, id: i64, claim: &str, hold_secs: i64) -> StoreResult<bool> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store.outbox().hand(conn, id, claim, hold_secs).await;
        self.done(result)
    }

    /// See [`Outbox::take_send_slots`].
    pub async fn take_send_slots(&mut self, count: u32, interval_us: i64) -> StoreResult<i64> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store
            .outbox()
            .take_send_slots(conn, count, interval_us)
            .await;
        self.done(result)
    }

    /// See [`Outbox::delivered_items`].
    pub async fn delivered_items(
        &mut self,
        subscriber_ids: &[i64],
        item_ids: &[i64],
    ) -> StoreResult<HashMap<(i64, i64), DateTime<Utc>>> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store
            .outbox()
            .delivered_items_with(&mut **conn, subscriber_ids, item_ids, None)
            .await;
        self.done(result)
    }

    /// See [`Outbox::mark_sent`].
    pub async fn mark_deliveries_sent(
        &mut self,
        sent: &[SentRecord],
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store.outbox().mark_sent(conn, sent, now).await;
        self.done(result)
    }
}
