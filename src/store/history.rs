//! What the admin pages show of a subscriber's mail: the digests they were sent.

use super::{Store, StoreResult, from_ts};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// One digest delivery to one subscriber.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub digest_id: i64,
    pub list_name: String,
    pub period: String,
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub permanent_failure: bool,
}

impl Store {
    /// The subscriber's deliveries, newest digest first (at most `limit`).
    pub async fn deliveries_of(
        &self,
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
        .fetch_all(&self.pool)
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
}
