//! The people aggregate: partner institutions, subscribers, and each subscriber's
//! history of events.

use super::names::{self, Owner};
use super::{Store, StoreError, StoreResult, from_ts, is_unique_violation, to_ts};
use crate::domain::{
    Consent, JoinedVia, Names, Partner, PartnerDraft, Subscriber, SubscriberDraft, SubscriberEvent,
    SubscriberStatus,
};
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// Partners and subscribers: `store.people()`.
#[derive(Clone, Copy)]
pub struct People<'a> {
    pub(super) store: &'a Store,
}

#[derive(Debug, Clone, Default)]
pub struct SubscriberFilter {
    pub list: Option<i64>,
    pub status: Option<SubscriberStatus>,
    pub partner: Option<i64>,
    /// Matched against address and name, case-insensitively.
    pub search: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

/// A subscriber's columns, joined with their partner (`p`). `partner_timezone` is the
/// zone they read times in: their own when set, else their institution's.
pub(crate) const SUBSCRIBER_COLUMNS: &str = "s.id, s.email, s.name, s.partner_id, p.name AS partner_name, \
    COALESCE(s.timezone, p.timezone) AS partner_timezone, s.timezone, s.language, s.status, s.joined_via, s.consent_at, s.consent_source, \
    s.consent_ip, s.attributes, s.created_at, s.updated_at";

pub(super) fn enum_err(e: String) -> anyhow::Error {
    anyhow::Error::msg(e)
}

fn partner_from_row(row: &AnyRow) -> anyhow::Result<Partner> {
    Ok(Partner {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        names: Default::default(),
        country: row.try_get("country")?,
        website: row.try_get("website")?,
        timezone: row.try_get("timezone")?,
        language: row.try_get("language")?,
        created_at: from_ts(row.try_get("created_at")?),
        updated_at: from_ts(row.try_get("updated_at")?),
    })
}

pub(crate) fn subscriber_from_row(row: &AnyRow) -> anyhow::Result<Subscriber> {
    let attributes: String = row.try_get("attributes")?;
    Ok(Subscriber {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        partner_id: row.try_get("partner_id")?,
        partner_name: row.try_get("partner_name")?,
        partner_timezone: row.try_get("partner_timezone")?,
        timezone: row.try_get("timezone")?,
        language: row.try_get("language")?,
        status: SubscriberStatus::parse(&row.try_get::<String, _>("status")?).map_err(enum_err)?,
        joined_via: JoinedVia::parse(&row.try_get::<String, _>("joined_via")?).map_err(enum_err)?,
        consent_at: row.try_get::<Option<i64>, _>("consent_at")?.map(from_ts),
        consent_source: row.try_get("consent_source")?,
        consent_ip: row.try_get("consent_ip")?,
        attributes: serde_json::from_str(&attributes).context("reading subscriber attributes")?,
        created_at: from_ts(row.try_get("created_at")?),
        updated_at: from_ts(row.try_get("updated_at")?),
    })
}

impl People<'_> {
    // ---- partners ------------------------------------------------------------------

    pub async fn partners(self) -> StoreResult<Vec<Partner>> {
        let rows = sqlx::query("SELECT * FROM partners ORDER BY name_key")
            .fetch_all(&self.store.pool)
            .await?;
        let partners = rows
            .iter()
            .map(partner_from_row)
            .collect::<anyhow::Result<_>>()?;
        self.with_names(partners).await
    }

    /// Partners with their names in other languages.
    async fn with_names(self, mut partners: Vec<Partner>) -> StoreResult<Vec<Partner>> {
        let ids: Vec<i64> = partners.iter().map(|p| p.id).collect();
        let mut names = names::read(&self.store.pool, Owner::Partner, &ids).await?;
        for p in &mut partners {
            p.names = names.remove(&p.id).unwrap_or_default();
        }
        Ok(partners)
    }

    /// The names in other languages of each of `ids` that has any (to name a reader's
    /// institution in their language).
    pub async fn partner_names(self, ids: &[i64]) -> StoreResult<HashMap<i64, Names>> {
        names::read(&self.store.pool, Owner::Partner, ids).await
    }

