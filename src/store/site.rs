//! Settings kept in the database rather than in the environment: `store.site()`.

use super::{Store, StoreResult, to_ts};
use crate::domain::IdAuthority;
use anyhow::anyhow;
use chrono::{DateTime, Utc};

const ID_AUTHORITY: &str = "id_authority";

/// The site's own settings (`site_settings`).
#[derive(Clone, Copy)]
pub struct Site<'a> {
    pub(super) store: &'a Store,
}

impl Site<'_> {
    /// The authority of the site's `tag:` URIs: the one stored, or else `candidate`,
    /// stored now and kept from then on. Instances starting at once agree on the first
    /// one written.
    pub async fn fix_id_authority(
        self,
        candidate: &IdAuthority,
        now: DateTime<Utc>,
    ) -> StoreResult<IdAuthority> {
        sqlx::query(
            "INSERT INTO site_settings (key, value, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO NOTHING",
        )
        .bind(ID_AUTHORITY)
        .bind(candidate.as_str())
        .bind(to_ts(now))
        .execute(&self.store.pool)
        .await?;
        self.id_authority()
            .await?
            .ok_or_else(|| anyhow!("the id authority was not stored").into())
    }

    /// The stored authority, if one was fixed.
    pub async fn id_authority(self) -> StoreResult<Option<IdAuthority>> {
        let value: Option<String> =
            sqlx::query_scalar("SELECT value FROM site_settings WHERE key = $1")
                .bind(ID_AUTHORITY)
                .fetch_optional(&self.store.pool)
                .await?;
        value
            .map(|v| {
                IdAuthority::parse(&v).map_err(|m| anyhow!("site_settings.id_authority {m}").into())
            })
            .transpose()
    }
}
