//! Counts for monitoring, read at scrape time: what the database holds is the truth
//! every instance shares.

use super::{Store, StoreResult};
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
    /// Deliveries by status (`pending`, `sent`, `failed`, `skipped`, `missed`: skipped past
    /// its reader's grace, `cancelled`).
    pub deliveries: Vec<(String, i64)>,
    /// Pending deliveries whose next attempt is due now (claimed rows are not: their
    /// next attempt is the end of their lease).
    pub due: i64,
    /// Seconds the oldest due row has waited past its next attempt, on the database's
    /// clock (the one leases and due times are written with); 0 when none is due.
    pub oldest_due_age_secs: i64,
}

impl Stats<'_> {
    pub async fn delivery(&self) -> StoreResult<DeliveryStats> {
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
            // A delivery past its reader's grace is stored as skipped and marked missed.
            sqlx::query(
                "SELECT CASE WHEN status = 'skipped' AND missed = 1 THEN 'missed' ELSE status END
                     AS status, COUNT(*) AS n
                 FROM deliveries GROUP BY 1",
            )
            .fetch_all(&mut *conn)
            .await?,
        )?;
        let db_now = self.store.db_now_secs();
        let due = sqlx::query(&format!(
            "SELECT COUNT(*) AS due, COALESCE({db_now} - MIN(next_attempt_at), 0) AS age
             FROM deliveries WHERE status = 'pending' AND next_attempt_at <= {db_now}"
        ))
        .fetch_one(&mut *conn)
        .await?;
        Ok(DeliveryStats {
            digests,
            deliveries,
            due: due.try_get("due")?,
            oldest_due_age_secs: due.try_get::<i64, _>("age")?.max(0),
        })
    }

    /// Connections the pool holds, and how many of them are idle.
    pub fn pool(&self) -> (u32, usize) {
        (self.store.pool.size(), self.store.pool.num_idle())
    }
}
