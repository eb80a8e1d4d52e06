//! Partners, subscribers, lists, memberships and subscriber tokens.

use super::{Store, StoreError, StoreResult, from_ts, is_unique_violation, placeholders, to_ts};
use crate::domain::{
    Consent, JoinedVia, ListDraft, MembershipStatus, OptIn, PartnerDraft, SubscriberDraft,
    SubscriberStatus, Visibility,
};
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: i64,
    pub name: String,
    pub country: String,
    pub website: Option<String>,
    pub timezone: String,
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub partner_id: Option<i64>,
    pub partner_name: Option<String>,
    /// The zone to show event times in: the subscriber's own, else their partner's.
    pub partner_timezone: Option<String>,
    /// The subscriber's own time zone, when they have one.
    pub timezone: Option<String>,
    pub language: String,
    pub status: SubscriberStatus,
    pub joined_via: JoinedVia,
    pub consent_at: Option<DateTime<Utc>>,
    pub consent_source: Option<String>,
    pub consent_ip: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Subscriber {
    /// A confirmed reader with nothing else known: what a digest is rendered for when no
    /// one in particular is named (a preview), and what a delivery's claim fills in with
    /// the few columns a digest reads.
    pub fn blank(now: DateTime<Utc>) -> Self {
        Self {
            id: 0,
            email: String::new(),
            name: String::new(),
            partner_id: None,
            partner_name: None,
            partner_timezone: None,
            timezone: None,
            language: String::new(),
            status: SubscriberStatus::Confirmed,
            joined_via: JoinedVia::Admin,
            consent_at: None,
            consent_source: None,
            consent_ip: None,
            attributes: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailingList {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub opt_in: OptIn,
    pub visibility: Visibility,
    pub schedule: crate::domain::Schedule,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub list_id: i64,
    pub list_slug: String,
    pub list_name: String,
    pub status: MembershipStatus,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: String,
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

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Confirm,
    Unsubscribe,
    Preferences,
}

impl TokenPurpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Confirm => "confirm",
            Self::Unsubscribe => "unsubscribe",
            Self::Preferences => "preferences",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenGrant {
    pub subscriber_id: i64,
    pub list_id: Option<i64>,
}

/// What a subscription request led to; the caller answers the same whatever it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionOutcome {
    /// A confirmation mail must go to the address.
    NeedsConfirmation { subscriber_id: i64 },
    /// Single opt-in: the address is on the list now.
    Joined { subscriber_id: i64 },
    /// Already a confirmed member, or blocked: nothing to send.
    NothingToDo,
}

/// A subscriber's columns, joined with their partner (`p`). `partner_timezone` is the
/// zone they read times in: their own when set, else their institution's.
pub(crate) const SUBSCRIBER_COLUMNS: &str = "s.id, s.email, s.name, s.partner_id, p.name AS partner_name, \
    COALESCE(s.timezone, p.timezone) AS partner_timezone, s.timezone, s.language, s.status, s.joined_via, s.consent_at, s.consent_source, \
    s.consent_ip, s.attributes, s.created_at, s.updated_at";

fn enum_err(e: String) -> anyhow::Error {
    anyhow::Error::msg(e)
}

fn partner_from_row(row: &AnyRow) -> anyhow::Result<Partner> {
    Ok(Partner {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
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

impl Store {
    // ---- partners ------------------------------------------------------------------

    pub async fn list_partners(&self) -> StoreResult<Vec<Partner>> {
        let rows = sqlx::query("SELECT * FROM partners ORDER BY name_key")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .iter()
            .map(partner_from_row)
            .collect::<anyhow::Result<_>>()?)
    }

    pub async fn partner_by_id(&self, id: i64) -> StoreResult<Option<Partner>> {
        let row = sqlx::query("SELECT * FROM partners WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(partner_from_row).transpose()?)
    }

    pub async fn create_partner(
        &self,
        d: &PartnerDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Partner> {
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
        .fetch_one(&self.pool)
        .await;
        let id = id.map_err(|e| taken_or(e, "name", "partner", d.name.as_str()))?;
        Ok(self
            .partner_by_id(id)
            .await?
            .context("reading back a partner")?)
    }

    pub async fn update_partner(
        &self,
        id: i64,
        d: &PartnerDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Partner> {
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
        .execute(&self.pool)
        .await
        .map_err(|e| taken_or(e, "name", "partner", d.name.as_str()))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("partner {id}")));
        }
        Ok(self
            .partner_by_id(id)
            .await?
            .context("reading back a partner")?)
    }

    /// Deletes a partner no subscriber belongs to.
    pub async fn delete_partner(&self, id: i64) -> StoreResult<()> {
        let members: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM subscribers WHERE partner_id = $1")
                .bind(id)
                .fetch_one(&self.pool)
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
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("partner {id}")));
        }
        Ok(())
    }

    // ---- subscribers ---------------------------------------------------------------

    pub async fn subscriber_by_id(&self, id: i64) -> StoreResult<Option<Subscriber>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s LEFT JOIN partners p ON p.id = s.partner_id WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(subscriber_from_row).transpose()?)
    }

    pub async fn subscriber_by_email(&self, email_key: &str) -> StoreResult<Option<Subscriber>> {
        let row = sqlx::query(&format!(
            "SELECT {SUBSCRIBER_COLUMNS} FROM subscribers s LEFT JOIN partners p ON p.id = s.partner_id WHERE s.email_key = $1"
        ))
        .bind(email_key)
        .fetch_optional(&self.pool)
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
        &self,
        d: &SubscriberDraft,
        via: JoinedVia,
        consent: Option<&Consent>,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.write_tx().await?;
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
            .subscriber_by_id(id)
            .await?
            .context("reading back a subscriber")?)
    }

    pub async fn update_subscriber(
        &self,
        id: i64,
        d: &SubscriberDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.write_tx().await?;
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
            .subscriber_by_id(id)
            .await?
            .context("reading back a subscriber")?)
    }

    /// Sets a subscriber's status by hand (an admin), recording why.
    pub async fn set_subscriber_status(
        &self,
        id: i64,
        status: SubscriberStatus,
        reason: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Subscriber> {
        let mut tx = self.write_tx().await?;
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
            .subscriber_by_id(id)
            .await?
            .context("reading back a subscriber")?)
    }

    pub async fn delete_subscriber(&self, id: i64) -> StoreResult<()> {
        let deleted = sqlx::query("DELETE FROM subscribers WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("subscriber {id}")));
        }
        Ok(())
    }

    /// Subscribers matching a filter, in address order, and how many match in all.
    pub async fn list_subscribers(
        &self,
        f: &SubscriberFilter,
    ) -> StoreResult<(Vec<Subscriber>, u64)> {
        // Every parameter is always bound; NULL switches its condition off.
        let condition =
            "($1 IS NULL OR s.id IN (SELECT subscriber_id FROM memberships WHERE list_id = $1))
            AND ($2 IS NULL OR s.status = $2)
            AND ($3 IS NULL OR s.partner_id = $3)
            AND ($4 IS NULL OR s.email_key LIKE $4 OR LOWER(s.name) LIKE $4)";
        let search = f.search.as_deref().map(super::contains_pattern);
        let condition = condition.replace("LIKE $4", "LIKE $4 ESCAPE '\\'");
        let total: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM subscribers s WHERE {condition}"
        ))
        .bind(f.list)
        .bind(f.status.map(|s| s.as_str()))
        .bind(f.partner)
        .bind(search.as_deref())
        .fetch_one(&self.pool)
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
        .fetch_all(&self.pool)
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
        &self,
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
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(subscriber_from_row)
            .collect::<anyhow::Result<_>>()?)
    }

    pub async fn memberships_of(&self, subscriber_id: i64) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT m.list_id, l.slug, l.name, m.status, m.created_at, m.confirmed_at, m.unsubscribed_at
             FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = $1 ORDER BY l.slug",
        )
        .bind(subscriber_id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(Membership {
                list_id: row.try_get(0)?,
                list_slug: row.try_get(1)?,
                list_name: row.try_get(2)?,
                status: MembershipStatus::parse(&row.try_get::<String, _>(3)?).map_err(enum_err)?,
                created_at: from_ts(row.try_get(4)?),
                confirmed_at: row.try_get::<Option<i64>, _>(5)?.map(from_ts),
                unsubscribed_at: row.try_get::<Option<i64>, _>(6)?.map(from_ts),
            });
        }
        Ok(out)
    }

    pub async fn history_of(&self, subscriber_id: i64) -> StoreResult<Vec<SubscriberEvent>> {
        let rows = sqlx::query("SELECT at, kind, detail FROM subscriber_events WHERE subscriber_id = $1 ORDER BY at, id")
            .bind(subscriber_id)
            .fetch_all(&self.pool)
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

    pub(crate) async fn record(
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

    // ---- lists ---------------------------------------------------------------------

    pub async fn list_lists(&self) -> StoreResult<Vec<MailingList>> {
        let rows = sqlx::query("SELECT * FROM lists ORDER BY slug")
            .fetch_all(&self.pool)
            .await?;
        self.lists_from_rows(rows).await
    }

    pub async fn list_by_slug(&self, slug: &str) -> StoreResult<Option<MailingList>> {
        let rows = sqlx::query("SELECT * FROM lists WHERE slug = $1")
            .bind(slug)
            .fetch_all(&self.pool)
            .await?;
        Ok(self.lists_from_rows(rows).await?.pop())
    }

    pub async fn list_by_id(&self, id: i64) -> StoreResult<Option<MailingList>> {
        let rows = sqlx::query("SELECT * FROM lists WHERE id = $1")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        Ok(self.lists_from_rows(rows).await?.pop())
    }

    async fn lists_from_rows(&self, rows: Vec<AnyRow>) -> StoreResult<Vec<MailingList>> {
        let mut lists = Vec::with_capacity(rows.len());
        for row in &rows {
            lists.push(MailingList {
                id: row.try_get("id")?,
                slug: row.try_get("slug")?,
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                categories: Vec::new(),
                opt_in: OptIn::parse(&row.try_get::<String, _>("opt_in")?).map_err(enum_err)?,
                visibility: Visibility::parse(&row.try_get::<String, _>("visibility")?)
                    .map_err(enum_err)?,
                schedule: crate::domain::Schedule {
                    cron: crate::domain::CronExpr::parse(
                        &row.try_get::<String, _>("schedule_cron")?,
                    )
                    .map_err(enum_err)?,
                    timezone: crate::domain::TimeZone::parse(
                        &row.try_get::<String, _>("schedule_timezone")?,
                    )
                    .map_err(enum_err)?,
                    min_items: row.try_get::<i64, _>("min_items")? as u32,
                    grace_minutes: row.try_get::<i64, _>("grace_minutes")? as u32,
                },
                created_at: from_ts(row.try_get("created_at")?),
                updated_at: from_ts(row.try_get("updated_at")?),
            });
        }
        if lists.is_empty() {
            return Ok(lists);
        }
        let sql = format!(
            "SELECT lc.list_id, c.slug FROM list_categories lc JOIN categories c ON c.id = lc.category_id
             WHERE lc.list_id IN ({}) ORDER BY c.slug",
            placeholders(1, lists.len())
        );
        let mut q = sqlx::query(&sql);
        for l in &lists {
            q = q.bind(l.id);
        }
        for row in q.fetch_all(&self.pool).await? {
            let list_id: i64 = row.try_get(0)?;
            if let Some(l) = lists.iter_mut().find(|l| l.id == list_id) {
                l.categories.push(row.try_get(1)?);
            }
        }
        Ok(lists)
    }

    /// Members of a list by membership status.
    pub async fn list_counts(&self, list_id: i64) -> StoreResult<BTreeMap<MembershipStatus, u64>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM memberships WHERE list_id = $1 GROUP BY status",
        )
        .bind(list_id)
        .fetch_all(&self.pool)
        .await?;
        let mut counts: BTreeMap<MembershipStatus, u64> =
            MembershipStatus::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let status =
                MembershipStatus::parse(&row.try_get::<String, _>(0)?).map_err(enum_err)?;
            counts.insert(status, row.try_get::<i64, _>(1)? as u64);
        }
        Ok(counts)
    }

    async fn set_list_categories(
        tx: &mut Transaction<'_, Any>,
        list_id: i64,
        d: &ListDraft,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM list_categories WHERE list_id = $1")
            .bind(list_id)
            .execute(&mut **tx)
            .await?;
        for (n, slug) in d.categories.iter().enumerate() {
            let category: Option<i64> =
                sqlx::query_scalar("SELECT id FROM categories WHERE slug = $1")
                    .bind(slug.as_str())
                    .fetch_optional(&mut **tx)
                    .await?;
            let category = category.ok_or_else(|| StoreError::Invalid {
                field: format!("categories[{n}]"),
                message: format!("no category has the slug {slug:?}"),
            })?;
            sqlx::query("INSERT INTO list_categories (list_id, category_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(list_id)
                .bind(category)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn create_list(&self, d: &ListDraft, now: DateTime<Utc>) -> StoreResult<MailingList> {
        let mut tx = self.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lists (slug, name, description, opt_in, visibility, created_at, updated_at,
                 schedule_cron, schedule_timezone, min_items, grace_minutes)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(d.slug.as_str())
        .bind(d.name.as_str())
        .bind(d.description.as_str())
        .bind(d.opt_in.as_str())
        .bind(d.visibility.as_str())
        .bind(to_ts(now))
        .bind(d.schedule.cron.as_str())
        .bind(d.schedule.timezone.name())
        .bind(i64::from(d.schedule.min_items))
        .bind(i64::from(d.schedule.grace_minutes))
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| taken_or(e, "slug", "list", d.slug.as_str()))?;
        Self::set_list_categories(&mut tx, id, d).await?;
        tx.commit().await?;
        Ok(self.list_by_id(id).await?.context("reading back a list")?)
    }

    pub async fn update_list(
        &self,
        slug: &str,
        d: &ListDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<MailingList> {
        let mut tx = self.write_tx().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM lists WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
        let id = id.ok_or_else(|| StoreError::NotFound(format!("list {slug}")))?;
        sqlx::query(
            "UPDATE lists SET slug = $1, name = $2, description = $3, opt_in = $4, visibility = $5, updated_at = $6,
                 schedule_cron = $8, schedule_timezone = $9, min_items = $10, grace_minutes = $11
             WHERE id = $7",
        )
        .bind(d.slug.as_str())
        .bind(d.name.as_str())
        .bind(d.description.as_str())
        .bind(d.opt_in.as_str())
        .bind(d.visibility.as_str())
        .bind(to_ts(now))
        .bind(id)
        .bind(d.schedule.cron.as_str())
        .bind(d.schedule.timezone.name())
        .bind(i64::from(d.schedule.min_items))
        .bind(i64::from(d.schedule.grace_minutes))
        .execute(&mut *tx)
        .await
        .map_err(|e| taken_or(e, "slug", "list", d.slug.as_str()))?;
        Self::set_list_categories(&mut tx, id, d).await?;
        tx.commit().await?;
        Ok(self.list_by_id(id).await?.context("reading back a list")?)
    }

    /// Deletes a list nobody is a confirmed member of.
    pub async fn delete_list(&self, slug: &str) -> StoreResult<()> {
        let list = self
            .list_by_slug(slug)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("list {slug}")))?;
        let counts = self.list_counts(list.id).await?;
        let confirmed = counts
            .get(&MembershipStatus::Confirmed)
            .copied()
            .unwrap_or(0);
        if confirmed > 0 {
            return Err(StoreError::Conflict {
                field: "slug".into(),
                message: format!(
                    "list {slug} has {confirmed} confirmed member(s); unsubscribe them first"
                ),
            });
        }
        sqlx::query("DELETE FROM lists WHERE id = $1")
            .bind(list.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ---- memberships ---------------------------------------------------------------

    /// Puts a subscriber on a list with the given status (or changes their status there).
    pub async fn set_membership(
        &self,
        list_id: i64,
        subscriber_id: i64,
        status: MembershipStatus,
        why: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        Self::upsert_membership(&mut tx, list_id, subscriber_id, status, now).await?;
        let slug: String = sqlx::query_scalar("SELECT slug FROM lists WHERE id = $1")
            .bind(list_id)
            .fetch_one(&mut *tx)
            .await?;
        Self::record(
            &mut tx,
            subscriber_id,
            now,
            &format!("list {}", status.as_str()),
            &format!("{slug}: {why}"),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn upsert_membership(
        tx: &mut Transaction<'_, Any>,
        list_id: i64,
        subscriber_id: i64,
        status: MembershipStatus,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let ts = to_ts(now);
        let confirmed_at = (status == MembershipStatus::Confirmed).then_some(ts);
        let unsubscribed_at = (status == MembershipStatus::Unsubscribed).then_some(ts);
        sqlx::query(
            "INSERT INTO memberships (list_id, subscriber_id, status, created_at, updated_at, confirmed_at, unsubscribed_at)
             VALUES ($1, $2, $3, $4, $4, $5, $6)
             ON CONFLICT (list_id, subscriber_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at,
                 confirmed_at = COALESCE(excluded.confirmed_at, memberships.confirmed_at),
                 unsubscribed_at = excluded.unsubscribed_at",
        )
        .bind(list_id)
        .bind(subscriber_id)
        .bind(status.as_str())
        .bind(ts)
        .bind(confirmed_at)
        .bind(unsubscribed_at)
        .execute(&mut **tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation => StoreError::NotFound(
                format!("subscriber {subscriber_id} or list {list_id}"),
            ),
            _ => StoreError::from(e),
        })?;
        Ok(())
    }

    pub async fn membership_status(
        &self,
        list_id: i64,
        subscriber_id: i64,
    ) -> StoreResult<Option<MembershipStatus>> {
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM memberships WHERE list_id = $1 AND subscriber_id = $2",
        )
        .bind(list_id)
        .bind(subscriber_id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(status
            .map(|s| MembershipStatus::parse(&s))
            .transpose()
            .map_err(enum_err)?)
    }

    /// Where each of these subscribers stands on a list, in one query (those never on
    /// it are left out).
    pub async fn membership_statuses(
        &self,
        list_id: i64,
        subscriber_ids: &[i64],
    ) -> StoreResult<BTreeMap<i64, MembershipStatus>> {
        if subscriber_ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT subscriber_id, status FROM memberships WHERE list_id = $1 AND subscriber_id IN ({})",
            placeholders(2, subscriber_ids.len())
        );
        let mut query = sqlx::query_as::<_, (i64, String)>(&sql).bind(list_id);
        for id in subscriber_ids {
            query = query.bind(*id);
        }
        let mut out = BTreeMap::new();
        for (id, status) in query.fetch_all(&self.pool).await? {
            out.insert(id, MembershipStatus::parse(&status).map_err(enum_err)?);
        }
        Ok(out)
    }

    // ---- the public side: subscribe, confirm, unsubscribe --------------------------

    /// A request from the public form, in one transaction: creates the subscriber when
    /// new (confirmed when `consent` is given for a new address), then carries out
    /// what `admit` (the opt-in rule, given where the address and its membership stand)
    /// decides. The caller sends a confirmation mail when asked to and answers the
    /// same in every case.
    pub async fn request_subscription(
        &self,
        request: &crate::domain::SubscriptionRequest,
        list: &MailingList,
        consent: Option<&Consent>,
        now: DateTime<Utc>,
        admit: impl FnOnce(SubscriberStatus, Option<MembershipStatus>) -> crate::domain::Admission,
    ) -> StoreResult<SubscriptionOutcome> {
        let email = &request.email;
        let mut tx = self.write_tx().await?;
        let existing: Option<(i64, String)> =
            sqlx::query_as("SELECT id, status FROM subscribers WHERE email_key = $1")
                .bind(email.key())
                .fetch_optional(&mut *tx)
                .await?;
        let (id, status) = match existing {
            Some((id, status)) => (id, SubscriberStatus::parse(&status).map_err(enum_err)?),
            None => {
                let status = if consent.is_some() {
                    SubscriberStatus::Confirmed
                } else {
                    SubscriberStatus::Pending
                };
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO subscribers (email, email_key, name, language, status, joined_via,
                         consent_at, consent_source, consent_ip, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, 'form', $6, $7, $8, $9, $9) RETURNING id",
                )
                .bind(email.as_str())
                .bind(email.key())
                .bind(request.name.as_str())
                .bind(request.language.as_str())
                .bind(status.as_str())
                .bind(consent.map(|_| to_ts(now)))
                .bind(consent.map(|c| c.source.clone()))
                .bind(consent.and_then(|c| c.ip.clone()))
                .bind(to_ts(now))
                .fetch_one(&mut *tx)
                .await?;
                Self::record(
                    &mut tx,
                    id,
                    now,
                    "joined",
                    &format!("via form for {}", list.slug),
                )
                .await?;
                (id, status)
            }
        };
        let member: Option<String> = sqlx::query_scalar(
            "SELECT status FROM memberships WHERE list_id = $1 AND subscriber_id = $2",
        )
        .bind(list.id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        let member = member
            .map(|m| MembershipStatus::parse(&m))
            .transpose()
            .map_err(enum_err)?;
        let admitted = admit(status, member);
        if let Some(standing) = admitted.membership {
            Self::upsert_membership(&mut tx, list.id, id, standing, now).await?;
            if standing == MembershipStatus::Confirmed {
                Self::record(
                    &mut tx,
                    id,
                    now,
                    "list confirmed",
                    &format!("{}: single opt-in form", list.slug),
                )
                .await?;
            }
        }
        let outcome = if admitted.confirm_by_mail {
            // Kept for the consent record when the link is followed.
            sqlx::query("UPDATE subscribers SET consent_ip = COALESCE($1, consent_ip) WHERE id = $2 AND status <> 'confirmed'")
                .bind(request.ip.as_deref())
                .bind(id)
                .execute(&mut *tx)
                .await?;
            SubscriptionOutcome::NeedsConfirmation { subscriber_id: id }
        } else if admitted.membership == Some(MembershipStatus::Confirmed) {
            SubscriptionOutcome::Joined { subscriber_id: id }
        } else {
            SubscriptionOutcome::NothingToDo
        };
        tx.commit().await?;
        Ok(outcome)
    }

    /// Follows a confirmation link: the address is confirmed, the list joined, consent
    /// recorded. `None` for an unknown, used or expired token.
    pub async fn confirm_subscription(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<(i64, Option<i64>)>> {
        let mut tx = self.write_tx().await?;
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
        Self::record(
            &mut tx,
            subscriber_id,
            now,
            "confirmed",
            "address confirmed by mail link",
        )
        .await?;
        if let Some(list_id) = list_id {
            Self::upsert_membership(
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
            Self::record(&mut tx, subscriber_id, now, "list confirmed", &slug).await?;
        }
        tx.commit().await?;
        Ok(Some((subscriber_id, list_id)))
    }

    /// Leaves the token's list (or every list for a token without one). Repeating it
    /// changes nothing. `None` for an unknown token.
    pub async fn unsubscribe_by_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<TokenGrant>> {
        let Some(grant) = self
            .find_token(token_hash, TokenPurpose::Unsubscribe, now)
            .await?
        else {
            return Ok(None);
        };
        let mut tx = self.write_tx().await?;
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
            Self::record(
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

    // ---- tokens --------------------------------------------------------------------

    pub async fn store_token(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A live token of the given purpose.
    pub async fn find_token(
        &self,
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
            .fetch_optional(&self.pool)
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
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(subscriber_id, list_id)| TokenGrant {
            subscriber_id,
            list_id,
        }))
    }

    /// Applies the preference page: language, and the lists to be on. Lists not
    /// wanted are left; a wanted one is joined as `admit` (the opt-in rule, given where
    /// the address and its membership stand) decides.
    ///
    /// `timezone`: `None` leaves it, `Some(None)` goes back to the partner's zone.
    pub async fn save_preferences(
        &self,
        subscriber_id: i64,
        language: &str,
        timezone: Option<Option<&str>>,
        wanted: &[i64],
        now: DateTime<Utc>,
        admit: impl Fn(SubscriberStatus, Option<MembershipStatus>) -> crate::domain::Admission,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query("UPDATE subscribers SET language = $1, updated_at = $2 WHERE id = $3")
            .bind(language)
            .bind(to_ts(now))
            .bind(subscriber_id)
            .execute(&mut *tx)
            .await?;
        if let Some(zone) = timezone {
            sqlx::query("UPDATE subscribers SET timezone = $1 WHERE id = $2")
                .bind(zone)
                .bind(subscriber_id)
                .execute(&mut *tx)
                .await?;
        }
        let status: String = sqlx::query_scalar("SELECT status FROM subscribers WHERE id = $1")
            .bind(subscriber_id)
            .fetch_one(&mut *tx)
            .await?;
        let status = SubscriberStatus::parse(&status).map_err(enum_err)?;
        let current: Vec<(i64, String)> =
            sqlx::query_as("SELECT list_id, status FROM memberships WHERE subscriber_id = $1")
                .bind(subscriber_id)
                .fetch_all(&mut *tx)
                .await?;
        for (list_id, member_status) in &current {
            if !wanted.contains(list_id) && member_status != "unsubscribed" {
                Self::upsert_membership(
                    &mut tx,
                    *list_id,
                    subscriber_id,
                    MembershipStatus::Unsubscribed,
                    now,
                )
                .await?;
                Self::record(
                    &mut tx,
                    subscriber_id,
                    now,
                    "list unsubscribed",
                    "preference page",
                )
                .await?;
            }
        }
        for list_id in wanted {
            let member = current
                .iter()
                .find(|(l, _)| l == list_id)
                .map(|(_, s)| MembershipStatus::parse(s))
                .transpose()
                .map_err(enum_err)?;
            // Preferences only ever confirm: leaving is the loop above.
            if admit(status, member).membership == Some(MembershipStatus::Confirmed) {
                Self::upsert_membership(
                    &mut tx,
                    *list_id,
                    subscriber_id,
                    MembershipStatus::Confirmed,
                    now,
                )
                .await?;
                Self::record(
                    &mut tx,
                    subscriber_id,
                    now,
                    "list confirmed",
                    "preference page",
                )
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

fn taken_or(e: sqlx::Error, field: &str, what: &str, value: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            field: field.into(),
            message: format!("another {what} already has the {field} {value:?}"),
        }
    } else {
        StoreError::from(e)
    }
}