    pub async fn partner(self, id: i64) -> StoreResult<Option<Partner>> {
        let row = sqlx::query("SELECT * FROM partners WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.store.pool)
            .await?;
        let partner = row.as_ref().map(partner_from_row).transpose()?;
        Ok(self.with_names(partner.into_iter().collect()).await?.pop())
    }

    pub async fn create_partner(
        self,
        d: &PartnerDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Partner> {
        let mut tx = self.store.write_tx().await?;
        let id: Result<i64, _> = sqlx::query_scalar(
            "INSERT INTO partners (name, name_key, country, website, timezone, language, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) RETURNING id",
        )
        .bind(d.name.as_str())
        .bind(d.name.as_str().to_lowercase())
        .bind(d.country.as_str())
        .bind(d.website.as_deref())
        .bind(d.timezone.name())
        .bind(d.language.as_str())
        .bind(to_ts(now))
        .fetch_one(&mut *tx)
        .await;
        let id = id.map_err(|e| taken_or(e, "name", "partner", d.name.as_str()))?;
        names::replace(&mut tx, Owner::Partner, id, &d.names).await?;
        tx.commit().await?;
        Ok(self.partner(id).await?.context("reading back a partner")?)
    }

    pub async fn update_partner(
        self,
        id: i64,
        d: &PartnerDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Partner> {
        let mut tx = self.store.write_tx().await?;
        let updated = sqlx::query(
            "UPDATE partners SET name = $1, name_key = $2, country = $3, website = $4, timezone = $5,
                 language = $6, updated_at = $7 WHERE id = $8",
        )
        .bind(d.name.as_str())
        .bind(d.name.as_str().to_lowercase())
        .bind(d.country.as_str())
        .bind(d.website.as_deref())
        .bind(d.timezone.name())
        .bind(d.language.as_str())
        .bind(to_ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| taken_or(e, "name", "partner", d.name.as_str()))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("partner {id}")));
        }
        names::replace(&mut tx, Owner::Partner, id, &d.names).await?;
        tx.commit().await?;
        Ok(self.partner(id).await?.context("reading back a partner")?)
    }

