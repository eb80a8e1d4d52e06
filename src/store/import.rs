//! The import aggregate: subscribers in bulk, in one transaction, a batch at a time.

use super::{Backend, Store, StoreResult, to_ts};
use crate::domain::{Email, JoinedVia, MembershipStatus, SubscriberStatus};
use chrono::{DateTime, Utc};
use sqlx::{Any, Row, Transaction};
use std::collections::{HashMap, HashSet};

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
    backend: Backend,
    terms: ImportTerms,
    now: DateTime<Utc>,
}

/// Bulk imports: `store.import()`.
#[derive(Clone, Copy)]
pub struct Import<'a> {
    pub(super) store: &'a Store,
}

impl Import<'_> {
    /// Opens an import: everything it applies is one transaction.
    pub async fn begin(self, terms: ImportTerms, now: DateTime<Utc>) -> StoreResult<ImportSession> {
        let mut tx = self.store.write_tx().await?;
        // The addresses this import has seen, to find the ones a file repeats. Kept in
        // the database (a temporary table, gone with the transaction or dropped at the
        // end) so memory stays flat however long the file.
        sqlx::query("CREATE TEMPORARY TABLE import_seen (email_key TEXT PRIMARY KEY)")
            .execute(&mut *tx)
            .await?;
        Ok(ImportSession {
            tx,
            backend: self.store.backend,
            terms,
            now,
        })
    }
}

/// What an import compares of a stored subscriber: id, name, partner, language and
/// attributes.
type Known = (i64, String, Option<i64>, String, String);

/// Rows per multi-row INSERT: 13 parameters a row stays far below SQLite's limit.
const INSERT_CHUNK: usize = 500;

impl ImportSession {
    /// Creates new subscribers, updates changed ones, leaves equal ones alone, and puts
    /// them all on the list (members already there keep their status: somebody who
    /// left is not signed up again by an import).
    ///
    /// Rows whose address came earlier in the import are left out and returned.
    pub async fn apply(
        &mut self,
        rows: &[ImportRow],
    ) -> StoreResult<(ImportCounts, Vec<ImportRow>)> {
        let (rows, repeated) = self.drop_repeats(rows).await?;
        let counts = self.apply_unique(&rows).await?;
        Ok((counts, repeated))
    }

    /// Splits rows into first sightings and repeats of an address seen before.
    async fn drop_repeats(
        &mut self,
        rows: &[ImportRow],
    ) -> StoreResult<(Vec<ImportRow>, Vec<ImportRow>)> {
        let keys: Vec<String> = rows.iter().map(|r| r.email.key()).collect();
        // A batch may repeat an address itself: each goes to the table once.
        let mut distinct = HashSet::with_capacity(keys.len());
        let batch_keys: Vec<&str> = keys
            .iter()
            .map(String::as_str)
            .filter(|k| distinct.insert(*k))
            .collect();
        let mut unseen: HashSet<String> = HashSet::with_capacity(batch_keys.len());
        for chunk in batch_keys.chunks(INSERT_CHUNK * 4) {
            let values: Vec<String> = (0..chunk.len())
                .map(|n| format!("({})", self.backend.positional(n + 1, 1)))
                .collect();
            let sql = format!(
                "INSERT INTO import_seen (email_key) VALUES {} ON CONFLICT DO NOTHING RETURNING email_key",
                values.join(", ")
            );
            let mut q = sqlx::query_scalar::<_, String>(&sql);
            for k in chunk {
                q = q.bind(*k);
            }
            unseen.extend(q.fetch_all(&mut *self.tx).await?);
        }
        let mut fresh = Vec::with_capacity(rows.len());
        let mut repeated = Vec::new();
        for (row, key) in rows.iter().zip(keys) {
            // First sighting in the import and first in this batch.
            if unseen.remove(&key) {
                fresh.push(row.clone());
            } else {
                repeated.push(row.clone());
            }
        }
        Ok((fresh, repeated))
    }

