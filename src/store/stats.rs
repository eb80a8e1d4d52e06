//! Counts for monitoring, read at scrape time: what the database holds is the truth
//! every instance shares.

use super::{Store, StoreResult, to_ts};
use chrono::{DateTime, Utc};
use sqlx::Row;

/// Digests, deliveries and the outbox: `store.stats()`.
#[derive(Clone, Copy)]
pub struct Stats<'a> {
    pub(super) store: &'a Store,
}

/// The delivery state of the whole database at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryStats {
    /// Digests by status (`sending`, `sent`, `skipped`, `missed`, `cancelled`).
    pub digests: Vec<(String, i64)>,
    /// Deliveries by status (`pending`, `sent`, `failed`, `skipped`, `cancelled`).
    pub deliveries: Vec<(String, i64)>,
    /// Pending deliveries whose next attempt is due now (claimed rows are not: their
    /// next attempt is the end of their lease).
    pub due: i64,
    /// The oldest next attempt among the due rows.
    pub oldest_due: Option<DateTime<Utc>>,
}

impl Stats<'_> {
    pub async fn delivery(&self, now: DateTime<Utc>) -> StoreResult<DeliveryStats> {
        let mut conn = self.store.pool.acquire().await?;
        let by_status = |rows: Vec<sqlx::any::AnyRow>| -> StoreResult<Vec<(String, i64)>> {
            rows.iter()
                .map(|r| -> StoreResult<(String, i64)> {
                    Ok((r.try_get("status")?, r.try_get("n")?))
                })
                .collect()
        };
        let digests = by_status(
            sqlx::query("SELECT status, COUNT(*) AS n FROM digests GROUP BY status")
                .fetch_all(&mut *conn)
                .await?,
        )?;
        let deliveries = by_status(
            sqlx::query("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status")
                .fetch_all(&mut *conn)
                .await?,
        )?;
        let due = sqlx::query(
            "SELECT COUNT(*) AS due, MIN(next_attempt_at) AS oldest FROM deliveries
             WHERE status = 'pending' AND next_attempt_at <= $1",
        )
        .bind(to_ts(now))
        .fetch_one(&mut *conn)
        .await?;
        Ok(DeliveryStats {
            digests,
            deliveries,
            due: due.try_get("due")?,
            oldest_due: due.try_get::<Option<i64>, _>("oldest")?.map(super::from_ts),
        })
    }

    /// Connections the pool holds, and how many of them are idle.
    pub fn pool(&self) -> (u32, usize) {
        (self.store.pool.size(), self.store.pool.num_idle())
    }
}
