//! A digest's outbox built a chunk of readers per transaction (resumable, never twice),
//! and the per-recipient rows of old digests pruned with their totals kept.

use super::digests::SEND_LOCAL_FORMAT;
use super::{Digests, Store, StoreResult, from_ts, to_ts};
use crate::domain::{DeliveryCounts, LocalWait, local_instant};
use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Row;

/// `next_attempt_at` of the rows of a digest still being built (9999-12-31): no worker
/// claims them until the build releases them all.
pub const HELD_UNTIL: i64 = 253_402_300_799;
/// `build_cursor` once every delivery exists and the held rows are being released.
const RELEASING: i64 = -1;

/// What a build step reads of its digest: list, status, cursor, local send time (for a
/// reader-local digest) and the list's zone.
type BuildState = (i64, String, Option<i64>, Option<String>, String);

/// When the readers of a reader-local digest are due: its local send time read in each
/// zone (see `domain::local_time`), the list's zone for readers without one.
struct ReaderTimes {
    local: NaiveDateTime,
    /// Seconds: the local time in the list's zone.
    fallback: i64,
}

impl ReaderTimes {
    fn new(local: &str, list_zone: &str) -> StoreResult<Self> {
        let local = NaiveDateTime::parse_from_str(local, SEND_LOCAL_FORMAT)
            .context("a digest's local send time")?;
        let zone: chrono_tz::Tz = list_zone.parse().unwrap_or(chrono_tz::UTC);
        Ok(Self {
            local,
            fallback: to_ts(local_instant(local, zone)),
        })
    }

    /// The due time of each zone that names a known zone, as a JSON array of
    /// `[zone, seconds]` (the others take the list's zone's time).
    fn of_zones(&self, zones: &[Option<String>]) -> StoreResult<String> {
        let times: Vec<(&str, i64)> = zones
            .iter()
            .flatten()
            .filter_map(|name| {
                let zone: chrono_tz::Tz = name.parse().ok()?;
                Some((name.as_str(), to_ts(local_instant(self.local, zone))))
            })
            .collect();
        Ok(serde_json::to_string(&times).context("listing the readers' zones")?)
    }
}

/// Readers of a digest being sent whose copies wait for their local time: see
/// [`Digests::waiting_local_sends`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingSend {
    /// The digest's ISO week, e.g. 2023-W49.
    pub period: String,
    /// Their zone (their own, else their institution's), as stored.
    pub zone: Option<String>,
    /// When their copies are due.
    pub due: DateTime<Utc>,
    pub readers: u64,
}

