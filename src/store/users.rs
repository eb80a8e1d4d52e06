//! The users aggregate: people who sign in to the admin pages, their sessions, and the
//! API's tokens.

use super::{Store, StoreError, StoreResult, from_ts, is_unique_violation, to_ts};
use crate::domain::{Role, User};
use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

/// Users, sessions and API tokens: `store.users()`.
#[derive(Clone, Copy)]
pub struct Users<'a> {
    pub(super) store: &'a Store,
}

/// A live session, with the person it belongs to.
#[derive(Debug, Clone)]
pub struct SessionRecord {
    pub user: User,
    pub csrf_token: String,
    pub flash: Option<(String, String)>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn user_from_row(row: &AnyRow) -> anyhow::Result<User> {
    let role: String = row.try_get("role")?;
    Ok(User {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        password_hash: row.try_get("password_hash")?,
        role: Role::parse(&role).map_err(anyhow::Error::msg)?,
        disabled: row.try_get::<i64, _>("disabled")? != 0,
        failed_sign_ins: row.try_get("failed_sign_ins")?,
        locked_until: row.try_get::<Option<i64>, _>("locked_until")?.map(from_ts),
        last_sign_in_at: row
            .try_get::<Option<i64>, _>("last_sign_in_at")?
            .map(from_ts),
        created_at: from_ts(row.try_get("created_at")?),
    })
}

/// However active, a session ends this many days after sign-in.
pub const MAX_SESSION_DAYS: i64 = 7;

/// A user's failures and lock are those of their name (`sign_in_locks`, shared with
/// names of nobody); read with [`USERS`].
const USER_COLUMNS: &str = "u.id, u.name, u.password_hash, u.role, u.disabled, \
     COALESCE(l.failures, 0) AS failed_sign_ins, l.locked_until AS locked_until, \
     u.last_sign_in_at, u.created_at";

/// The users, each with the sign-in lock of their name.
const USERS: &str = "users u LEFT JOIN sign_in_locks l ON l.name_key = u.name_key";

impl Users<'_> {
    pub async fn create(
        self,
        name: &str,
        password_hash: &str,
        role: Role,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        let id: Result<i64, _> = sqlx::query_scalar(
            "INSERT INTO users (name, name_key, password_hash, role, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(name)
        .bind(name.to_lowercase())
        .bind(password_hash)
        .bind(role.as_str())
        .bind(to_ts(now))
        .fetch_one(&self.store.pool)
        .await;
        match id {
            Ok(id) => self
                .by_id(id)
                .await?
                .ok_or_else(|| StoreError::NotFound(format!("user {id}"))),
            Err(e) if is_unique_violation(&e) => Err(StoreError::Conflict {
                field: "name".into(),
                message: format!("a user named {name:?} already exists"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn by_id(self, id: i64) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM {USERS} WHERE u.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn by_name(self, name: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM {USERS} WHERE u.name_key = $1"
        ))
        .bind(name.trim().to_lowercase())
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.as_ref().map(user_from_row).transpose()?)
    }

    pub async fn all(self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM {USERS} ORDER BY u.name_key"
        ))
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .iter()
            .map(user_from_row)
            .collect::<anyhow::Result<_>>()?)
    }

