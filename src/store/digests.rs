//! The digests aggregate: a list's digest for a period, the items it holds, how its
//! deliveries stand, and what each subscriber was sent.

use super::content::ITEM_COLUMNS;
use super::{ContentChange, Store, StoreError, StoreResult, from_ts, to_ts};
use crate::domain::{
    DeliveryCounts, DeliveryRecord, Digest, DigestStatus, DigestTrigger, DigestWindow,
    FailedDelivery, Section, Selection,
};
use anyhow::Context;
use chrono::{DateTime, NaiveDateTime, Utc};
use sqlx::Row;

/// How a reader-local digest's local send time is stored (`2023-11-06T08:00:00`).
pub(super) const SEND_LOCAL_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// Digests and their deliveries' state: `store.digests()`.
#[derive(Clone, Copy)]
pub struct Digests<'a> {
    pub(super) store: &'a Store,
}

pub enum Created {
    New(Digest),
    /// Another tick, instance or admin made it first.
    Existing(Digest),
}

fn digest_from_row(row: &sqlx::any::AnyRow) -> anyhow::Result<Digest> {
    Ok(Digest {
        id: row.try_get("id")?,
        list_id: row.try_get("list_id")?,
        period: row.try_get("period")?,
        period_start: from_ts(row.try_get("period_start")?),
        period_end: from_ts(row.try_get("period_end")?),
        news_since: from_ts(row.try_get("news_since")?),
        status: DigestStatus::parse(&row.try_get::<String, _>("status")?)
            .map_err(anyhow::Error::msg)?,
        trigger: DigestTrigger::parse(&row.try_get::<String, _>("trigger")?)
            .map_err(anyhow::Error::msg)?,
        scheduled_for: row.try_get::<Option<i64>, _>("scheduled_for")?.map(from_ts),
        created_at: from_ts(row.try_get("created_at")?),
        completed_at: row.try_get::<Option<i64>, _>("completed_at")?.map(from_ts),
        note: row.try_get("note")?,
        building: row.try_get::<Option<i64>, _>("build_cursor")?.is_some(),
        pruned: row.try_get::<Option<i64>, _>("pruned_at")?.is_some(),
        send_local: row
            .try_get::<Option<String>, _>("send_local")?
            .map(|s| NaiveDateTime::parse_from_str(&s, SEND_LOCAL_FORMAT))
            .transpose()
            .context("a digest's local send time")?,
    })
}

/// Category ids a list covers, with all their descendants, as a CTE `covered`.
const COVERED_CTE: &str = "WITH RECURSIVE covered(id) AS (
        SELECT category_id FROM list_categories WHERE list_id = $1
        UNION
        SELECT c.id FROM categories c JOIN covered ON c.parent_id = covered.id
    )";

