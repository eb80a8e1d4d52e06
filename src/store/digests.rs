//! Digests, their items, and the delivery outbox.

use super::content::ITEM_COLUMNS;
use super::people::Subscriber;
use super::{Backend, Store, StoreError, StoreResult, from_ts, to_ts};
use crate::domain::Item;
use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::pool::PoolConnection;
use sqlx::{AnyConnection, Connection, Executor, Row};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestStatus {
    /// Built; deliveries under way.
    Sending,
    /// Every delivery reached an end (sent, failed or skipped).
    Sent,
    /// Nothing new (or nobody to send to): recorded, nothing sent.
    Skipped,
    /// The service was down at the time and the grace period passed.
    Missed,
    Cancelled,
}

impl DigestStatus {
    /// The name stored and shown (`sending`, `sent`, ...), as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Skipped => "skipped",
            Self::Missed => "missed",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "skipped" => Self::Skipped,
            "missed" => Self::Missed,
            "cancelled" => Self::Cancelled,
            _ => anyhow::bail!("unknown digest status {s:?}"),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestTrigger {
    /// The schedule fired on time.
    Schedule,
    /// The schedule's window was caught up after a restart, within the grace period.
    Late,
    /// An admin or the command line.
    Manual,
}

impl DigestTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Late => "late",
            Self::Manual => "manual",
        }
    }

    fn parse(s: &str) -> anyhow::Result<Self> {
        Ok(match s {
            "schedule" => Self::Schedule,
            "late" => Self::Late,
            "manual" => Self::Manual,
            _ => anyhow::bail!("unknown digest trigger {s:?}"),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    ComingUp,
    News,
}

impl Section {
    fn as_str(self) -> &'static str {
        match self {
            Self::ComingUp => "coming_up",
            Self::News => "news",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub id: i64,
    pub list_id: i64,
    pub period: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub news_since: DateTime<Utc>,
    pub status: DigestStatus,
    pub trigger: DigestTrigger,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub note: String,
}

/// Deliveries of a digest by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryCounts {
    pub pending: u64,
    /// Claimed by a worker right now.
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
    pub cancelled: u64,
}

/// What a digest holds, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub coming_up: Vec<Item>,
    pub news: Vec<Item>,
}

impl Selection {
    pub fn len(&self) -> usize {
        self.coming_up.len() + self.news.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The window a digest covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestWindow {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub news_since: DateTime<Utc>,
}

/// A delivery a worker holds.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: i64,
    pub digest_id: i64,
    pub attempts: u32,
    pub subscriber: Subscriber,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelivery {
    pub subscriber_id: i64,
    pub email: String,
    pub attempts: u32,
    pub error: String,
    pub permanent: bool,
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
    /// ([`crate::services::subscriptions::delivery_link_token`]): they work once this is stored.
    pub link_hash: String,
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
        status: DigestStatus::parse(&row.try_get::<String, _>("status")?)?,
        trigger: DigestTrigger::parse(&row.try_get::<String, _>("trigger")?)?,
        scheduled_for: row.try_get::<Option<i64>, _>("scheduled_for")?.map(from_ts),
        created_at: from_ts(row.try_get("created_at")?),
        completed_at: row.try_get::<Option<i64>, _>("completed_at")?.map(from_ts),
        note: row.try_get("note")?,
    })
}

/// Category ids a list covers, with all their descendants, as a CTE `covered`.
const COVERED_CTE: &str = "WITH RECURSIVE covered(id) AS (
        SELECT category_id FROM list_categories WHERE list_id = $1
        UNION
        SELECT c.id FROM categories c JOIN covered ON c.parent_id = covered.id
    )";

