//! The lists aggregate: mailing lists, who is on them, the public form's subscription
//! request and the preference page.

use super::names::{self, Owner};
use super::people::{People, enum_err, taken_or};
use super::{ContentChange, Store, StoreError, StoreResult, from_ts, placeholders, to_ts};
use crate::domain::{
    Consent, CronExpr, DeliveryZone, ListDraft, MailingList, Membership, MembershipStatus, OptIn,
    Schedule, SubscriberStatus, SubscriptionOutcome, TimeZone, Visibility,
};
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::BTreeMap;

/// Mailing lists and memberships: `store.lists()`.
#[derive(Clone, Copy)]
pub struct Lists<'a> {
    pub(super) store: &'a Store,
}

impl Lists<'_> {
    pub async fn all(self) -> StoreResult<Vec<MailingList>> {
        let rows = sqlx::query("SELECT * FROM lists ORDER BY slug")
            .fetch_all(&self.store.pool)
            .await?;
        self.read(rows).await
    }

    pub async fn by_slug(self, slug: &str) -> StoreResult<Option<MailingList>> {
        let rows = sqlx::query("SELECT * FROM lists WHERE slug = $1")
            .bind(slug)
            .fetch_all(&self.store.pool)
            .await?;
        Ok(self.read(rows).await?.pop())
    }

    pub async fn by_id(self, id: i64) -> StoreResult<Option<MailingList>> {
        let rows = sqlx::query("SELECT * FROM lists WHERE id = $1")
            .bind(id)
            .fetch_all(&self.store.pool)
            .await?;
        Ok(self.read(rows).await?.pop())
    }

    /// Lists from their rows, with the slugs of the categories each covers.
    async fn read(self, rows: Vec<AnyRow>) -> StoreResult<Vec<MailingList>> {
        let mut lists = Vec::with_capacity(rows.len());
        for row in &rows {
            lists.push(MailingList {
                id: row.try_get("id")?,
                slug: row.try_get("slug")?,
                name: row.try_get("name")?,
                names: Default::default(),
                description: row.try_get("description")?,
                categories: Vec::new(),
                opt_in: OptIn::parse(&row.try_get::<String, _>("opt_in")?).map_err(enum_err)?,
                visibility: Visibility::parse(&row.try_get::<String, _>("visibility")?)
                    .map_err(enum_err)?,
                schedule: Schedule {
                    cron: CronExpr::parse(&row.try_get::<String, _>("schedule_cron")?)
                        .map_err(enum_err)?,
                    timezone: TimeZone::parse(&row.try_get::<String, _>("schedule_timezone")?)
                        .map_err(enum_err)?,
                    min_items: row.try_get::<i64, _>("min_items")? as u32,
                    grace_minutes: row.try_get::<i64, _>("grace_minutes")? as u32,
                    delivery: DeliveryZone::parse(&row.try_get::<String, _>("schedule_delivery")?)
                        .map_err(enum_err)?,
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
        for row in q.fetch_all(&self.store.pool).await? {
            let list_id: i64 = row.try_get(0)?;
            if let Some(l) = lists.iter_mut().find(|l| l.id == list_id) {
                l.categories.push(row.try_get(1)?);
            }
        }
        let ids: Vec<i64> = lists.iter().map(|l| l.id).collect();
        let mut names = names::read(&self.store.pool, Owner::List, &ids).await?;
        for l in &mut lists {
            l.names = names.remove(&l.id).unwrap_or_default();
        }
        Ok(lists)
    }

    /// Members of a list by membership status.
    pub async fn counts(self, list_id: i64) -> StoreResult<BTreeMap<MembershipStatus, u64>> {
        let rows = sqlx::query(
            "SELECT status, COUNT(*) FROM memberships WHERE list_id = $1 GROUP BY status",
        )
        .bind(list_id)
        .fetch_all(&self.store.pool)
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

    /// The readers a digest of the list would go to (confirmed on the list and as
    /// subscribers), counted by their zone: their own, else their institution's; `None`
    /// for those with neither.
    pub async fn reader_zones(self, list_id: i64) -> StoreResult<Vec<(Option<String>, u64)>> {
        let rows = sqlx::query(
            "SELECT COALESCE(s.timezone, p.timezone) AS zone, COUNT(*)
             FROM memberships m JOIN subscribers s ON s.id = m.subscriber_id
                 LEFT JOIN partners p ON p.id = s.partner_id
             WHERE m.list_id = $1 AND m.status = 'confirmed' AND s.status = 'confirmed'
             GROUP BY COALESCE(s.timezone, p.timezone)",
        )
        .bind(list_id)
        .fetch_all(&self.store.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push((row.try_get(0)?, row.try_get::<i64, _>(1)?.max(0) as u64));
        }
        Ok(out)
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
                message: format!("no category has the slug {:?}", slug.as_str()),
            })?;
            sqlx::query("INSERT INTO list_categories (list_id, category_id) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(list_id)
                .bind(category)
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    pub async fn create(self, d: &ListDraft, now: DateTime<Utc>) -> StoreResult<MailingList> {
        let mut tx = self.store.write_tx().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO lists (slug, name, description, opt_in, visibility, created_at, updated_at,
                 schedule_cron, schedule_timezone, min_items, grace_minutes, schedule_delivery)
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8, $9, $10, $11) RETURNING id",
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
        .bind(d.schedule.delivery.as_str())
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| taken_or(e, "slug", "list", d.slug.as_str()))?;
        Self::set_list_categories(&mut tx, id, d).await?;
        names::replace(&mut tx, Owner::List, id, &d.names).await?;
        self.store
            .notify_in(&mut tx, &ContentChange::List(id), None)
            .await?;
        tx.commit().await?;
        self.store.announce_local(ContentChange::List(id), None);
        Ok(self.by_id(id).await?.context("reading back a list")?)
    }

    pub async fn update(
        self,
        slug: &str,
        d: &ListDraft,
        now: DateTime<Utc>,
    ) -> StoreResult<MailingList> {
        let mut tx = self.store.write_tx().await?;
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM lists WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *tx)
            .await?;
        let id = id.ok_or_else(|| StoreError::NotFound(format!("list {slug}")))?;
        sqlx::query(
            "UPDATE lists SET slug = $1, name = $2, description = $3, opt_in = $4, visibility = $5, updated_at = $6,
                 schedule_cron = $8, schedule_timezone = $9, min_items = $10, grace_minutes = $11,
                 schedule_delivery = $12
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
        .bind(d.schedule.delivery.as_str())
        .execute(&mut *tx)
        .await
        .map_err(|e| taken_or(e, "slug", "list", d.slug.as_str()))?;
        Self::set_list_categories(&mut tx, id, d).await?;
        names::replace(&mut tx, Owner::List, id, &d.names).await?;
        self.store
            .notify_in(&mut tx, &ContentChange::List(id), None)
            .await?;
        tx.commit().await?;
        self.store.announce_local(ContentChange::List(id), None);
        Ok(self.by_id(id).await?.context("reading back a list")?)
    }

    /// Deletes a list nobody is a confirmed member of.
    pub async fn delete(self, slug: &str) -> StoreResult<()> {
        let list = self
            .by_slug(slug)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("list {slug}")))?;
        let counts = self.counts(list.id).await?;
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
        let mut tx = self.store.write_tx().await?;
        sqlx::query("DELETE FROM lists WHERE id = $1")
            .bind(list.id)
            .execute(&mut *tx)
            .await?;
        let change = ContentChange::List(list.id);
        self.store.notify_in(&mut tx, &change, None).await?;
        tx.commit().await?;
        self.store.announce_local(change, None);
        Ok(())
    }

    /// Puts a subscriber on a list with the given status (or changes their status there).
    pub async fn set_membership(
        self,
        list_id: i64,
        subscriber_id: i64,
        status: MembershipStatus,
        why: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.store.write_tx().await?;
        Self::upsert_membership(&mut tx, list_id, subscriber_id, status, now).await?;
        let slug: String = sqlx::query_scalar("SELECT slug FROM lists WHERE id = $1")
            .bind(list_id)
            .fetch_one(&mut *tx)
            .await?;
        People::record(
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

    pub(super) async fn upsert_membership(
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
        self,
        list_id: i64,
        subscriber_id: i64,
    ) -> StoreResult<Option<MembershipStatus>> {
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM memberships WHERE list_id = $1 AND subscriber_id = $2",
        )
        .bind(list_id)
        .bind(subscriber_id)
        .fetch_optional(&self.store.pool)
        .await?;
        Ok(status
            .map(|s| MembershipStatus::parse(&s))
            .transpose()
            .map_err(enum_err)?)
    }

    /// Where each of these subscribers stands on a list, in one query (those never on
    /// it are left out).
    pub async fn membership_statuses(
        self,
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
        for (id, status) in query.fetch_all(&self.store.pool).await? {
            out.insert(id, MembershipStatus::parse(&status).map_err(enum_err)?);
        }
        Ok(out)
    }

    pub async fn memberships_of(self, subscriber_id: i64) -> StoreResult<Vec<Membership>> {
        let rows = sqlx::query(
            "SELECT m.list_id, l.slug, l.name, m.status, m.created_at, m.confirmed_at, m.unsubscribed_at
             FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = $1 ORDER BY l.slug",
        )
        .bind(subscriber_id)
        .fetch_all(&self.store.pool)
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

    /// A request from the public form, in one transaction: creates the subscriber when
    /// new (confirmed when `consent` is given for a new address), then carries out
    /// what `admit` (the opt-in rule, given where the address and its membership stand)
    /// decides. The caller sends a confirmation mail when asked to and answers the
    /// same in every case.
    pub async fn request_subscription(
        self,
        request: &crate::domain::SubscriptionRequest,
        list: &MailingList,
        consent: Option<&Consent>,
        now: DateTime<Utc>,
        admit: impl FnOnce(SubscriberStatus, Option<MembershipStatus>) -> crate::domain::Admission,
    ) -> StoreResult<SubscriptionOutcome> {
        let email = &request.email;
        let mut tx = self.store.write_tx().await?;
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
                People::record(
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
                People::record(
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

    /// Applies the preference page: language, and the lists to be on. Lists not
    /// wanted are left; a wanted one is joined as `admit` (the opt-in rule, given where
    /// the address and its membership stand) decides.
    ///
    /// `timezone`: `None` leaves it, `Some(None)` goes back to the partner's zone.
    pub async fn save_preferences(
        self,
        subscriber_id: i64,
        language: &str,
        timezone: Option<Option<&str>>,
        wanted: &[i64],
        now: DateTime<Utc>,
        admit: impl Fn(SubscriberStatus, Option<MembershipStatus>) -> crate::domain::Admission,
    ) -> StoreResult<()> {
        let mut tx = self.store.write_tx().await?;
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
                People::record(
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
                People::record(
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
