//! Bulk import of subscribers in one transaction, a batch at a time.

use super::{Store, StoreResult, placeholders, to_ts};
use crate::domain::{Email, JoinedVia, MembershipStatus, SubscriberStatus};
use chrono::{DateTime, Utc};
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// One checked CSV row.
#[derive(Debug, Clone)]
pub struct ImportRow {
    pub line: u64,
    pub email: Email,
    pub name: String,
    pub partner_id: Option<i64>,
    pub language: String,
    /// A JSON object of the extra columns, keys sorted, so equal rows compare equal.
    pub attributes: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ImportCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub added_to_list: u64,
}

impl std::ops::AddAssign for ImportCounts {
    fn add_assign(&mut self, o: Self) {
        self.created += o.created;
        self.updated += o.updated;
        self.unchanged += o.unchanged;
        self.added_to_list += o.added_to_list;
    }
}

/// How imported contacts are let in.
#[derive(Debug, Clone)]
pub struct ImportTerms {
    pub list_id: Option<i64>,
    /// The status new members get on the list (pending on a double opt-in list unless
    /// consent was stated).
    pub member_status: MembershipStatus,
    /// The status new subscribers get.
    pub subscriber_status: SubscriberStatus,
    pub consent_source: Option<String>,
    pub via: JoinedVia,
}

/// An open import. Nothing is visible to others until `commit`; dropping it rolls back.
pub struct ImportSession {
    tx: Transaction<'static, Any>,
    terms: ImportTerms,
    now: DateTime<Utc>,
}

impl Store {
    pub async fn begin_import(
        &self,
        terms: ImportTerms,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportSession> {
        Ok(ImportSession {
            tx: self.pool.begin().await?,
            terms,
            now,
        })
    }
}

/// Rows per multi-row INSERT: 13 parameters a row stays far below SQLite's limit.
const INSERT_CHUNK: usize = 500;

impl ImportSession {
    /// Creates new subscribers, updates changed ones, leaves equal ones alone, and puts
    /// them all on the list (members already there keep their status: somebody who
    /// left is not signed up again by an import).
    pub async fn apply(&mut self, rows: &[ImportRow]) -> StoreResult<ImportCounts> {
        let mut counts = ImportCounts::default();
        if rows.is_empty() {
            return Ok(counts);
        }
        let now = to_ts(self.now);
        let keys: Vec<String> = rows.iter().map(|r| r.email.key()).collect();
        let mut existing: HashMap<String, (i64, String, Option<i64>, String, String)> =
            HashMap::new();
        for chunk in keys.chunks(INSERT_CHUNK * 4) {
            let sql = format!(
                "SELECT id, email_key, name, partner_id, language, attributes FROM subscribers WHERE email_key IN ({})",
                placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(&sql);
            for k in chunk {
                q = q.bind(k.as_str());
            }
            for row in q.fetch_all(&mut *self.tx).await? {
                existing.insert(
                    row.try_get(1)?,
                    (
                        row.try_get(0)?,
                        row.try_get(2)?,
                        row.try_get(3)?,
                        row.try_get(4)?,
                        row.try_get(5)?,
                    ),
                );
            }
        }
        let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
        let mut new_rows: Vec<(&ImportRow, String)> = Vec::new();
        for (row, key) in rows.iter().zip(keys) {
            match existing.get(&key) {
                Some((id, name, partner, language, attributes)) => {
                    ids.push(*id);
                    if (name, partner, language, attributes)
                        == (&row.name, &row.partner_id, &row.language, &row.attributes)
                    {
                        counts.unchanged += 1;
                    } else {
                        sqlx::query(
                            "UPDATE subscribers SET name = $1, partner_id = $2, language = $3, attributes = $4, updated_at = $5
                             WHERE id = $6",
                        )
                        .bind(row.name.as_str())
                        .bind(row.partner_id)
                        .bind(row.language.as_str())
                        .bind(row.attributes.as_str())
                        .bind(now)
                        .bind(*id)
                        .execute(&mut *self.tx)
                        .await?;
                        counts.updated += 1;
                    }
                }
                None => new_rows.push((row, key)),
            }
        }
        let terms = &self.terms;
        let consent_at = terms.consent_source.as_ref().map(|_| now);
        for chunk in new_rows.chunks(INSERT_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|n| format!("({})", placeholders(n * 12 + 1, 12)))
                .collect();
            let sql = format!(
                "INSERT INTO subscribers (email, email_key, name, partner_id, language, status, joined_via,
                     consent_at, consent_source, attributes, created_at, updated_at)
                 VALUES {} RETURNING id",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (row, key) in chunk {
                q = q
                    .bind(row.email.as_str())
                    .bind(key.as_str())
                    .bind(row.name.as_str())
                    .bind(row.partner_id)
                    .bind(row.language.as_str())
                    .bind(terms.subscriber_status.as_str())
                    .bind(terms.via.as_str())
                    .bind(consent_at)
                    .bind(terms.consent_source.as_deref())
                    .bind(row.attributes.as_str())
                    .bind(now)
                    .bind(now);
            }
            let inserted = q.fetch_all(&mut *self.tx).await?;
            let new_ids: Vec<i64> = inserted
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()?;
            counts.created += new_ids.len() as u64;
            let events: Vec<String> = (0..new_ids.len())
                .map(|n| format!("(${}, $1, 'joined', $2)", n + 3))
                .collect();
            let sql = format!(
                "INSERT INTO subscriber_events (subscriber_id, at, kind, detail) VALUES {}",
                events.join(", ")
            );
            let mut q = sqlx::query(&sql)
                .bind(now)
                .bind(format!("via {}", terms.via.as_str()));
            for id in &new_ids {
                q = q.bind(*id);
            }
            q.execute(&mut *self.tx).await?;
            ids.extend(new_ids);
        }
        if let Some(list_id) = terms.list_id {
            let confirmed_at = (terms.member_status == MembershipStatus::Confirmed).then_some(now);
            for chunk in ids.chunks(INSERT_CHUNK * 2) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|n| format!("($1, ${}, $2, $3, $3, $4)", n + 5))
                    .collect();
                let sql = format!(
                    "INSERT INTO memberships (list_id, subscriber_id, status, created_at, updated_at, confirmed_at)
                     VALUES {} ON CONFLICT (list_id, subscriber_id) DO NOTHING",
                    values.join(", ")
                );
                let mut q = sqlx::query(&sql)
                    .bind(list_id)
                    .bind(terms.member_status.as_str())
                    .bind(now)
                    .bind(confirmed_at);
                for id in chunk {
                    q = q.bind(*id);
                }
                counts.added_to_list += q.execute(&mut *self.tx).await?.rows_affected();
            }
        }
        Ok(counts)
    }

    pub async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