    /// Deletes a partner no subscriber belongs to.
    pub async fn delete_partner(self, id: i64) -> StoreResult<()> {
        let members: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE partner_id = $1")
                .bind(id)
                .fetch_one(&self.store.pool)
                .await?;
        if members > 0 {
            return Err(StoreError::Conflict {
                field: "id".into(),
                message: format!(
                    "{members} subscriber(s) belong to partner {id}; move or delete them first"
                ),
            });
        }
        let deleted = sqlx::query("DELETE FROM partners WHERE id = $1")
            .bind(id)
            .execute(&self.store.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("partner {id}")));
        }
        Ok(())
    }

    // ---- subscribers ---------------------------------------------------------------

    pub async fn subscriber(self, id: i64) -> StoreResult<Option<Subscriber>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s LEFT JOIN partners p ON p.id = s.partner_id WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.as_ref().map(subscriber_from_row).transpose()?)
    }

    pub async fn subscriber_by_email(self, email_key: &str) -> StoreResult<Option<Subscriber>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s LEFT JOIN partners p ON p.id = s.partner_id WHERE s.email_key = $1"
        ))
        .bind(email_key)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(row.as_ref().map(subscriber_from_row).transpose()?)
    }

    async fn check_partner(tx: &mut Transaction<'_, Any>, partner: Option<i64>) -> StoreResult<()> {
        if let Some(id) = partner {
            let found: Option<i64> = sqlx::query_scalar("SELECT id FROM partners WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?;
            if found.is_none() {
                return Err(StoreError::Invalid {
                    field: "partner_id".into(),
                    message: format!("no partner has the id {id}"),
                });
            }
        }
        Ok(())
    }

    /// Adds a subscriber; with `consent` given they count as confirmed.
    pub async fn create_subscriber(
        self,
        d: &SubscriberDraft,
        via: JoinedVia,
        consent: Option<&Consent>,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.store.write_tx().await?;
        Self::check_partner(&mut tx, d.partner).await?;
        let status = if consent.is_some() {
            SubscriberStatus::Confirmed
        } else {
            SubscriberStatus::Pending
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO subscribers (email, email_key, name, partner_id, language, status, joined_via,
                 consent_at, consent_source, consent_ip, attributes, created_at, updated_at, timezone)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13) RETURNING id",
        )
        .bind(d.email.as_str())
        .bind(d.email.key())
        .bind(d.name.as_str())
        .bind(d.partner)
        .bind(d.language.as_str())
        .bind(status.as_str())
        .bind(via.as_str())
        .bind(consent.map(|_| to_ts(now)))
        .bind(consent.map(|c| c.source.clone()))
        .bind(consent.and_then(|c| c.ip.clone()))
        .bind(serde_json::to_string(&d.attributes).context("encoding attributes")?)
        .bind(to_ts(now))
        .bind(d.timezone.map(|t| t.name()))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| taken_or(e, "email", "subscriber", d.email.as_str()))?;
        Self::record(&mut tx, id, now, "joined", &format!("via {}", via.as_str())).await?;
        if let Some(c) = consent {
            Self::record(&mut tx, id, now, "consent", &c.source).await?;
        }
        tx.commit().await?;
        Ok(self
            .subscriber(id)
            .await?
            .context("reading back a subscriber")?)
    }

    pub async fn update_subscriber(
        self,
        id: i64,
        d: &SubscriberDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.store.write_tx().await?;
        Self::check_partner(&mut tx, d.partner).await?;
        let updated = sqlx::query(
            "UPDATE subscribers SET email = $1, email_key = $2, name = $3, partner_id = $4, language = $5,
                 attributes = $6, updated_at = $7, timezone = $9 WHERE id = $8",
        )
        .bind(d.email.as_str())
        .bind(d.email.key())
        .bind(d.name.as_str())
        .bind(d.partner)
        .bind(d.language.as_str())
        .bind(serde_json::to_string(&d.attributes).context("encoding attributes")?)
        .bind(to_ts(now))
        .bind(id)
        .bind(d.timezone.map(|t| t.name()))
        .execute(&mut *tx)
        .await
        .map_err(|e| taken_or(e, "email", "subscriber", d.email.as_str()))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("subscriber {id}")));
        }
        tx.commit().await?;
        Ok(self
            .subscriber(id)
            .await?
            .context("reading back a subscriber")?)
    }

    /// Sets a subscriber's status by hand (an admin), recording why.
    pub async fn set_subscriber_status(
        self,
        id: i64,
        status: SubscriberStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.store.write_tx().await?;
        let updated =
            sqlx::query("UPDATE subscribers SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status.as_str())
                .bind(to_ts(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("subscriber {id}")));
        }
        Self::record(&mut tx, id, now, status.as_str(), reason).await?;
        tx.commit().await?;
        Ok(self
            .subscriber(id)
            .await?
            .context("reading back a subscriber")?)
    }

    pub async fn delete_subscriber(self, id: i64) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(id)
            .execute(&self.store.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("subscriber {id}")));
        }
        Ok(())
    }

    /// Subscribers matching a filter, in address order, and how many match in all.
    pub async fn subscribers(self, f: &SubscriberFilter) -> StoreResult<(Vec<Subscriber>, u64)> {
        // Every parameter is always bound; NULL switches its condition off.
        let condition =
            "($1 IS NULL OR s.id IN (SELECT subscriber_id FROM memberships WHERE list_id = $1))
            AND ($2 IS NULL OR s.status = $2)
            AND ($3 IS NULL OR s.partner_id = $3)
            AND ($4 IS NULL OR s.email_key LIKE $4 ESCAPE '\\' OR LOWER(s.name) LIKE $4 ESCAPE '\\')";
        let search = f.search.as_deref().map(super::contains_pattern);
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM subscribers s WHERE {condition}"
        ))
        .bind(f.list)
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.partner)
        .bind(search.as_deref())
        .fetch_one(&self.store.pool)
        .await?;
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s LEFT JOIN partners p ON p.id = s.partner_id
             WHERE {condition} ORDER BY s.email_key LIMIT $5 OFFSET $6"
        ))
        .bind(f.list)
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.partner)
        .bind(search.as_deref())
        .bind(i64::from(f.limit))
        .bind(f.offset as i64)
        .fetch_all(&self.store.pool)
        .await?;
        let subscribers = rows
            .iter()
            .map(subscriber_from_row)
            .collect::<anyhow::Result<_>>()?;
        Ok((subscribers, total as u64))
    }

    /// The next `limit` subscribers after `after_id` (all, or a list's members), for
    /// streaming exports without holding everyone in memory.
    ///
    /// With `recipients_only`, only those a list's digest goes to: a confirmed address,
    /// confirmed on the list.
    pub async fn subscribers_after(
        self,
        list: Option<i64>,
        after_id: i64,
        limit: u32,
        recipients_only: bool,
    ) -> StoreResult<Vec<Subscriber>> {
        let rows = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s LEFT JOIN partners p ON p.id = s.partner_id
             WHERE s.id > $1 AND ($2 IS NULL OR s.id IN (
                 SELECT subscriber_id FROM memberships WHERE list_id = $2 AND ($4 = 0 OR status = 'confirmed')))
               AND ($4 = 0 OR s.status = 'confirmed')
             ORDER BY s.id LIMIT $3"
        ))
        .bind(after_id)
        .bind(list)
        .bind(i64::from(limit))
        .bind(i64::from(recipients_only))
        .fetch_all(&self.store.pool)
        .await?;
        Ok(rows
            .iter()
            .map(subscriber_from_row)
            .collect::<anyhow::Result<_>>()?)
    }

    pub async fn history_of(self, subscriber_id: i64) -> StoreResult<Vec<SubscriberEvent>> {
        let rows = sqlx::query("SELECT at, kind, detail FROM subscriber_events WHERE subscriber_id = $1 ORDER BY at, id")
            .bind(subscriber_id)
            .fetch_all(&self.store.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(SubscriberEvent {
                at: from_ts(row.try_get(0)?),
                kind: row.try_get(1)?,
                detail: row.try_get(2)?,
            });
        }
        Ok(out)
    }

    /// Adds a line to a subscriber's history, in the transaction that made the change.
    pub(super) async fn record(
        tx: &mut Transaction<'_, Any>,
        subscriber_id: i64,
        at: DateTime<Utc>,
        kind: &str,
        detail: &str,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO subscriber_events (subscriber_id, at, kind, detail) VALUES ($1, $2, $3, $4)")
            .bind(subscriber_id)
            .bind(to_ts(at))
            .bind(kind)
            .bind(detail)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

pub(super) fn taken_or(e: sqlx::Error, field: &str, what: &str, value: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            field: field.into(),
            message: format!("another {what} already has the {field} {value:?}"),
        }
    } else {
        StoreError::from(e)
    }
}
