//! Limits shared by every instance on one database: request budgets per key (the
//! subscribe form per client address, failed sign-ins per client address, confirmation
//! mails per address), the sign-in lock of every user name (known or not), and work done
//! once per database (the demo). Time is the database's (`now` in SQL on both backends),
//! never an instance's clock, so skewed instances count alike.

use super::{Store, StoreResult};
use sqlx::Row;

/// Shared limits: `store.limits()`.
#[derive(Clone, Copy)]
pub struct Limits<'a> {
    pub(super) store: &'a Store,
}

/// A budget: at most `max` hits per `window_secs` (a fixed window from the first hit),
/// and at least `min_gap_secs` between two hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub max: i64,
    pub window_secs: i64,
    pub min_gap_secs: i64,
}

impl Budget {
    pub const fn per_window(max: i64, window_secs: i64) -> Self {
        Self {
            max,
            window_secs,
            min_gap_secs: 0,
        }
    }
}

/// Where a user name's sign-in lock stands after an attempt was counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameLock {
    /// Counted; not locked (yet).
    Open,
    /// Counted, and this attempt locked the name for so many seconds.
    LockedNow(i64),
    /// Locked already for so many more seconds: nothing counted.
    Locked(i64),
}

/// A name lock row is forgotten this long after its last failure or lock.
const NAME_LOCK_KEEP_SECS: i64 = 24 * 3600;
/// The longest lock of a name.
const NAME_LOCK_MAX_SECS: i64 = 24 * 3600;