    async fn apply_unique(&mut self, rows: &[ImportRow]) -> StoreResult<ImportCounts> {
        let mut counts = ImportCounts::default();
        if rows.is_empty() {
            return Ok(counts);
        }
        let keys: Vec<String> = rows.iter().map(|r| r.email.key()).collect();
        let existing = self.existing(&keys).await?;
        let mut ids: Vec<i64> = Vec::with_capacity(rows.len());
        let mut new_rows: Vec<(&ImportRow, String)> = Vec::new();
        for (row, key) in rows.iter().zip(keys) {
            match existing.get(&key) {
                Some(known) => {
                    ids.push(known.0);
                    if self.update_if_changed(row, known).await? {
                        counts.updated += 1;
                    } else {
                        counts.unchanged += 1;
                    }
                }
                None => new_rows.push((row, key)),
            }
        }
        for chunk in new_rows.chunks(INSERT_CHUNK) {
            let new_ids = self.insert_new(chunk).await?;
            counts.created += new_ids.len() as u64;
            ids.extend(new_ids);
        }
        if let Some(list_id) = self.terms.list_id {
            counts.added_to_list = self.add_to_list(list_id, &ids).await?;
        }
        Ok(counts)
    }

    /// The stored subscribers among these addresses, by address.
    async fn existing(&mut self, keys: &[String]) -> StoreResult<HashMap<String, Known>> {
        let mut existing: HashMap<String, Known> = HashMap::new();
        for chunk in keys.chunks(INSERT_CHUNK * 4) {
            let sql = format!(
                "SELECT id, email_key, name, partner_id, language, attributes FROM subscribers WHERE email_key IN ({})",
                self.backend.positional(1, chunk.len())
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
        Ok(existing)
    }

    /// Writes a row over the stored subscriber when they differ; true when it did.
    async fn update_if_changed(&mut self, row: &ImportRow, known: &Known) -> StoreResult<bool> {
        let (id, name, partner, language, attributes) = known;
        if (name, partner, language, attributes)
            == (&row.name, &row.partner_id, &row.language, &row.attributes)
        {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE subscribers SET name = $1, partner_id = $2, language = $3, attributes = $4, updated_at = $5
             WHERE id = $6",
        )
        .bind(row.name.as_str())
        .bind(row.partner_id)
        .bind(row.language.as_str())
        .bind(row.attributes.as_str())
        .bind(to_ts(self.now))
        .bind(*id)
        .execute(&mut *self.tx)
        .await?;
        Ok(true)
    }

    /// Creates the subscribers of one chunk, each with a "joined" event; their ids.
    async fn insert_new(&mut self, chunk: &[(&ImportRow, String)]) -> StoreResult<Vec<i64>> {
        let now = to_ts(self.now);
        let terms = &self.terms;
        let consent_at = terms.consent_source.as_ref().map(|_| now);
        let values: Vec<String> = (0..chunk.len())
            .map(|n| format!("({})", self.backend.positional(n * 12 + 1, 12)))
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
        let events: Vec<String> = (0..new_ids.len())
            .map(|n| format!("({}, 'joined')", self.backend.positional(n * 3 + 1, 3)))
            .collect();
        let sql = format!(
            "INSERT INTO subscriber_events (subscriber_id, at, detail, kind) VALUES {}",
            events.join(", ")
        );
        let detail = format!("via {}", terms.via.as_str());
        let mut q = sqlx::query(&sql);
        for id in &new_ids {
            q = q.bind(*id).bind(now).bind(detail.as_str());
        }
        q.execute(&mut *self.tx).await?;
        Ok(new_ids)
    }

    /// Puts these subscribers on the list; members already there keep their status.
    /// How many were added.
    async fn add_to_list(&mut self, list_id: i64, ids: &[i64]) -> StoreResult<u64> {
        let now = to_ts(self.now);
        let status = self.terms.member_status;
        let confirmed_at = (status == MembershipStatus::Confirmed).then_some(now);
        let mut added = 0;
        for chunk in ids.chunks(INSERT_CHUNK * 2) {
            let values: Vec<String> = (0..chunk.len())
                .map(|n| format!("({})", self.backend.positional(n * 6 + 1, 6)))
                .collect();
            let sql = format!(
                "INSERT INTO memberships (list_id, subscriber_id, status, created_at, updated_at, confirmed_at)
                 VALUES {} ON CONFLICT (list_id, subscriber_id) DO NOTHING",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q
                    .bind(list_id)
                    .bind(*id)
                    .bind(status.as_str())
                    .bind(now)
                    .bind(now)
                    .bind(confirmed_at);
            }
            added += q.execute(&mut *self.tx).await?.rows_affected();
        }
        Ok(added)
    }

    pub async fn commit(mut self) -> StoreResult<()> {
        sqlx::query("DROP TABLE import_seen")
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }

    pub async fn rollback(self) -> StoreResult<()> {
        self.tx.rollback().await?;
        Ok(())
    }
}
