use super::{Store, StoreResult, to_ts};
use chrono::{DateTime, Utc};

impl Store {
    /// Stores a token hash under a name unless that hash is already stored.
    pub async fn ensure_api_token(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// True when a token with this hash exists; records its use.
    pub async fn api_token_is_valid(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let updated = sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
            .bind(to_ts(now))
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(updated.rows_affected() == 1)
    }

    /// Removes a token by its hash; true when one was removed.
    pub async fn revoke_api_token(&self, token_hash: &str) -> StoreResult<bool> {
        let deleted = sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(deleted.rows_affected() == 1)
    }
}