impl Store {
    /// Where the news of a digest starts: the start of the list's last digest that
    /// was (or is being) sent before this one, else a week before this one.
    pub async fn news_since(
        &self,
        list_id: i64,
        period_start: DateTime<Utc>,
    ) -> StoreResult<DateTime<Utc>> {
        let previous: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(period_start) FROM digests
             WHERE list_id = $1 AND period_start < $2 AND status IN ('sending', 'sent')",
        )
        .bind(list_id)
        .bind(to_ts(period_start))
        .fetch_one(&self.pool)
        .await?;
        Ok(previous
            .map(from_ts)
            .unwrap_or(period_start - chrono::Duration::days(7)))
    }

    /// The items of a digest: events of the list's categories starting in the period
    /// ("coming up"), and items published from `news_since` until the period began
    /// ("news"). Only what was public when the period began counts, so a digest built
    /// late or again holds the same items as one built on time.
    pub async fn select_digest_items(
        &self,
        list_id: i64,
        w: &DigestWindow,
    ) -> StoreResult<Selection> {
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
        .fetch_all(&self.pool)
        .await?;
        let news = sqlx::query(&format!(
            "{COVERED_CTE} SELECT {ITEM_COLUMNS} FROM items i
             WHERE {in_list} AND i.status = 'published' AND i.published_at >= $2 AND i.published_at < $3
             ORDER BY i.published_at, i.id"
        ))
        .bind(list_id)
        .bind(to_ts(w.news_since))
        .bind(to_ts(w.period_start))
        .fetch_all(&self.pool)
        .await?;
        let coming_up = self.hydrate(coming).await?;
        let news = self
            .hydrate(news)
            .await?
            .into_iter()
            .filter(|n| !coming_up.iter().any(|c| c.id == n.id))
            .collect();
        Ok(Selection { coming_up, news })
    }

    /// Creates the digest of a list for a period once, with its items and one pending
    /// delivery per confirmed member at this moment. A second call for the same list
    /// and period, from anywhere, finds the first one.
    #[allow(clippy::too_many_arguments)]
    pub async fn create_digest(
        &self,
        list_id: i64,
        period: &str,
        window: &DigestWindow,
        selection: &Selection,
        min_items: u32,
        trigger: DigestTrigger,
        scheduled_for: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Created> {
        let mut tx = self.write_tx().await?;
        let skipped = selection.len() < min_items as usize;
        let id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO digests (list_id, period, period_start, period_end, news_since, status, trigger,
                 scheduled_for, created_at, note)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
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
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else {
            drop(tx);
            let existing = self
                .digest_for_period(list_id, period)
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
            let made = sqlx::query(
                "INSERT INTO deliveries (digest_id, subscriber_id, status, next_attempt_at, created_at, updated_at)
                 SELECT $1, s.id, 'pending', $2, $2, $2
                 FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
                 WHERE m.list_id = $3 AND m.status = 'confirmed' AND s.status = 'confirmed'",
            )
            .bind(id)
            .bind(to_ts(now))
            .bind(list_id)
            .execute(&mut *tx)
            .await?;
            if made.rows_affected() == 0 {
                sqlx::query("UPDATE digests SET status = 'skipped', note = 'no confirmed members', completed_at = $2 WHERE id = $1")
                    .bind(id)
                    .bind(to_ts(now))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        let digest = self
            .digest_by_id(id)
            .await?
            .context("reading back a digest")?;
        Ok(Created::New(digest))
    }

    /// Records a schedule window that passed while the service was down, beyond its
    /// grace period. Nothing is sent for it.
    pub async fn record_missed_digest(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn digest_by_id(&self, id: i64) -> StoreResult<Option<Digest>> {
        let row = sqlx::query("SELECT * FROM digests WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(digest_from_row).transpose()?)
    }

    pub async fn digest_for_period(
        &self,
        list_id: i64,
        period: &str,
    ) -> StoreResult<Option<Digest>> {
        let row = sqlx::query("SELECT * FROM digests WHERE list_id = $1 AND period = $2")
            .bind(list_id)
            .bind(period)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(digest_from_row).transpose()?)
    }

    /// Digests of a list (or all), newest period first.
    pub async fn list_digests(&self, list_id: Option<i64>, limit: u32) -> StoreResult<Vec<Digest>> {
        let rows = sqlx::query("SELECT * FROM digests WHERE ($1 IS NULL OR list_id = $1) ORDER BY period_start DESC, id DESC LIMIT $2")
            .bind(list_id)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(digest_from_row)
            .collect::<anyhow::Result<_>>()?)
    }

    /// The items of a stored digest, by section, in order.
    pub async fn digest_items(&self, digest_id: i64) -> StoreResult<Selection> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS}, d.section FROM digest_items d JOIN items i ON i.id = d.item_id
             WHERE d.digest_id = $1 ORDER BY d.position"
        ))
        .bind(digest_id)
        .fetch_all(&self.pool)
        .await?;
        let sections: Vec<String> = rows
            .iter()
            .map(|r| r.try_get("section"))
            .collect::<Result<_, _>>()?;
        let items = self.hydrate(rows).await?;
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

    pub async fn delivery_counts(&self, digest_id: i64) -> StoreResult<DeliveryCounts> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM deliveries WHERE digest_id = $1 GROUP BY status",
        )
        .bind(digest_id)
        .fetch_all(&self.pool)
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
        // A claimed row stays pending (see `claim_deliveries`); its worker's name says
        // it is taken.
        if c.pending > 0 {
            let claimed: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM deliveries
                 WHERE digest_id = $1 AND status = 'pending' AND claimed_by IS NOT NULL",
            )
            .bind(digest_id)
            .fetch_one(&self.pool)
            .await?;
            c.sending = claimed as u64;
            c.pending -= c.sending.min(c.pending);
        }
        Ok(c)
    }

    pub async fn failed_deliveries(
        &self,
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
        .fetch_all(&self.pool)
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

    /// Takes up to `limit` deliveries that are due (pending and due, or held by a
    /// worker whose lease ran out), marks them as this worker's until `lease_until`.
    ///
    /// A claimed row stays `pending`: its lease is its next attempt. It is due again,
    /// to any worker, when the lease runs out, and until then the due rows' index
    /// passes it by. Claiming moves one entry of one index, where a change of status
    /// would move entries in two (and marking it sent later two more).
    async fn claim_deliveries(
        &self,
        conn: &mut AnyConnection,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        // Every result here is one row holding a JSON array: a row costs the database's
        // thread a copy of each value and a hand-over (a wake-up) to ours, and a claim
        // takes a thousand of them.
        let (ids_in, aggregate, array, lock) = match self.backend {
            Backend::Sqlite => (
                "SELECT value FROM json_each($1)",
                "json_group_array",
                "json_array",
                // SQLite has one writer at a time, which the IMMEDIATE transaction is.
                "",
            ),
            // SKIP LOCKED lets instances sharing PostgreSQL take different rows at once.
            Backend::Postgres => (
                "SELECT jsonb_array_elements_text(CAST($1 AS TEXT)::jsonb)::bigint",
                "json_agg",
                "json_build_array",
                "FOR UPDATE SKIP LOCKED",
            ),
        };
        let mut tx = conn.begin_with(self.begin_write()).await?;
        let ids: Option<String> = sqlx::query_scalar(&format!(
            "SELECT CAST({aggregate}(id) AS TEXT) FROM (
                 SELECT id FROM deliveries
                 WHERE status = 'pending' AND next_attempt_at <= $1
                 -- No ORDER BY: the index of pending rows by next_attempt_at yields due
                 -- rows in about that order, and sorting every due row of a large digest
                 -- on each claim would make a send quadratic.
                 LIMIT $2 {lock}
             ) AS due"
        ))
        .bind(to_ts(now))
        .bind(i64::from(limit))
        .fetch_one(&mut *tx)
        .await?;
        let ids = ids.unwrap_or_default();
        let count = serde_json::from_str::<Vec<i64>>(&ids).map_or(0, |ids| ids.len());
        if count == 0 {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        sqlx::query(&format!(
            "UPDATE deliveries SET next_attempt_at = $2, lease_until = $2, claimed_by = $3,
                 attempts = attempts + 1, updated_at = $4
             WHERE id IN ({ids_in})"
        ))
        .bind(ids.as_str())
        .bind(to_ts(lease_until))
        .bind(worker)
        .bind(to_ts(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        // Only what a digest needs of its reader: every column read costs a copy on
        // the database's thread and another on ours.
        let claimed: Option<String> = sqlx::query_scalar(&format!(
            "SELECT CAST({aggregate}({array}(d.id, d.digest_id, d.attempts, s.id, s.email, s.name,
                     p.name, COALESCE(s.timezone, p.timezone), s.language)) AS TEXT)
             FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id
                 LEFT JOIN partners p ON p.id = s.partner_id
             WHERE d.id IN ({ids_in})"
        ))
        .bind(ids.as_str())
        .fetch_one(&mut *conn)
        .await?;
        type Row = (
            i64,
            i64,
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<String>,
            String,
        );
        let rows: Vec<Row> = serde_json::from_str(claimed.as_deref().unwrap_or("[]"))
            .context("reading claimed deliveries")?;
        let mut out: Vec<ClaimedDelivery> = rows
            .into_iter()
            .map(
                |(id, digest_id, attempts, subscriber_id, email, name, partner, zone, language)| {
                    ClaimedDelivery {
                        id,
                        digest_id,
                        attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
                        subscriber: Subscriber {
                            id: subscriber_id,
                            email,
                            name,
                            partner_name: partner,
                            partner_timezone: zone,
                            language,
                            ..Subscriber::blank(now)
                        },
                    }
                },
            )
            .collect();
        out.sort_unstable_by_key(|c| c.id);
        Ok(out)
    }

    /// Gives back the rows a stopping worker holds but did not send: due at once.
    pub async fn release_claims(&self, worker: &str, now: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $1, lease_until = NULL, claimed_by = NULL, attempts = attempts - 1
             WHERE status = 'pending' AND next_attempt_at > $1 AND claimed_by = $2 AND lease_until IS NOT NULL",
        )
        .bind(to_ts(now))
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Keeps this worker's rows from being taken by others while it works on them
    /// (rows whose lease ran out may be another's by now, and are left alone).
    pub async fn renew_leases(
        &self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET next_attempt_at = $1, lease_until = $1
             WHERE status = 'pending' AND next_attempt_at > $2 AND claimed_by = $3 AND lease_until IS NOT NULL",
        )
        .bind(to_ts(lease_until))
        .bind(to_ts(now))
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// What each of these subscribers was last sent of these items: (subscriber, item)
    /// to the item's `updated_at` then.
    /// Items sent by `except_digest` itself do not count (for previews of a digest
    /// that went out already).
    pub async fn delivered_items(
        &self,
        subscriber_ids: &[i64],
        item_ids: &[i64],
        except_digest: Option<i64>,
    ) -> StoreResult<HashMap<(i64, i64), DateTime<Utc>>> {
        self.delivered_items_with(&self.pool, subscriber_ids, item_ids, except_digest)
            .await
    }

    async fn delivered_items_with<'c>(
        &self,
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
        let ids_in = |n: usize| match self.backend {
            Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Backend::Postgres => {
                format!("SELECT jsonb_array_elements_text(CAST(${n} AS TEXT)::jsonb)::bigint")
            }
        };
        let sql = format!(
            "SELECT subscriber_id, item_id, item_updated_at FROM delivered_items
             WHERE subscriber_id IN ({}) AND item_id IN ({}) AND digest_id <> $3",
            ids_in(1),
            ids_in(2),
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
    async fn mark_deliveries_sent(
        &self,
        conn: &mut AnyConnection,
        sent: &[SentRecord],
        worker: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if sent.is_empty() {
            return Ok(());
        }
        let now = to_ts(now);
        // The rows go in as one JSON array per statement: the statements' text is the
        // same whatever their number, so each is prepared once per connection, and one
        // parameter is bound instead of hundreds.
        let deliveries = serde_json::to_string(
            &sent
                .iter()
                .map(|r| {
                    (
                        r.delivery_id,
                        r.message_id.as_str(),
                        r.subscriber_id,
                        r.link_hash.as_str(),
                    )
                })
                .collect::<Vec<_>>(),
        )
        .context("listing sent deliveries")?;
        // What each subscriber got of each item; the last wins when one message of a
        // group repeats another's item for the same reader (two lists' digests).
        let mut items: HashMap<(i64, i64), (i64, i64)> = HashMap::new();
        for r in sent {
            for (item, at) in &r.items {
                items.insert((r.subscriber_id, *item), (r.digest_id, to_ts(*at)));
            }
        }
        let items = serde_json::to_string(
            &items
                .into_iter()
                .map(|((subscriber, item), (digest, at))| (subscriber, item, digest, at))
                .collect::<Vec<_>>(),
        )
        .context("listing delivered items")?;
        let (elements, int) = match self.backend {
            Backend::Sqlite => ("json_each($1) AS v", ""),
            Backend::Postgres => (
                "jsonb_array_elements(CAST($1 AS TEXT)::jsonb) AS v(value)",
                "::bigint",
            ),
        };
        let statements = [
            format!(
                "UPDATE deliveries SET status = 'sent', sent_at = $2, updated_at = $2, lease_until = NULL,
                     last_error = NULL, message_id = v.value ->> 1, link_hash = v.value ->> 3
                 FROM {elements}
                 WHERE deliveries.id = (v.value ->> 0){int} AND deliveries.claimed_by = $3"
            ),
            format!(
                "UPDATE subscribers SET permanent_failures = 0
                 WHERE permanent_failures > 0 AND id IN (SELECT (v.value ->> 2){int} FROM {elements})"
            ),
            format!(
                "INSERT INTO delivered_items (subscriber_id, item_id, digest_id, item_updated_at)
                 SELECT (v.value ->> 0){int}, (v.value ->> 1){int}, (v.value ->> 2){int}, (v.value ->> 3){int}
                 FROM {} WHERE true
                 ON CONFLICT (subscriber_id, item_id) DO UPDATE SET
                     digest_id = excluded.digest_id, item_updated_at = excluded.item_updated_at",
                elements.replace("$1", "$4")
            ),
        ];
        match self.backend {
            // The whole transaction in one request to the connection's thread, instead of
            // five: a group is often a handful of messages, and each request costs both
            // threads a sleep and a wake-up.
            Backend::Sqlite => {
                let sql = format!("BEGIN IMMEDIATE; {}; COMMIT", statements.join("; "));
                let done = sqlx::query(&sql)
                    .bind(deliveries.as_str())
                    .bind(now)
                    .bind(worker)
                    .bind(items.as_str())
                    .execute(&mut *conn)
                    .await;
                if let Err(e) = done {
                    // Nothing of the group stays: the caller drops this connection too.
                    let _ = conn.execute("ROLLBACK").await;
                    return Err(e.into());
                }
            }
            Backend::Postgres => {
                let mut tx = conn.begin_with(self.begin_write()).await?;
                sqlx::query(&statements[0])
                    .bind(deliveries.as_str())
                    .bind(now)
                    .bind(worker)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&statements[1])
                    .bind(deliveries.as_str())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(&statements[2].replace("$4", "$1"))
                    .bind(items.as_str())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }

    /// Nothing new for this subscriber: every item was sent to them before, unchanged.
    pub async fn mark_delivery_skipped(
        &self,
        delivery_id: i64,
        worker: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', lease_until = NULL, updated_at = $1,
                 last_error = 'every item was sent to this subscriber before'
             WHERE id = $2 AND claimed_by = $3",
        )
        .bind(to_ts(now))
        .bind(delivery_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A temporary failure: back to pending, due again at `retry_at`.
    pub async fn mark_delivery_retry(
        &self,
        delivery_id: i64,
        worker: &str,
        error: &str,
        retry_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'pending', lease_until = NULL, claimed_by = NULL, last_error = $1,
                 next_attempt_at = $2, updated_at = $3
             WHERE id = $4 AND claimed_by = $5",
        )
        .bind(error)
        .bind(to_ts(retry_at))
        .bind(to_ts(now))
        .bind(delivery_id)
        .bind(worker)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Gives up on a delivery. A permanent failure counts towards the subscriber's
    /// bounces: `bounce_after` of them in a row and the subscriber is marked bounced.
    /// Returns true when that happened.
    #[allow(clippy::too_many_arguments)]
    pub async fn mark_delivery_failed(
        &self,
        delivery_id: i64,
        worker: &str,
        subscriber_id: i64,
        error: &str,
        permanent: bool,
        bounce_after: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.write_tx().await?;
        sqlx::query(
            "UPDATE deliveries SET status = 'failed', lease_until = NULL, last_error = $1, permanent_failure = $2,
                 updated_at = $3
             WHERE id = $4 AND claimed_by = $5",
        )
        .bind(error)
        .bind(i64::from(permanent))
        .bind(to_ts(now))
        .bind(delivery_id)
        .bind(worker)
        .execute(&mut *tx)
        .await?;
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
            Self::record(&mut tx, subscriber_id, now, "delivery failed", error).await?;
            if failures >= i64::from(bounce_after) {
                let changed = sqlx::query(
                    "UPDATE subscribers SET status = 'bounced', updated_at = $1 WHERE id = $2 AND status = 'confirmed'",
                )
                .bind(to_ts(now))
                .bind(subscriber_id)
                .execute(&mut *tx)
                .await?;
                if changed.rows_affected() == 1 {
                    Self::record(
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
        Ok(bounced)
    }

    /// Marks digests whose deliveries have all ended as sent.
    pub async fn complete_digests(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let done = sqlx::query(
            "UPDATE digests SET status = 'sent', completed_at = $1
             WHERE status = 'sending' AND NOT EXISTS (
                 SELECT 1 FROM deliveries d WHERE d.digest_id = digests.id AND d.status = 'pending')",
        )
        .bind(to_ts(now))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Failed deliveries go back to pending, due now: those to readers who are still
    /// confirmed and still on the list (a bounced or departed address is not written to
    /// again). A cancelled digest stays cancelled.
    pub async fn retry_failed_deliveries(
        &self,
        digest_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let digest: Option<(String, i64)> =
            sqlx::query_as("SELECT status, list_id FROM digests WHERE id = $1")
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
    pub async fn cancel_digest(&self, digest_id: i64, now: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.write_tx().await?;
        let digest: Option<String> = sqlx::query_scalar("SELECT status FROM digests WHERE id = $1")
            .bind(digest_id)
            .fetch_optional(&mut *tx)
            .await?;
        match digest.as_deref() {
            None => return Err(StoreError::NotFound(format!("digest {digest_id}"))),
            Some("sending") => {}
            Some(other) => {
                return Err(StoreError::Conflict {
                    field: "status".into(),
                    message: format!("the digest is {other}; only one being sent can be cancelled"),
                });
            }
        }
        let done = sqlx::query(
            "UPDATE deliveries SET status = 'cancelled', updated_at = $1
             WHERE digest_id = $2 AND status = 'pending' AND (claimed_by IS NULL OR next_attempt_at <= $1)",
        )
        .bind(to_ts(now))
        .bind(digest_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE digests SET status = 'cancelled', completed_at = $1, note = 'cancelled by an admin' WHERE id = $2")
            .bind(to_ts(now))
            .bind(digest_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected())
    }

    /// What begins a transaction that will write: see [`Store::write_tx`].
    fn begin_write(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }
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

    /// See [`Store::claim_deliveries`].
    pub async fn claim_deliveries(
        &mut self,
        worker: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> StoreResult<Vec<ClaimedDelivery>> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store
            .claim_deliveries(conn, worker, now, lease_until, limit)
            .await;
        self.done(result)
    }

    /// See [`Store::delivered_items`].
    pub async fn delivered_items(
        &mut self,
        subscriber_ids: &[i64],
        item_ids: &[i64],
    ) -> StoreResult<HashMap<(i64, i64), DateTime<Utc>>> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store
            .delivered_items_with(&mut **conn, subscriber_ids, item_ids, None)
            .await;
        self.done(result)
    }

    /// See [`Store::mark_deliveries_sent`].
    pub async fn mark_deliveries_sent(
        &mut self,
        sent: &[SentRecord],
        worker: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let store = self.store.clone();
        let conn = self.conn().await?;
        let result = store.mark_deliveries_sent(conn, sent, worker, now).await;
        self.done(result)
    }
}
