//! Writes of items: each moves its categories' and the site's change marks, and says
//! which categories' feeds it touched.

use super::content::{Content, Written, slug_taken_or};
use super::{ContentChange, Store, StoreError, StoreResult, from_ts, to_ts};
use crate::domain::{Item, ItemDraft, ItemStatus, Slug};
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, Row, Transaction};

impl Content<'_> {
    pub async fn create_item(
        self,
        draft: &ItemDraft,
        html: &ItemHtml,
        now: DateTime<Utc>,
    ) -> StoreResult<Written<Item>> {
        let body_html = html.original.as_str();
        let mut tx = self.store.write_tx().await?;
        let category_ids = Self::category_ids(&mut tx, &draft.categories).await?;
        let free;
        let draft = if draft.slug_from_title {
            free = ItemDraft {
                slug: Self::free_item_slug(&mut tx, &draft.slug).await?,
                ..draft.clone()
            };
            &free
        } else {
            draft
        };
        let published_at = publication_time(draft, None, now);
        let inserted = sqlx::query(
            "INSERT INTO items (slug, title, summary, body_markdown, body_html, author, org_unit,
                 language, status, published_at, created_at, updated_at,
                 event_starts_at, event_ends_at, event_timezone, event_venue, event_online_url, event_mode,
                 event_mode_text)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14, $15, $16, $17, $18)
             RETURNING id",
        );
        let inserted = bind_item(inserted, draft, body_html, published_at, now)
            .fetch_one(&mut *tx)
            .await;
        let id: i64 = match inserted {
            Ok(row) => row.try_get(0)?,
            Err(e) => return Err(slug_taken_or(e, "item", draft.slug.as_str())),
        };
        Self::set_item_links(&mut tx, id, &category_ids, draft).await?;
        Self::set_translations(&mut tx, id, draft, html).await?;
        let mut touched = Self::touch_item_categories(&mut tx, id, now).await?;
        let change = touched_change(&mut touched);
        let version = bump_site(self.store, &mut tx, now, &change).await?;
        tx.commit().await?;
        self.store.announce_local(change, Some(version));
        self.written_item(id, touched).await
    }

    /// `made` when no item has it, else the first of `made-2`, `made-3`, ... that none
    /// has (cut to leave room for the number): a slug made from a title is never
    /// refused as taken.
    async fn free_item_slug(tx: &mut Transaction<'_, Any>, made: &Slug) -> StoreResult<Slug> {
        let taken: Vec<String> =
            sqlx::query_scalar("SELECT slug FROM items WHERE slug = $1 OR slug LIKE $2")
                .bind(made.as_str())
                .bind(format!("{}-%", made.as_str()))
                .fetch_all(&mut **tx)
                .await?;
        let taken: std::collections::HashSet<String> = taken.into_iter().collect();
        if !taken.contains(made.as_str()) {
            return Ok(made.clone());
        }
        for n in 2u64.. {
            let suffix = format!("-{n}");
            let stem = &made.as_str()[..made.as_str().len().min(Slug::MAX_LEN - suffix.len())];
            let candidate = format!("{}{suffix}", stem.trim_end_matches('-'));
            if !taken.contains(&candidate) {
                return Slug::parse(&candidate).map_err(|e| {
                    StoreError::Other(anyhow::anyhow!("made slug {candidate:?}: {e}"))
                });
            }
        }
        unreachable!("the numbers run out before the slugs do")
    }

    /// Replaces every field of an item. `published_at` is kept when the draft leaves
    /// it empty and the item was published before.
    pub async fn update_item(
        self,
        id: i64,
        draft: &ItemDraft,
        html: &ItemHtml,
        now: DateTime<Utc>,
    ) -> StoreResult<Written<Item>> {
        let written = self.replace_item(id, draft, html, now, None).await?;
        Ok(written.context("an unconditional item write was refused")?)
    }

    /// [`Self::update_item`], but only when the item's revision is still `seen`
    /// ([`Self::item_revision`], read before the item the draft was made from): `None`,
    /// with nothing written, when another write to this item came between. For writes
    /// made from the stored item (one language version), so that two of them at once
    /// cannot lose each other's change; writes to other items do not count.
    pub async fn update_item_unless_changed(
        self,
        id: i64,
        draft: &ItemDraft,
        html: &ItemHtml,
        now: DateTime<Utc>,
        seen: i64,
    ) -> StoreResult<Option<Written<Item>>> {
        self.replace_item(id, draft, html, now, Some(seen)).await
    }

    /// The count of item `id`'s writes (`None`: no such item). Every write moves it.
    pub async fn item_revision(self, id: i64) -> StoreResult<Option<i64>> {
        Ok(
            sqlx::query_scalar("SELECT revision FROM items WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.store.pool)
                .await?,
        )
    }

    async fn replace_item(
        self,
        id: i64,
        draft: &ItemDraft,
        html: &ItemHtml,
        now: DateTime<Utc>,
        seen: Option<i64>,
    ) -> StoreResult<Option<Written<Item>>> {
        let body_html = html.original.as_str();
        let mut tx = self.store.write_tx().await?;
        let previous: Option<(Option<i64>, String)> =
            sqlx::query_as("SELECT published_at, slug FROM items WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((previous_published, previous_slug)) = previous else {
            return Err(StoreError::NotFound(format!("item {id}")));
        };
        // A draft without a slug of its own keeps the item's address: a new title does
        // not move the page every link and feed reader knows.
        let kept;
        let draft = match Slug::parse(&previous_slug) {
            Ok(slug) if draft.slug_from_title => {
                kept = ItemDraft {
                    slug,
                    ..draft.clone()
                };
                &kept
            }
            _ => draft,
        };
        let category_ids = match Self::category_ids(&mut tx, &draft.categories).await {
            Ok(ids) => ids,
            // A draft made from the stored item names its categories as they were read:
            // one renamed since is a change come between, not a bad draft.
            Err(StoreError::Invalid { .. }) if seen.is_some() => {
                tx.rollback().await?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let mut touched = Self::touch_item_categories(&mut tx, id, now).await?;
        let published_at = publication_time(draft, previous_published.map(from_ts), now);
        // Conditional on the revision read (`$20`) when `seen`; the row is locked from
        // here to the commit, so no write to it comes between.
        let sql = format!(
            "UPDATE items SET slug = $1, title = $2, summary = $3, body_markdown = $4, body_html = $5,
                 author = $6, org_unit = $7, language = $8, status = $9, published_at = $10,
                 updated_at = $11, event_starts_at = $12, event_ends_at = $13, event_timezone = $14,
                 event_venue = $15, event_online_url = $16, event_mode = $17, event_mode_text = $18,
                 revision = revision + 1
             WHERE id = $19{}",
            if seen.is_some() { " AND revision = $20" } else { "" }
        );
        let mut updated =
            bind_item(sqlx::query(&sql), draft, body_html, published_at, now).bind(id);
        if let Some(seen) = seen {
            updated = updated.bind(seen);
        }
        match updated.execute(&mut *tx).await {
            Err(e) => return Err(slug_taken_or(e, "item", draft.slug.as_str())),
            // Written since it was read (it exists: read above, in this transaction).
            Ok(done) if done.rows_affected() == 0 => {
                tx.rollback().await?;
                return Ok(None);
            }
            Ok(_) => {}
        }
        sqlx::query("DELETE FROM item_categories WHERE item_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM item_tags WHERE item_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM item_translations WHERE item_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        Self::set_item_links(&mut tx, id, &category_ids, draft).await?;
        Self::set_translations(&mut tx, id, draft, html).await?;
        touched.extend(Self::touch_item_categories(&mut tx, id, now).await?);
        let change = touched_change(&mut touched);
        let version = bump_site(self.store, &mut tx, now, &change).await?;
        tx.commit().await?;
        self.store.announce_local(change, Some(version));
        self.written_item(id, touched).await.map(Some)
    }

    /// Publishes (at `at`, or now) or unpublishes an item.
    pub async fn set_item_status(
        self,
        id: i64,
        status: ItemStatus,
        at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<Written<Item>> {
        let mut tx = self.store.write_tx().await?;
        let published_at = match status {
            ItemStatus::Published => Some(to_ts(at.unwrap_or(now))),
            ItemStatus::Draft => None,
        };
        // Unpublishing keeps the old time so a later publish without a time restores it
        // only when asked; here the time is dropped so the item is plainly a draft.
        let updated = sqlx::query(
            "UPDATE items SET status = $1, published_at = $2, updated_at = $3,
                 revision = revision + 1
             WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(published_at)
        .bind(to_ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("item {id}")));
        }
        let mut touched = Self::touch_item_categories(&mut tx, id, now).await?;
        let change = touched_change(&mut touched);
        let version = bump_site(self.store, &mut tx, now, &change).await?;
        tx.commit().await?;
        self.store.announce_local(change, Some(version));
        self.written_item(id, touched).await
    }

    pub async fn delete_item(self, id: i64, now: DateTime<Utc>) -> StoreResult<Written<()>> {
        let mut tx = self.store.write_tx().await?;
        let mut touched = Self::touch_item_categories(&mut tx, id, now).await?;
        let change = touched_change(&mut touched);
        let deleted = sqlx::query("DELETE FROM items WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("item {id}")));
        }
        let version = bump_site(self.store, &mut tx, now, &change).await?;
        tx.commit().await?;
        self.store.announce_local(change, Some(version));
        Ok(Written {
            value: (),
            touched_categories: touched,
        })
    }

    async fn written_item(self, id: i64, mut touched: Vec<String>) -> StoreResult<Written<Item>> {
        touched.sort();
        touched.dedup();
        let value = self
            .item_by_id(id)
            .await?
            .context("reading back a written item")?;
        Ok(Written {
            value,
            touched_categories: touched,
        })
    }

    async fn category_ids(tx: &mut Transaction<'_, Any>, slugs: &[Slug]) -> StoreResult<Vec<i64>> {
        let mut ids = Vec::with_capacity(slugs.len());
        for (n, slug) in slugs.iter().enumerate() {
            ids.push(Self::category_id(tx, &format!("categories[{n}]"), slug.as_str()).await?);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    async fn set_item_links(
        tx: &mut Transaction<'_, Any>,
        id: i64,
        category_ids: &[i64],
        draft: &ItemDraft,
    ) -> StoreResult<()> {
        for category_id in category_ids {
            sqlx::query("INSERT INTO item_categories (item_id, category_id) VALUES ($1, $2)")
                .bind(id)
                .bind(category_id)
                .execute(&mut **tx)
                .await?;
        }
        for (position, tag) in draft.tags.iter().enumerate() {
            sqlx::query("INSERT INTO item_tags (item_id, position, tag) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(position as i64)
                .bind(tag.as_str())
                .execute(&mut **tx)
                .await?;
        }
        Ok(())
    }

    /// Moves `content_changed_at` of the item's categories and all their ancestors,
    /// and returns their slugs.
    async fn touch_item_categories(
        tx: &mut Transaction<'_, Any>,
        item_id: i64,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<String>> {
        let slugs: Vec<String> = sqlx::query_scalar(
            "WITH RECURSIVE up(id) AS (
                 SELECT category_id FROM item_categories WHERE item_id = $1
                 UNION
                 SELECT c.parent_id FROM categories c JOIN up ON c.id = up.id WHERE c.parent_id IS NOT NULL
             )
             UPDATE categories SET content_changed_at = $2 WHERE id IN (SELECT id FROM up)
             RETURNING slug",
        )
        .bind(item_id)
        .bind(to_ts(now))
        .fetch_all(&mut **tx)
        .await?;
        Ok(slugs)
    }
}

/// Moves the site-wide content version and change time on, for every content write,
/// and announces `change` with the new version inside the transaction (see
/// `changes.rs`). Returns the version, for [`Store::announce_local`] after the commit.
pub(super) async fn bump_site(
    store: &Store,
    tx: &mut Transaction<'static, Any>,
    now: DateTime<Utc>,
    change: &ContentChange,
) -> StoreResult<i64> {
    let version: i64 = sqlx::query_scalar(
            "UPDATE site_state SET content_version = content_version + 1, content_changed_at = $1 WHERE id = 1
             RETURNING content_version",
        )
        .bind(to_ts(now))
        .fetch_one(&mut **tx)
        .await?;
    store.notify_in(tx, change, Some(version)).await?;
    Ok(version)
}

/// The announcement of an item write: the categories it touched, each once.
fn touched_change(touched: &mut Vec<String>) -> ContentChange {
    touched.sort();
    touched.dedup();
    ContentChange::Categories(touched.clone())
}

/// When a written item counts as published: its own time, else the time it already
/// had, else now. Drafts have none.
fn publication_time(
    draft: &ItemDraft,
    previous: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match draft.status {
        ItemStatus::Draft => draft.published_at,
        ItemStatus::Published => Some(draft.published_at.or(previous).unwrap_or(now)),
    }
}

/// Binds `$1`..`$17` of the item insert and update, which name the same columns in the
/// same order.
fn bind_item<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    draft: &'q ItemDraft,
    body_html: &'q str,
    published_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Query<'q, Any, AnyArguments<'q>> {
    let event = draft.event.as_ref();
    query
        .bind(draft.slug.as_str())
        .bind(draft.title.as_str())
        .bind(draft.summary.as_str())
        .bind(draft.body_markdown.as_str())
        .bind(body_html)
        .bind(draft.author.as_str())
        .bind(draft.org_unit.as_str())
        .bind(draft.language.as_str())
        .bind(draft.status.as_str())
        .bind(published_at.map(to_ts))
        .bind(to_ts(now))
        .bind(event.map(|e| to_ts(e.starts_at)))
        .bind(event.and_then(|e| e.ends_at).map(to_ts))
        .bind(event.map(|e| e.timezone.name()))
        .bind(event.and_then(|e| e.venue.clone()))
        .bind(event.and_then(|e| e.online_url.clone()))
        .bind(event.map(|e| e.mode.as_str()))
        .bind(event.and_then(|e| e.mode_text.clone()))
}

/// The sanitised HTML of a draft's bodies: the original's, then each translation's in
/// the draft's order.
#[derive(Debug, Clone, Default)]
pub struct ItemHtml {
    pub original: String,
    pub translations: Vec<String>,
}

impl From<&str> for ItemHtml {
    /// A draft without translations.
    fn from(original: &str) -> Self {
        Self {
            original: original.to_owned(),
            translations: Vec::new(),
        }
    }
}

impl Content<'_> {
    /// Writes a draft's translations (the item has none at this point).
    async fn set_translations(
        tx: &mut Transaction<'_, Any>,
        id: i64,
        draft: &ItemDraft,
        html: &ItemHtml,
    ) -> StoreResult<()> {
        for (n, version) in draft.translations.iter().enumerate() {
            let body_html = html.translations.get(n).ok_or_else(|| {
                StoreError::Other(anyhow::anyhow!("no HTML for translation {n} of item {id}"))
            })?;
            sqlx::query(
                "INSERT INTO item_translations (item_id, language, title, summary, body_markdown,
                     body_html, event_venue, event_mode_text)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .bind(id)
            .bind(version.language.as_str())
            .bind(version.title.as_str())
            .bind(version.summary.as_str())
            .bind(version.body_markdown.as_str())
            .bind(body_html.as_str())
            .bind(version.venue.as_ref().map(|t| t.as_str().to_owned()))
            .bind(version.mode_text.as_ref().map(|t| t.as_str().to_owned()))
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}
