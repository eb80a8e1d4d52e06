//! The tokens aggregate: the tokens in the links mailed to subscribers (confirm,
//! unsubscribe, preferences), stored by their hash, and the workflows that use them up.

use super::lists::Lists;
use super::people::People;
use super::{Store, StoreResult, to_ts};
use crate::domain::{MembershipStatus, TokenGrant, TokenPurpose};
use chrono::{DateTime, Utc};

/// Subscriber tokens: `store.tokens()`.
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    pub(super) store: &'a Store,
}

impl Tokens<'_> {
    pub async fn save(
        self,
        token_hash: &str,
        subscriber_id: i64,
        purpose: TokenPurpose,
        list_id: Option<i64>,
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO subscriber_tokens (token_hash, subscriber_id, purpose, list_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(token_hash)
        .bind(subscriber_id)
        .bind(purpose.as_str())
        .bind(list_id)
        .bind(to_ts(now))
        .bind(expires_at.map(to_ts))
        .execute(&self.store.pool)
        .await?;
        Ok(())
    }

    /// A live token of the given purpose.
    pub async fn find(
        self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenGrant>> {
        // A digest message's link token (`d<id>-<sha256>` once hashed; the other forms
        // are hex only): kept in its delivery's row, good for the unsubscribe and the
        // preferences link of that message (the digest's list).
        if let Some((delivery, hash)) = token_hash
            .strip_prefix('d')
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(id, hash)| Some((id.parse::<i64>().ok()?, hash)))
        {
            if !matches!(
                purpose,
                TokenPurpose::Unsubscribe | TokenPurpose::Preferences
            ) {
                return Ok(None);
            }
            let row: Option<(i64, i64)> = sqlx::query_as(
                "SELECT d.subscriber_id, g.list_id FROM deliveries d JOIN digests g ON g.id = d.digest_id
                 WHERE d.id = $1 AND d.link_hash = $2",
            )
            .bind(delivery)
            .bind(hash)
            .fetch_optional(&self.store.pool)
            .await?;
            return Ok(row.map(|(subscriber_id, list_id)| TokenGrant {
                subscriber_id,
                list_id: Some(list_id),
            }));
        }
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT subscriber_id, list_id FROM subscriber_tokens
             WHERE token_hash = $1 AND purpose = $2 AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(token_hash)
        .bind(purpose.as_str())
        .bind(to_ts(now))
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.map(|(subscriber_id, list_id)| TokenGrant {
            subscriber_id,
            list_id,
        }))
    }

    /// Follows a confirmation link: the address is confirmed, the list joined, consent
    /// recorded. `None` for an unknown, used or expired token.
    pub async fn confirm_subscription(
        self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(i64, Option<i64>)>> {
        let mut tx = self.store.write_tx().await?;
        let grant: Option<(i64, Option<i64>)> = sqlx::query_as(
            "UPDATE subscriber_tokens SET used_at = $1
             WHERE token_hash = $2 AND purpose = 'confirm' AND used_at IS NULL AND (expires_at IS NULL OR expires_at > $1)
             RETURNING subscriber_id, list_id",
        )
        .bind(to_ts(now))
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((subscriber_id, list_id)) = grant else {
            return Ok(None);
        };
        sqlx::query(
            "UPDATE subscribers SET status = 'confirmed', updated_at = $1,
                 consent_at = $1, consent_source = 'form: confirmed by mail link'
             WHERE id = $2 AND status IN ('pending', 'unsubscribed', 'bounced')",
        )
        .bind(to_ts(now))
        .bind(subscriber_id)
        .execute(&mut *tx)
        .await?;
        People::record(
            &mut tx,
            subscriber_id,
            now,
            "confirmed",
            "address confirmed by mail link",
        )
        .await?;
        if let Some(list_id) = list_id {
            Lists::upsert_membership(
                &mut tx,
                list_id,
                subscriber_id,
                MembershipStatus::Confirmed,
                now,
            )
            .await?;
            let slug: String = sqlx::query_scalar("SELECT slug FROM lists WHERE id = $1")
                .bind(list_id)
                .fetch_one(&mut *tx)
                .await?;
            People::record(&mut tx, subscriber_id, now, "list confirmed", &slug).await?;
        }
        tx.commit().await?;
        Ok(Some((subscriber_id, list_id)))
    }

    /// Leaves the token's list (or every list for a token without one). Repeating it
    /// changes nothing. `None` for an unknown token.
    pub async fn unsubscribe(
        self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenGrant>> {
        let Some(grant) = self
            .find(token_hash, TokenPurpose::Unsubscribe, now)
            .await?
        else {
            return Ok(None);
        };
        let mut tx = self.store.write_tx().await?;
        let changed = sqlx::query(
            "UPDATE memberships SET status = 'unsubscribed', updated_at = $1, unsubscribed_at = $1
             WHERE subscriber_id = $2 AND ($3 IS NULL OR list_id = $3) AND status <> 'unsubscribed'",
        )
        .bind(to_ts(now))
        .bind(grant.subscriber_id)
        .bind(grant.list_id)
        .execute(&mut *tx)
        .await?;
        if changed.rows_affected() > 0 {
            People::record(
                &mut tx,
                grant.subscriber_id,
                now,
                "list unsubscribed",
                "one-click unsubscribe link",
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Some(grant))
    }
}