/// The digests still being built and the finished ones whose rows may be pruned.
impl Digests<'_> {
    /// One step of a digest's build, in one transaction: the deliveries of up to `chunk`
    /// confirmed members after the last one built, or (once every delivery exists) up to
    /// `chunk` held rows released. True while there is more to do.
    ///
    /// A build that fits in one chunk writes its rows due at once, as before. A larger
    /// one writes them held (see [`HELD_UNTIL`]) and releases them at the end, so a build
    /// stopped half-way (a kill, a crash) sends nothing until it is resumed; resumed,
    /// it goes on after the last chunk committed, and the unique (digest, subscriber)
    /// key makes a chunk written twice (two instances resuming at once) harmless.
    pub async fn build_chunk(
        self,
        digest_id: i64,
        chunk: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let backend = self.store.backend;
        let db_now = self.store.db_now_secs();
        let chunk = i64::from(chunk.max(1));
        let now = to_ts(now);
        let mut tx = self.store.write_tx().await?;
        // Locked: builders of the same digest (a resume on another instance) take turns.
        let row: Option<BuildState> = sqlx::query_as(&format!(
            "SELECT g.list_id, g.status, g.build_cursor, g.send_local, l.schedule_timezone
                 FROM digests g JOIN lists l ON l.id = g.list_id WHERE g.id = $1{}",
            backend.for_update()
        ))
        .bind(digest_id)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((list_id, status, Some(cursor), send_local, list_zone)) = row else {
            tx.commit().await?;
            return Ok(false);
        };
        if status != "sending" {
            // Cancelled while it was built: nothing more is built.
            sqlx::query("UPDATE digests SET build_cursor = NULL WHERE id = $1")
                .bind(digest_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(false);
        }
        if cursor == RELEASING {
            // Due now on the database's clock, which the workers' claims read; a
            // reader-local row at its reader's time.
            let released = sqlx::query(&format!(
                "UPDATE deliveries SET next_attempt_at = COALESCE(due_at, {db_now}), updated_at = $2
                 WHERE id IN (
                     SELECT id FROM deliveries
                     WHERE digest_id = $1 AND status = 'pending' AND next_attempt_at = $3 LIMIT $4)"
            ))
            .bind(digest_id)
            .bind(now)
            .bind(HELD_UNTIL)
            .bind(chunk)
            .execute(&mut *tx)
            .await?;
            let more = released.rows_affected() as i64 >= chunk;
            if !more {
                sqlx::query("UPDATE digests SET build_cursor = NULL WHERE id = $1")
                    .bind(digest_id)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            return Ok(more);
        }
        let members = "FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
             WHERE m.list_id = $1 AND m.status = 'confirmed' AND s.status = 'confirmed'
               AND m.subscriber_id > $2";
        let (last, count): (Option<i64>, i64) = sqlx::query_as(&format!(
            "SELECT MAX(subscriber_id), COUNT(*) FROM (
                 SELECT m.subscriber_id {members} ORDER BY m.subscriber_id LIMIT $3) AS c"
        ))
        .bind(list_id)
        .bind(cursor)
        .bind(chunk)
        .fetch_one(&mut *tx)
        .await?;
        let last_chunk = count < chunk;
        if count == 0 && cursor == 0 {
            sqlx::query(
                "UPDATE digests SET status = 'skipped', note = 'no confirmed members', completed_at = $2,
                     build_cursor = NULL WHERE id = $1",
            )
            .bind(digest_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(false);
        }
        if let Some(last) = last {
            // The whole digest in this one transaction: due at once (on the database's
            // clock, which the workers' claims read), or at each reader's time. Else held.
            let whole = last_chunk && cursor == 0;
            match send_local {
                None => {
                    let due = if whole {
                        db_now.to_string()
                    } else {
                        HELD_UNTIL.to_string()
                    };
                    sqlx::query(&format!(
                        "INSERT INTO deliveries (digest_id, subscriber_id, status, next_attempt_at, created_at, updated_at)
                         SELECT $4, m.subscriber_id, 'pending', {due}, $5, $5 {members} AND m.subscriber_id <= $3
                         ON CONFLICT (digest_id, subscriber_id) DO NOTHING"
                    ))
                    .bind(list_id)
                    .bind(cursor)
                    .bind(last)
                    .bind(digest_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                Some(local) => {
                    let times = ReaderTimes::new(&local, &list_zone)?;
                    // The chunk's readers, with their zone (their own, else their
                    // institution's) joined to its due time ($6, a JSON array).
                    let (elements, int) = (backend.json_rows(6), backend.json_int());
                    let readers = |zone_times: &str| {
                        format!(
                            "FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
                                 LEFT JOIN partners p ON p.id = s.partner_id {zone_times}
                             WHERE m.list_id = $1 AND m.status = 'confirmed' AND s.status = 'confirmed'
                               AND m.subscriber_id > $2 AND m.subscriber_id <= $3"
                        )
                    };
                    let zones: Vec<Option<String>> = sqlx::query_scalar(&format!(
                        "SELECT DISTINCT COALESCE(s.timezone, p.timezone) {}",
                        readers("")
                    ))
                    .bind(list_id)
                    .bind(cursor)
                    .bind(last)
                    .fetch_all(&mut *tx)
                    .await?;
                    let zone_times = format!(
                        "LEFT JOIN (SELECT v.value ->> 0 AS zone, (v.value ->> 1){int} AS due FROM {elements}) z
                             ON z.zone = COALESCE(s.timezone, p.timezone)"
                    );
                    // The list's zone's time ($7) for readers with no zone or an unknown one.
                    let next = if whole {
                        "COALESCE(z.due, $7)".to_owned()
                    } else {
                        HELD_UNTIL.to_string()
                    };
                    // In order of due time: the rows a claim takes together (those due
                    // at one time) lie together in the table, as a list-zone digest's do,
                    // rather than one in every few pages when a list's zones are mixed.
                    sqlx::query(&format!(
                        "INSERT INTO deliveries (digest_id, subscriber_id, status, next_attempt_at, due_at,
                             created_at, updated_at)
                         SELECT $4, m.subscriber_id, 'pending', {next}, COALESCE(z.due, $7), $5, $5 {}
                         ORDER BY COALESCE(z.due, $7), m.subscriber_id
                         ON CONFLICT (digest_id, subscriber_id) DO NOTHING",
                        readers(&zone_times)
                    ))
                    .bind(list_id)
                    .bind(cursor)
                    .bind(last)
                    .bind(digest_id)
                    .bind(now)
                    .bind(times.of_zones(&zones)?)
                    .bind(times.fallback)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        let next = match (last_chunk, cursor) {
            (false, _) => last,
            (true, 0) => None,
            (true, _) => Some(RELEASING),
        };
        sqlx::query("UPDATE digests SET build_cursor = $2 WHERE id = $1")
            .bind(digest_id)
            .bind(next)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(next.is_some())
    }

    /// When the next of a digest's waiting deliveries is due, and the error its last try
    /// met (`None` when nothing waits).
    pub async fn next_try(
        self,
        digest_id: i64,
    ) -> StoreResult<Option<(DateTime<Utc>, Option<String>)>> {
        let row: Option<(i64, Option<String>)> = sqlx::query_as(
            "SELECT next_attempt_at, last_error FROM deliveries
             WHERE digest_id = $1 AND status = 'pending' AND claimed_by IS NULL
             ORDER BY next_attempt_at LIMIT 1",
        )
        .bind(digest_id)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.map(|(at, error)| (from_ts(at), error)))
    }

    /// The digest's deliveries that wait for their reader's local time: pending, held
    /// by no worker, with `due_at` still ahead on the database's clock (a digest still
    /// being built has none). `None` when none waits.
    pub async fn waiting_for_local_time(self, digest_id: i64) -> StoreResult<Option<LocalWait>> {
        let now = self.store.db_now_secs();
        let (count, next, db_now): (i64, Option<i64>, i64) = sqlx::query_as(&format!(
            "SELECT COUNT(*), MIN(next_attempt_at), {now} FROM deliveries
             WHERE digest_id = $1 AND status = 'pending' AND claimed_by IS NULL
               AND due_at > {now} AND next_attempt_at < $2"
        ))
        .bind(digest_id)
        .bind(HELD_UNTIL)
        .fetch_one(&self.store.pool)
        .await?;
        Ok(next.filter(|_| count > 0).map(|next| LocalWait {
            count: count as u64,
            next_due: from_ts(next),
            now: from_ts(db_now),
        }))
    }

    /// A list's reader-local deliveries that still wait for their reader's time, of its
    /// digests being sent now: per digest (its period), zone of the reader (their own,
    /// else their institution's; `None` for neither) and due time (`due_at`, ahead on
    /// the database's clock), how many. By period, then earliest first. One query.
    pub async fn waiting_local_sends(self, list_id: i64) -> StoreResult<Vec<WaitingSend>> {
        let now = self.store.db_now_secs();
        let rows: Vec<(String, Option<String>, i64, i64)> = sqlx::query_as(&format!(
            "SELECT g.period, COALESCE(s.timezone, p.timezone), d.due_at, COUNT(*)
             FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 JOIN subscribers s ON s.id = d.subscriber_id
                 LEFT JOIN partners p ON p.id = s.partner_id
             WHERE g.list_id = $1 AND g.status = 'sending' AND g.send_local IS NOT NULL
               AND d.status = 'pending' AND d.due_at > {now}
             GROUP BY g.period, COALESCE(s.timezone, p.timezone), d.due_at
             ORDER BY g.period, d.due_at"
        ))
        .bind(list_id)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(period, zone, due, readers)| WaitingSend {
                period,
                zone,
                due: from_ts(due),
                readers: readers.max(0) as u64,
            })
            .collect())
    }

    /// Digests whose build has not ended (it stopped, or runs elsewhere right now).
    pub async fn unbuilt(self) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM digests WHERE build_cursor IS NOT NULL AND status = 'sending' ORDER BY id",
        )
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// The totals kept for a pruned digest (`None` while its rows are kept).
    pub(super) async fn kept_counts(self, digest_id: i64) -> StoreResult<Option<DeliveryCounts>> {
        let row = sqlx::query(
            "SELECT sent_count, failed_count, skipped_count, cancelled_count, missed_count FROM digests
             WHERE id = $1 AND pruned_at IS NOT NULL",
        )
        .bind(digest_id)
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let n = |i: usize| -> StoreResult<u64> { Ok(row.try_get::<i64, _>(i)?.max(0) as u64) };
        Ok(Some(DeliveryCounts {
            sent: n(0)?,
            failed: n(1)?,
            skipped: n(2)?,
            cancelled: n(3)?,
            missed: n(4)?,
            ..DeliveryCounts::default()
        }))
    }

    /// Finished digests completed before `before` whose per-recipient rows are kept,
    /// oldest first.
    pub async fn prunable(self, before: DateTime<Utc>, limit: u32) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT id FROM digests
             WHERE pruned_at IS NULL AND build_cursor IS NULL
               AND status IN ('sent', 'skipped', 'missed', 'cancelled') AND completed_at < $1
             ORDER BY completed_at, id LIMIT $2",
        )
        .bind(to_ts(before))
        .bind(i64::from(limit))
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// Keeps a finished digest's totals in its own row and marks it pruned, so that its
    /// deliveries may go. False when it is not finished (a retry put it back to sending)
    /// or was sealed already.
    pub async fn seal(self, digest_id: i64, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut tx = self.store.write_tx().await?;
        let status: Option<String> = sqlx::query_scalar(&format!(
            "SELECT status FROM digests WHERE id = $1 AND pruned_at IS NULL AND build_cursor IS NULL{}",
            self.store.backend.for_update()
        ))
        .bind(digest_id)
        .fetch_optional(&mut *tx)
        .await?;
        if !matches!(
            status.as_deref(),
            Some("sent" | "skipped" | "missed" | "cancelled")
        ) {
            tx.commit().await?;
            return Ok(false);
        }
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT CASE WHEN missed = 1 THEN 'missed' ELSE status END, COUNT(*) FROM deliveries
             WHERE digest_id = $1 GROUP BY CASE WHEN missed = 1 THEN 'missed' ELSE status END",
        )
        .bind(digest_id)
        .fetch_all(&mut *tx)
        .await?;
        let count = |s: &str| {
            rows.iter()
                .filter(|(status, _)| status == s)
                .map(|(_, n)| *n)
                .sum::<i64>()
        };
        sqlx::query(
            "UPDATE digests SET pruned_at = $2, sent_count = $3, failed_count = $4, skipped_count = $5,
                 cancelled_count = $6, missed_count = $7 WHERE id = $1",
        )
        .bind(digest_id)
        .bind(to_ts(now))
        .bind(count("sent"))
        .bind(count("failed"))
        .bind(count("skipped"))
        // A row left pending in a finished digest is one that will never go.
        .bind(count("cancelled") + count("pending"))
        .bind(count("missed"))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Pruned digests that still have per-recipient rows (a prune that stopped half-way).
    pub async fn sealed_with_rows(self) -> StoreResult<Vec<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT g.id FROM digests g WHERE g.pruned_at IS NOT NULL
               AND EXISTS (SELECT 1 FROM deliveries d WHERE d.digest_id = g.id) ORDER BY g.id",
        )
        .fetch_all(&self.store.pool)
        .await?)
    }

    /// Deletes up to `batch` deliveries of a pruned digest; how many went.
    pub async fn delete_deliveries(self, digest_id: i64, batch: u32) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM deliveries WHERE id IN (
                 SELECT d.id FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 WHERE d.digest_id = $1 AND g.pruned_at IS NOT NULL LIMIT $2)",
        )
        .bind(digest_id)
        .bind(i64::from(batch))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// The largest subscriber id in `delivered_items` (0 when it is empty).
    pub async fn delivered_items_end(self) -> StoreResult<i64> {
        let max: Option<i64> = sqlx::query_scalar("SELECT MAX(subscriber_id) FROM delivered_items")
            .fetch_one(&self.store.pool)
            .await?;
        Ok(max.unwrap_or(0))
    }

    /// Forgets what readers with ids in `(after, upto]` were sent by digests that were
    /// pruned (or deleted), except events still to come, which a later digest may show
    /// again as "coming up". Walks the table's key a range of readers at a time.
    pub async fn delete_delivered_items(
        self,
        after: i64,
        upto: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM delivered_items
             WHERE subscriber_id > $1 AND subscriber_id <= $2
               AND digest_id NOT IN (SELECT id FROM digests WHERE pruned_at IS NULL)
               AND item_id NOT IN (SELECT id FROM items WHERE event_starts_at >= $3)",
        )
        .bind(after)
        .bind(upto)
        .bind(to_ts(now))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Held while one instance prunes: on PostgreSQL a transaction-scoped advisory lock on a
/// connection of its own (the database decides who prunes; a process that dies lets go
/// with its connection). On SQLite, which one process serves, nothing.
pub struct Exclusive {
    _tx: Option<sqlx::Transaction<'static, sqlx::Any>>,
}

impl Exclusive {
    /// Lets the lock go now. Dropping it lets go too, but only once the pool's
    /// connection has rolled back its transaction, which may be later.
    pub async fn release(self) {
        if let Some(tx) = self._tx
            && let Err(e) = tx.rollback().await
        {
            tracing::warn!(error = %e, "releasing a database lock");
        }
    }
}

impl Store {
    /// The lock named `key`, when no other session holds it; `None` when one does.
    pub async fn try_exclusive(&self, key: i64) -> StoreResult<Option<Exclusive>> {
        if !self.backend.locks_rows() {
            return Ok(Some(Exclusive { _tx: None }));
        }
        let mut tx = self.pool.begin().await?;
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1)")
            .bind(key)
            .fetch_one(&mut *tx)
            .await?;
        Ok(got.then_some(Exclusive { _tx: Some(tx) }))
    }
}