    /// Sets a new password and lifts any lock-out; the user's sessions end.
    pub async fn set_password(
        self,
        id: i64,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.store.write_tx().await?;
        let done =
            sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
                .bind(password_hash)
                .bind(to_ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user {id}")));
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::clear_lock(&mut tx, id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Forgets the failed sign-ins and the lock of user `id`'s name.
    async fn clear_lock(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "DELETE FROM sign_in_locks WHERE name_key = (SELECT name_key FROM users WHERE id = $1)",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Changes role and whether the user may sign in; a disabled user's sessions end.
    /// Refused when it would leave no enabled admin.
    pub async fn update(
        self,
        id: i64,
        role: Role,
        disabled: bool,
        now: DateTime<Utc>,
    ) -> StoreResult<User> {
        let mut tx = self.store.write_tx().await?;
        if self.store.backend.locks_rows() {
            // Two admins demoting each other at once must not both pass the check below.
            sqlx::query("SELECT id FROM users WHERE role = 'admin' FOR UPDATE")
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE users SET role = $1, disabled = $2, updated_at = $3 WHERE id = $4")
            .bind(role.as_str())
            .bind(i64::from(disabled))
            .bind(to_ts(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let admins: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0")
                .fetch_one(&mut *tx)
                .await?;
        if admins == 0 {
            tx.rollback().await?;
            return Err(StoreError::Conflict {
                field: "role".into(),
                message: "there must be at least one enabled admin".into(),
            });
        }
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        self.by_id(id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("user {id}")))
    }

    /// A successful sign-in: the failure count is reset and a new session stored.
    /// `replaces` (the hash of a session cookie the browser still had) is removed.
    pub async fn start_session(
        self,
        user_id: i64,
        token_hash: &str,
        csrf_token: &str,
        replaces: Option<&str>,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.store.write_tx().await?;
        sqlx::query(
            "UPDATE users SET failed_sign_ins = 0, locked_until = NULL, last_sign_in_at = $1
             WHERE id = $2",
        )
        .bind(to_ts(now))
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
        Self::clear_lock(&mut tx, user_id).await?;
        if let Some(old) = replaces {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(old)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM sessions WHERE expires_at < $1")
            .bind(to_ts(now))
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf_token, created_at, last_seen_at, expires_at)
             VALUES ($1, $2, $3, $4, $4, $5)",
        )
        .bind(token_hash)
        .bind(user_id)
        .bind(csrf_token)
        .bind(to_ts(now))
        .bind(to_ts(expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The session with this hash when it has not expired (idle, or older than
    /// `MAX_SESSION_DAYS` whatever its use) and its user may sign in.
    pub async fn session(
        self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<SessionRecord>> {
        let born_after = now - chrono::Duration::days(MAX_SESSION_DAYS);
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, s.csrf_token, s.flash, s.flash_kind, s.last_seen_at, s.expires_at
             FROM sessions s JOIN users u ON u.id = s.user_id
             LEFT JOIN sign_in_locks l ON l.name_key = u.name_key
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND s.created_at > $3 AND u.disabled = 0"
        ))
        .bind(token_hash)
        .bind(to_ts(now))
        .bind(to_ts(born_after))
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let read = || -> anyhow::Result<SessionRecord> {
            let flash: Option<String> = row.try_get("flash")?;
            let kind: Option<String> = row.try_get("flash_kind")?;
            Ok(SessionRecord {
                user: user_from_row(&row)?,
                csrf_token: row.try_get("csrf_token")?,
                flash: flash.map(|f| (kind.unwrap_or_else(|| "info".into()), f)),
                last_seen_at: from_ts(row.try_get("last_seen_at")?),
                expires_at: from_ts(row.try_get("expires_at")?),
            })
        };
        Ok(Some(read()?))
    }

    /// Moves the idle expiry on; called at most every few minutes per session.
    pub async fn touch_session(
        self,
        token_hash: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1, expires_at = $2 WHERE token_hash = $3")
            .bind(to_ts(now))
            .bind(to_ts(expires_at))
            .bind(token_hash)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Sets (or with `None` clears) the message the next page shows.
    pub async fn set_flash(self, token_hash: &str, flash: Option<(&str, &str)>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET flash = $1, flash_kind = $2 WHERE token_hash = $3")
            .bind(flash.map(|(_, m)| m.to_owned()))
            .bind(flash.map(|(k, _)| k.to_owned()))
            .bind(token_hash)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    pub async fn end_session(self, token_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    // ---- API tokens ----------------------------------------------------------------

    /// Stores a token hash under a name unless that hash is already stored.
    pub async fn ensure_api_token(
        self,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO api_tokens (name, token_hash, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(name)
        .bind(token_hash)
        .bind(to_ts(now))
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// True when a token with this hash exists; records its use.
    pub async fn api_token_is_valid(
        self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let updated = sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
            .bind(to_ts(now))
            .bind(token_hash)
            .execute(&self.store.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Removes a token by its hash; true when one was removed.
    pub async fn revoke_api_token(self, token_hash: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.store.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