impl Limits<'_> {
    fn now(self) -> std::borrow::Cow<'static, str> {
        self.store.db_now_secs()
    }

    /// The database's time, in seconds since 1970.
    pub async fn db_now(self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar::<_, i64>(&format!("SELECT {}", self.now()))
                .fetch_one(&self.store.pool)
                .await?,
        )
    }

    /// Takes one hit of `key`'s budget in `scope` when there is room (then true);
    /// otherwise counts nothing and answers false. One statement: instances taking
    /// hits of the same key at once are serialised by the row.
    pub async fn take(self, scope: &str, key: &str, budget: Budget) -> StoreResult<bool> {
        let now = self.now();
        let taken = sqlx::query(&format!(
            "INSERT INTO rate_limits (scope, key, window_start, hits, last_at, expires_at)
             VALUES ($1, $2, {now}, 1, {now}, {now} + $3)
             ON CONFLICT (scope, key) DO UPDATE SET
                 hits = CASE WHEN rate_limits.expires_at <= {now} THEN 1 ELSE rate_limits.hits + 1 END,
                 window_start = CASE WHEN rate_limits.expires_at <= {now} THEN {now} ELSE rate_limits.window_start END,
                 expires_at = CASE WHEN rate_limits.expires_at <= {now} THEN {now} + $3 ELSE rate_limits.expires_at END,
                 last_at = {now}
             WHERE rate_limits.last_at <= {now} - $5
               AND (rate_limits.expires_at <= {now} OR rate_limits.hits < $4)
             RETURNING hits"
        ))
        .bind(scope)
        .bind(key)
        .bind(budget.window_secs)
        .bind(budget.max)
        .bind(budget.min_gap_secs)
        .fetch_optional(&self.store.pool)
        .await?
        .is_some();
        self.maybe_prune().await;
        Ok(taken)
    }

    /// Counts a hit of `key` in `scope` whatever the count (a window of `window_secs`).
    pub async fn count(self, scope: &str, key: &str, window_secs: i64) -> StoreResult<()> {
        self.take(scope, key, Budget::per_window(i64::MAX, window_secs))
            .await?;
        Ok(())
    }

    /// The hits of `key` in `scope` in its current window (0 when none or ended).
    pub async fn hits(self, scope: &str, key: &str) -> StoreResult<i64> {
        let hits: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT hits FROM rate_limits WHERE scope = $1 AND key = $2 AND expires_at > {}",
            self.now()
        ))
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(hits.unwrap_or(0))
    }

    /// Counts a sign-in attempt for a user name (lower-cased), known or not, *before*
    /// its password is checked. While the name is locked nothing is counted. The
    /// attempt that reaches `lock_after` failures in a row locks it for `lock_for_secs
    /// × 2^(failures − lock_after)` (at most a day). A right password clears it
    /// ([`Limits::clear_name`]).
    pub async fn claim_sign_in(
        self,
        name_key: &str,
        lock_after: i64,
        lock_for_secs: i64,
    ) -> StoreResult<NameLock> {
        let now = self.now();
        let mut tx = self.store.write_tx().await?;
        // The row exists before it is locked, so that two first attempts at once
        // cannot both start from nothing.
        sqlx::query(&format!(
            "INSERT INTO sign_in_locks (name_key, failures, locked_until, expires_at)
             VALUES ($1, 0, NULL, {now} + $2) ON CONFLICT (name_key) DO NOTHING"
        ))
        .bind(name_key)
        .bind(NAME_LOCK_KEEP_SECS)
        .execute(&mut *tx)
        .await?;
        let lock = self.store.backend.for_update();
        let row = sqlx::query(&format!(
            "SELECT failures, locked_until, expires_at, {now} AS now FROM sign_in_locks
             WHERE name_key = $1{lock}"
        ))
        .bind(name_key)
        .fetch_one(&mut *tx)
        .await?;
        let db_now: i64 = row.try_get("now")?;
        // A row past its time but not yet pruned counts as forgotten.
        let forgotten = row.try_get::<i64, _>("expires_at")? <= db_now;
        let (failures, locked_until): (i64, Option<i64>) = if forgotten {
            (0, None)
        } else {
            (row.try_get("failures")?, row.try_get("locked_until")?)
        };
        if let Some(until) = locked_until.filter(|u| *u > db_now) {
            tx.rollback().await?;
            return Ok(NameLock::Locked(until - db_now));
        }
        let failures = failures + 1;
        let lock_secs = (failures >= lock_after).then(|| {
            let doublings = (failures - lock_after).clamp(0, 10) as u32;
            (lock_for_secs * 2i64.pow(doublings)).min(NAME_LOCK_MAX_SECS)
        });
        let until = lock_secs.map(|s| db_now + s);
        sqlx::query(
            "UPDATE sign_in_locks SET failures = $1, locked_until = $2, expires_at = $3
             WHERE name_key = $4",
        )
        .bind(failures)
        .bind(until)
        .bind(until.unwrap_or(db_now) + NAME_LOCK_KEEP_SECS)
        .bind(name_key)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(match lock_secs {
            Some(s) => NameLock::LockedNow(s),
            None => NameLock::Open,
        })
    }

    /// Forgets a name's failures and lock (a right password, a new password).
    pub async fn clear_name(self, name_key: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sign_in_locks WHERE name_key = $1")
            .bind(name_key)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Removes ended windows, forgotten name locks and uploads past their time.
    /// Cheap (each by an index on its expiry); run now and then by [`Limits::take`].
    pub async fn prune(self) -> StoreResult<u64> {
        let now = self.now();
        let mut removed = 0;
        for table in ["rate_limits", "sign_in_locks", "import_spools"] {
            removed += sqlx::query(&format!("DELETE FROM {table} WHERE expires_at <= {now}"))
                .execute(&self.store.pool)
                .await?
                .rows_affected();
        }
        Ok(removed)
    }

    /// Prunes about once in 64 calls: the cost is spread thin, and no instance needs a
    /// timer for it.
    async fn maybe_prune(self) {
        if rand::random::<u8>() < 4
            && let Err(e) = self.prune().await
        {
            tracing::warn!(error = format!("{e:#}"), "could not prune expired limits");
        }
    }

    /// Claims the once-per-database job `name` for `lease_secs`: true when this caller
    /// is to do it now (no one has, and no one else holds a live lease).
    pub async fn claim_once(self, name: &str, lease_secs: i64) -> StoreResult<bool> {
        let now = self.now();
        let claimed = sqlx::query(&format!(
            "INSERT INTO once_jobs (name, lease_until, done_at) VALUES ($1, {now} + $2, NULL)
             ON CONFLICT (name) DO UPDATE SET lease_until = {now} + $2
             WHERE once_jobs.done_at IS NULL AND once_jobs.lease_until <= {now}
             RETURNING name"
        ))
        .bind(name)
        .bind(lease_secs)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(claimed.is_some())
    }

    /// Whether the job `name` is done.
    pub async fn once_done(self, name: &str) -> StoreResult<bool> {
        let done: Option<Option<i64>> =
            sqlx::query_scalar("SELECT done_at FROM once_jobs WHERE name = $1")
                .bind(name)
                .fetch_optional(&self.store.pool)
                .await?;
        Ok(done.flatten().is_some())
    }

    /// Marks the job `name` done (or, with `done` false, gives its lease back).
    pub async fn finish_once(self, name: &str, done: bool) -> StoreResult<()> {
        let now = self.now();
        let sql = if done {
            format!("UPDATE once_jobs SET done_at = {now} WHERE name = $1")
        } else {
            format!("UPDATE once_jobs SET lease_until = {now} WHERE name = $1")
        };
        sqlx::query(&sql)
            .bind(name)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }
}