impl Digests<'_> {
    /// Where the news of a digest starts: the start of the list's last digest that
    /// was (or is being) sent before this one, else a week before this one.
    pub async fn news_since(
        self,
        list_id: i64,
        period_start: DateTime<Utc>,
    ) -> StoreResult<DateTime<Utc>> {
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(period_start) FROM digests
             WHERE list_id = $1 AND period_start < $2 AND status IN ('sending', 'sent')",
        )
        .bind(list_id)
        .bind(to_ts(period_start))
        .fetch_one(&self.store.pool)
        .await?;
        Ok(previous
            .map(from_ts)
            .unwrap_or(period_start - chrono::Duration::days(7)))
    }

    /// The items of a digest: events of the list's categories starting in the period
    /// ("coming up"), and items published from `news_since` until the period began
    /// ("news"). Only what was public when the period began counts, so a digest built
    /// late or again holds the same items as one built on time.
    pub async fn select_items(self, list_id: i64, w: &DigestWindow) -> StoreResult<Selection> {
        let in_list = "i.id IN (SELECT ic.item_id FROM item_categories ic JOIN covered ON covered.id = ic.category_id)";
        let coming = sqlx::query(&format!(
            "{COVERED_CTE} SELECT {ITEM_COLUMNS} FROM items i
             WHERE {in_list} AND i.status = 'published' AND i.published_at <= $2
               AND i.event_starts_at >= $2 AND i.event_starts_at < $3
             ORDER BY i.event_starts_at, i.id"
        ))
        .bind(list_id)
        .bind(to_ts(w.period_start))
        .bind(to_ts(w.period_end))
        .fetch_all(&self.store.pool)
        .await?;
        let news = sqlx::query(&format!(
            "{COVERED_CTE} SELECT {ITEM_COLUMNS} FROM items i
             WHERE {in_list} AND i.status = 'published' AND i.published_at >= $2 AND i.published_at < $3
             ORDER BY i.published_at, i.id"
        ))
        .bind(list_id)
        .bind(to_ts(w.news_since))
        .bind(to_ts(w.period_start))
        .fetch_all(&self.store.pool)
        .await?;
        let coming_up = self.store.content().hydrate(coming).await?;
        let news = self
            .store
            .content()
            .hydrate(news)
            .await?
            .into_iter()
            .filter(|n| !coming_up.iter().any(|c| c.id == n.id))
            .collect();
        Ok(Selection { coming_up, news })
    }

    /// Creates the digest of a list for a period once, with its items; unless it is
    /// skipped, it is left to be built ([`Digests::build_chunk`]: one pending delivery
    /// per confirmed member). A second call for the same list and period, from
    /// anywhere, finds the first one.
    #[allow(clippy::too_many_arguments)]
    pub async fn create(
        self,
        list_id: i64,
        period: &str,
        window: &DigestWindow,
        selection: &Selection,
        min_items: u32,
        trigger: DigestTrigger,
        scheduled_for: Option<DateTime<Utc>>,
        send_local: Option<NaiveDateTime>,
        now: DateTime<Utc>,
    ) -> StoreResult<Created> {
        let mut tx = self.store.write_tx().await?;
        let skipped = selection.len() < min_items as usize;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO digests (list_id, period, period_start, period_end, news_since, status, trigger,
                 scheduled_for, created_at, note, send_local)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
             ON CONFLICT (list_id, period) DO NOTHING RETURNING id",
        )
        .bind(list_id)
        .bind(period)
        .bind(to_ts(window.period_start))
        .bind(to_ts(window.period_end))
        .bind(to_ts(window.news_since))
        .bind(if skipped { "skipped" } else { "sending" })
        .bind(trigger.as_str())
        .bind(scheduled_for.map(to_ts))
        .bind(to_ts(now))
        .bind(if skipped {
            format!("nothing new: {} item(s), the list wants at least {min_items}", selection.len())
        } else {
            String::new()
        })
        .bind(send_local.map(|t| t.format(SEND_LOCAL_FORMAT).to_string()))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            drop(tx);
            let existing = self
                .for_period(list_id, period)
                .await?
                .context("a digest that exists")?;
            return Ok(Created::Existing(existing));
        };
        let sections = selection
            .coming_up
            .iter()
            .map(|i| (i, Section::ComingUp))
            .chain(selection.news.iter().map(|i| (i, Section::News)));
        for (position, (item, section)) in sections.enumerate() {
            sqlx::query("INSERT INTO digest_items (digest_id, item_id, section, position) VALUES ($1, $2, $3, $4)")
                .bind(id)
                .bind(item.id)
                .bind(section.as_str())
                .bind(position as i64)
                .execute(&mut *tx)
                .await?;
        }
        if !skipped {
            // Its deliveries are made by `build_chunk`, a chunk of readers at a time.
            sqlx::query("UPDATE digests SET build_cursor = 0 WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let change = ContentChange::Digests(list_id);
        self.store.notify_in(&mut tx, &change, None).await?;
        tx.commit().await?;
        self.store.announce_local(change, None);
        let digest = self.by_id(id).await?.context("reading back a digest")?;
        Ok(Created::New(digest))
    }

    /// Records a schedule window that passed while the service was down, beyond its
    /// grace period. Nothing is sent for it.
    pub async fn record_missed(
        self,
        list_id: i64,
        period: &str,
        window: &DigestWindow,
        scheduled_for: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "INSERT INTO digests (list_id, period, period_start, period_end, news_since, status, trigger,
                 scheduled_for, created_at, completed_at, note)
             VALUES ($1, $2, $3, $4, $5, 'missed', 'schedule', $6, $7, $7, $8)
             ON CONFLICT (list_id, period) DO NOTHING",
        )
        .bind(list_id)
        .bind(period)
        .bind(to_ts(window.period_start))
        .bind(to_ts(window.period_end))
        .bind(to_ts(window.news_since))
        .bind(to_ts(scheduled_for))
        .bind(to_ts(now))
        .bind(format!("the service was not running at {scheduled_for} and the grace period has passed"))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn by_id(self, id: i64) -> StoreResult<Option<Digest>> {
        let row = sqlx::query("SELECT * FROM digests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.as_ref().map(digest_from_row).transpose()?)
    }

    pub async fn for_period(self, list_id: i64, period: &str) -> StoreResult<Option<Digest>> {
        let row = sqlx::query("SELECT * FROM digests WHERE list_id = $1 AND period = $2")
            .bind(list_id)
            .bind(period)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.as_ref().map(digest_from_row).transpose()?)
    }

    /// Digests of a list (or all), newest period first.
    pub async fn list(self, list_id: Option<i64>, limit: u32) -> StoreResult<Vec<Digest>> {
        let rows = sqlx::query("SELECT * FROM digests WHERE ($1 IS NULL OR list_id = $1) ORDER BY period_start DESC, id DESC LIMIT $2")
            .bind(list_id)
            .bind(i64::from(limit))
            .fetch_all(&self.store.pool)
            .await?;
        Ok(rows
            .iter()
            .map(digest_from_row)
            .collect::<anyhow::Result<_>>()?)
    }

    /// The items of a stored digest, by section, in order.
    pub async fn items(self, digest_id: i64) -> StoreResult<Selection> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS}, d.section FROM digest_items d JOIN items i ON i.id = d.item_id
             WHERE d.digest_id = $1 ORDER BY d.position"
        ))
        .bind(digest_id)
        .fetch_all(&self.store.pool)
        .await?;
        let sections: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("section"))
            .collect::<Result<_, _>>()?;
        let items = self.store.content().hydrate(rows).await?;
        let mut selection = Selection::default();
        for (item, section) in items.into_iter().zip(sections) {
            if section == "coming_up" {
                selection.coming_up.push(item);
            } else {
                selection.news.push(item);
            }
        }
        Ok(selection)
    }

    pub async fn delivery_counts(self, digest_id: i64) -> StoreResult<DeliveryCounts> {
        if let Some(kept) = self.kept_counts(digest_id).await? {
            return Ok(kept);
        }
        let missed: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM deliveries WHERE digest_id = $1 AND status = 'skipped' AND missed = 1",
        )
        .bind(digest_id)
        .fetch_one(&self.store.pool)
        .await?;
        let missed = missed.max(0) as u64;
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM deliveries WHERE digest_id = $1 GROUP BY status",
        )
        .bind(digest_id)
        .fetch_all(&self.store.pool)
        .await?;
        let mut c = DeliveryCounts::default();
        for row in rows {
            let n = row.try_get::<i64, _>(1)? as u64;
            match row.try_get::<String, _>(0)?.as_str() {
                "pending" => c.pending = n,
                "sent" => c.sent = n,
                "failed" => c.failed = n,
                "skipped" => c.skipped = n,
                _ => c.cancelled = n,
            }
        }
        // Skipped rows whose reader's time and grace had passed are counted apart (read
        // before the others: a row only ever becomes missed, so the skipped rows counted
        // next include every one counted here).
        c.skipped -= missed.min(c.skipped);
        c.missed = missed;
        // A claimed row stays pending (see `Outbox::claim`); its worker's name says
        // it is taken.
        if c.pending > 0 {
            let claimed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries
                 WHERE digest_id = $1 AND status = 'pending' AND claimed_by IS NOT NULL",
            )
            .bind(digest_id)
            .fetch_one(&self.store.pool)
            .await?;
            c.sending = claimed as u64;
            c.pending -= c.sending.min(c.pending);
        }
        Ok(c)
    }

    pub async fn failed_deliveries(
        self,
        digest_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<FailedDelivery>> {
        let rows = sqlx::query(
            "SELECT d.subscriber_id, s.email, d.attempts, d.last_error, d.permanent_failure
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.digest_id = $1 AND d.status = 'failed' ORDER BY s.email_key LIMIT $2",
        )
        .bind(digest_id)
        .bind(i64::from(limit))
        .fetch_all(&self.store.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(FailedDelivery {
                subscriber_id: row.try_get(0)?,
                email: row.try_get(1)?,
                attempts: row.try_get::<i64, _>(2)? as u32,
                error: row.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
                permanent: row.try_get::<i64, _>(4)? != 0,
            });
        }
        Ok(out)
    }

    /// Marks digests whose deliveries have all ended as sent.
    pub async fn complete(self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE digests SET status = 'sent', completed_at = $1
             WHERE status = 'sending' AND build_cursor IS NULL AND NOT EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.status = 'pending')",
        )
        .bind(to_ts(now))
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Failed deliveries go back to pending, due now: those to readers who are still
    /// confirmed and still on the list (a bounced or departed address is not written to
    /// again). A cancelled digest stays cancelled.
    pub async fn retry_failed(self, digest_id: i64, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.store.write_tx().await?;
        let digest: Option<(String, i64)> =
            sqlx::query_as("SELECT CASE WHEN pruned_at IS NULL THEN status ELSE 'pruned' END, list_id FROM digests WHERE id = $1")
                .bind(digest_id)
                .fetch_optional(&mut *tx)
                .await?;
        let list_id = match digest {
            None => return Err(StoreError::NotFound(format!("digest {digest_id}"))),
            Some((status, _)) if status == "cancelled" => {
                return Err(StoreError::Conflict {
                    field: "status".into(),
                    message: "the digest was cancelled; nothing of it is sent again".into(),
                });
            }
            Some((status, _)) if status == "pruned" => {
                return Err(StoreError::Conflict {
                    field: "status".into(),
                    message: "the digest's deliveries were pruned after the retention period"
                        .into(),
                });
            }
            Some((_, list_id)) => list_id,
        };
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'pending', next_attempt_at = $1, attempts = 0, claimed_by = NULL,
                 lease_until = NULL, updated_at = $1
             WHERE digest_id = $2 AND status = 'failed' AND subscriber_id IN (
                 SELECT s.id FROM subscribers s JOIN memberships m ON m.subscriber_id = s.id
                 WHERE m.list_id = $3 AND m.status = 'confirmed' AND s.status = 'confirmed')",
        )
        .bind(to_ts(now))
        .bind(digest_id)
        .bind(list_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() > 0 {
            sqlx::query("UPDATE digests SET status = 'sending', completed_at = NULL WHERE id = $1")
                .bind(digest_id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// Stops a digest: its pending deliveries are cancelled (ones being sent this very
    /// moment finish).
    pub async fn cancel(self, digest_id: i64, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.store.write_tx().await?;
        let digest: Option<(String, i64)> =
            sqlx::query_as("SELECT status, list_id FROM digests WHERE id = $1")
                .bind(digest_id)
                .fetch_optional(&mut *tx)
                .await?;
        let list_id = match digest {
            None => return Err(StoreError::NotFound(format!("digest {digest_id}"))),
            Some((status, list_id)) if status == "sending" => list_id,
            Some((other, _)) => {
                return Err(StoreError::Conflict {
                    field: "status".into(),
                    message: format!("the digest is {other}; only one being sent can be cancelled"),
                });
            }
        };
        // A claimed row whose lease ran out (on the database's clock) is no longer
        // being sent.
        let done = sqlx::query(&format!(
            "UPDATE deliveries SET status = 'cancelled', updated_at = $1
             WHERE digest_id = $2 AND status = 'pending' AND (claimed_by IS NULL OR next_attempt_at <= {})",
            self.store.db_now_secs()
        ))
        .bind(to_ts(now))
        .bind(digest_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE digests SET status = 'cancelled', completed_at = $1, note = 'cancelled by an admin',
                 build_cursor = NULL WHERE id = $2")
            .bind(to_ts(now))
            .bind(digest_id)
            .execute(&mut *tx)
            .await?;
        let change = ContentChange::Digests(list_id);
        self.store.notify_in(&mut tx, &change, None).await?;
        tx.commit().await?;
        self.store.announce_local(change, None);
        Ok(done.rows_affected())
    }

    /// The subscriber's deliveries, newest digest first (at most `limit`).
    pub async fn deliveries_of(
        self,
        subscriber_id: i64,
        limit: u32,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        let rows = sqlx::query(
            "SELECT d.digest_id, l.name, g.period, d.status, d.attempts, d.sent_at, d.last_error,
                    d.permanent_failure
             FROM deliveries d JOIN digests g ON g.id = d.digest_id JOIN lists l ON l.id = g.list_id
             WHERE d.subscriber_id = $1 ORDER BY g.period_start DESC, d.id DESC LIMIT $2",
        )
        .bind(subscriber_id)
        .bind(i64::from(limit))
        .fetch_all(&self.store.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(DeliveryRecord {
                digest_id: row.try_get(0)?,
                list_name: row.try_get(1)?,
                period: row.try_get(2)?,
                status: row.try_get(3)?,
                attempts: row.try_get(4)?,
                sent_at: row.try_get::<Option<i64>, _>(5)?.map(from_ts),
                last_error: row.try_get(6)?,
                permanent_failure: row.try_get::<i64, _>(7)? != 0,
            });
        }
        Ok(out)
    }

    /// The languages of a list's readers (confirmed members, confirmed addresses):
    /// each language tag with how many read it, most readers first.
    pub async fn reader_languages(self, list_id: i64) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT s.language, COUNT(*) FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
             WHERE m.list_id = $1 AND m.status = 'confirmed' AND s.status = 'confirmed'
             GROUP BY s.language ORDER BY COUNT(*) DESC, s.language",
        )
        .bind(list_id)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows.into_iter().map(|(l, n)| (l, n as u64)).collect())
    }

    /// A digest's deliveries by their reader's language (as it is now) and status:
    /// (language, status, how many), by language. Empty once the deliveries are pruned.
    pub async fn delivery_languages(
        self,
        digest_id: i64,
    ) -> StoreResult<Vec<(String, String, u64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT s.language, d.status, COUNT(*) FROM deliveries d
             JOIN subscribers s ON s.id = d.subscriber_id
             WHERE d.digest_id = $1 GROUP BY s.language, d.status ORDER BY s.language, d.status",
        )
        .bind(digest_id)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(l, status, n)| (l, status, n as u64))
            .collect())
    }
}
