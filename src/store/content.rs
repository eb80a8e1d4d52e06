//! The content aggregate: categories, and the item queries behind the admin lists, the
//! feeds and the pages. Item writes are in `items.rs`.

use super::names::{self, Owner};
use super::{
    ContentChange, Store, StoreError, StoreResult, from_ts, is_unique_violation, placeholders,
    to_ts,
};
use crate::domain::{
    Category, CategoryRef, Event, EventMode, Item, ItemStatus, ItemVersion, NewCategory, Slug,
    TimeZone,
};
use anyhow::Context;
use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use std::collections::HashMap;

/// Categories, items and feeds: `store.content()`.
#[derive(Clone, Copy)]
pub struct Content<'a> {
    pub(super) store: &'a Store,
}

/// What an admin list of items is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct ItemFilter {
    /// A category slug; its descendants are included.
    pub category: Option<String>,
    pub status: Option<ItemStatus>,
    /// Words the title, summary or slug must contain (any case), or the title or
    /// summary of one of the item's other language versions.
    pub search: Option<String>,
    /// Published (and visible) from the first instant up to the second.
    pub published_within: Option<(DateTime<Utc>, DateTime<Utc>)>,
    pub limit: u32,
    pub offset: u64,
}

/// What a feed shows: visible items of a category subtree (or of everything).
#[derive(Debug, Clone)]
pub struct FeedQuery<'a> {
    /// `None` for everything.
    pub category: Option<&'a str>,
    pub events_only: bool,
    pub now: DateTime<Utc>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Debug, Clone)]
pub struct ItemPage {
    pub items: Vec<Item>,
    pub total: u64,
}

/// The result of a content write: the value, and the slugs of every category whose
/// feeds it changed (the item's categories before and after, and their ancestors).
#[derive(Debug, Clone)]
pub struct Written<T> {
    pub value: T,
    pub touched_categories: Vec<String>,
}

pub(crate) const ITEM_COLUMNS: &str = "i.id, i.slug, i.title, i.summary, i.body_markdown, i.body_html, \
    i.author, i.org_unit, i.language, i.status, i.published_at, i.created_at, i.updated_at, \
    i.event_starts_at, i.event_ends_at, i.event_timezone, i.event_venue, i.event_online_url, \
    i.event_mode, i.event_mode_text";

/// The ids of a category and all its descendants, as a CTE named `subtree`.
pub(super) const SUBTREE_CTE: &str = "WITH RECURSIVE subtree(id) AS (
        SELECT id FROM categories WHERE slug = $1
        UNION
        SELECT c.id FROM categories c JOIN subtree s ON c.parent_id = s.id
    )";

fn category_from_row(row: &AnyRow) -> Result<Category, sqlx::Error> {
    Ok(Category {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        name: row.try_get("name")?,
        names: Default::default(),
        description: row.try_get("description")?,
        parent: row.try_get("parent_slug")?,
        created_at: from_ts(row.try_get("created_at")?),
        updated_at: from_ts(row.try_get("updated_at")?),
        content_changed_at: from_ts(row.try_get("content_changed_at")?),
    })
}

fn item_from_row(row: &AnyRow) -> anyhow::Result<Item> {
    let status: String = row.try_get("status")?;
    let event_mode: Option<String> = row.try_get("event_mode")?;
    let event = match event_mode {
        None => None,
        Some(mode) => {
            let starts: i64 = row.try_get("event_starts_at")?;
            let tz: Option<String> = row.try_get("event_timezone")?;
            Some(Event {
                starts_at: from_ts(starts),
                ends_at: row.try_get::<Option<i64>, _>("event_ends_at")?.map(from_ts),
                timezone: tz
                    .as_deref()
                    .map(TimeZone::parse)
                    .transpose()
                    .map_err(anyhow::Error::msg)?
                    .unwrap_or_default(),
                venue: row.try_get("event_venue")?,
                online_url: row.try_get("event_online_url")?,
                mode: EventMode::parse(&mode).map_err(anyhow::Error::msg)?,
                mode_text: row.try_get("event_mode_text")?,
            })
        }
    };
    Ok(Item {
        id: row.try_get("id")?,
        slug: row.try_get("slug")?,
        title: row.try_get("title")?,
        summary: row.try_get("summary")?,
        body_markdown: row.try_get("body_markdown")?,
        body_html: row.try_get("body_html")?,
        author: row.try_get("author")?,
        org_unit: row.try_get("org_unit")?,
        language: row.try_get("language")?,
        status: ItemStatus::parse(&status).map_err(anyhow::Error::msg)?,
        published_at: row.try_get::<Option<i64>, _>("published_at")?.map(from_ts),
        created_at: from_ts(row.try_get("created_at")?),
        updated_at: from_ts(row.try_get("updated_at")?),
        categories: Vec::new(),
        tags: Vec::new(),
        event,
        translations: Vec::new(),
    })
}

impl Content<'_> {
    // ---- categories ----------------------------------------------------------------

    pub async fn categories(self) -> StoreResult<Vec<Category>> {
        let rows = sqlx::query(
            "SELECT c.id, c.slug, c.name, c.description, p.slug AS parent_slug,
                    c.created_at, c.updated_at, c.content_changed_at
             FROM categories c LEFT JOIN categories p ON p.id = c.parent_id
             ORDER BY c.id",
        )
        .fetch_all(&self.store.pool)
        .await?;
        let categories: Vec<Category> = rows
            .iter()
            .map(category_from_row)
            .collect::<Result<_, _>>()?;
        self.with_names(categories).await
    }

    /// Categories with their names in other languages.
    async fn with_names(self, mut categories: Vec<Category>) -> StoreResult<Vec<Category>> {
        let ids: Vec<i64> = categories.iter().map(|c| c.id).collect();
        let mut names = names::read(&self.store.pool, Owner::Category, &ids).await?;
        for c in &mut categories {
            c.names = names.remove(&c.id).unwrap_or_default();
        }
        Ok(categories)
    }

    pub async fn category(self, slug: &str) -> StoreResult<Option<Category>> {
        let row = sqlx::query(
            "SELECT c.id, c.slug, c.name, c.description, p.slug AS parent_slug,
                    c.created_at, c.updated_at, c.content_changed_at
             FROM categories c LEFT JOIN categories p ON p.id = c.parent_id
             WHERE c.slug = $1",
        )
        .bind(slug)
        .fetch_optional(&self.store.pool)
        .await?;
        let category: Option<Category> = row.as_ref().map(category_from_row).transpose()?;
        Ok(self.with_names(category.into_iter().collect()).await?.pop())
    }

    pub(super) async fn category_id(
        tx: &mut Transaction<'_, Any>,
        field: &str,
        slug: &str,
    ) -> StoreResult<i64> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM categories WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut **tx)
            .await?;
        id.ok_or_else(|| StoreError::Invalid {
            field: field.into(),
            message: format!("no category has the slug {slug:?}"),
        })
    }

    pub async fn create_category(
        self,
        new: &NewCategory,
        now: DateTime<Utc>,
    ) -> StoreResult<Written<Category>> {
        let mut tx = self.store.write_tx().await?;
        let parent_id = match &new.parent {
            Some(p) => Some(Self::category_id(&mut tx, "parent", p.as_str()).await?),
            None => None,
        };
        let inserted = sqlx::query(
            "INSERT INTO categories (slug, name, description, parent_id, created_at, updated_at, content_changed_at)
             VALUES ($1, $2, $3, $4, $5, $5, $5)",
        )
        .bind(new.slug.as_str())
        .bind(new.name.as_str())
        .bind(new.description.as_str())
        .bind(parent_id)
        .bind(to_ts(now))
        .execute(&mut *tx)
        .await;
        if let Err(e) = inserted {
            return Err(slug_taken_or(e, "category", new.slug.as_str()));
        }
        let id = Self::category_id(&mut tx, "slug", new.slug.as_str()).await?;
        names::replace(&mut tx, Owner::Category, id, &new.names).await?;
        let version =
            super::items::bump_site(self.store, &mut tx, now, &ContentChange::Everything).await?;
        tx.commit().await?;
        self.store
            .announce_local(ContentChange::Everything, Some(version));
        let value = self
            .category(new.slug.as_str())
            .await?
            .context("reading back a created category")?;
        Ok(Written {
            value,
            touched_categories: Vec::new(),
        })
    }

    /// Renames, re-describes or moves a category (and may change its slug).
    pub async fn update_category(
        self,
        slug: &Slug,
        new: &NewCategory,
        now: DateTime<Utc>,
    ) -> StoreResult<Written<Category>> {
        let mut tx = self.store.write_tx().await?;
        let id = Self::category_id(&mut tx, "slug", slug.as_str())
            .await
            .map_err(|_| StoreError::NotFound(format!("category {slug}")))?;
        let parent_id = match &new.parent {
            Some(p) => {
                let pid = Self::category_id(&mut tx, "parent", p.as_str()).await?;
                // A category cannot move under itself or one of its descendants.
                let descendants: Vec<i64> =
                    sqlx::query_scalar(&format!("{SUBTREE_CTE} SELECT id FROM subtree"))
                        .bind(slug.as_str())
                        .fetch_all(&mut *tx)
                        .await?;
                if descendants.contains(&pid) {
                    return Err(StoreError::Invalid {
                        field: "parent".into(),
                        message: format!("{p} is {slug} itself or one of its descendants"),
                    });
                }
                Some(pid)
            }
            None => None,
        };
        let updated = sqlx::query(
            "UPDATE categories SET slug = $1, name = $2, description = $3, parent_id = $4,
                 updated_at = $5, content_changed_at = $5
             WHERE id = $6",
        )
        .bind(new.slug.as_str())
        .bind(new.name.as_str())
        .bind(new.description.as_str())
        .bind(parent_id)
        .bind(to_ts(now))
        .bind(id)
        .execute(&mut *tx)
        .await;
        if let Err(e) = updated {
            return Err(slug_taken_or(e, "category", new.slug.as_str()));
        }
        names::replace(&mut tx, Owner::Category, id, &new.names).await?;
        let version =
            super::items::bump_site(self.store, &mut tx, now, &ContentChange::Everything).await?;
        tx.commit().await?;
        self.store
            .announce_local(ContentChange::Everything, Some(version));
        let value = self
            .category(new.slug.as_str())
            .await?
            .context("reading back an updated category")?;
        // A rename shows in every item of the category, in every feed: all of them.
        let touched_categories = self
            .categories()
            .await?
            .into_iter()
            .map(|c| c.slug)
            .collect();
        Ok(Written {
            value,
            touched_categories,
        })
    }

    /// Deletes an empty category; one with children or items is refused with the reason.
    pub async fn delete_category(self, slug: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.store.write_tx().await?;
        let id = Self::category_id(&mut tx, "slug", slug)
            .await
            .map_err(|_| StoreError::NotFound(format!("category {slug}")))?;
        let children: Vec<String> =
            sqlx::query_scalar("SELECT slug FROM categories WHERE parent_id = $1 ORDER BY slug")
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        if !children.is_empty() {
            return Err(StoreError::Conflict {
                field: "slug".into(),
                message: format!(
                    "category {slug} has child categories ({}); move or delete them first",
                    children.join(", ")
                ),
            });
        }
        let items: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM item_categories WHERE category_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if items > 0 {
            return Err(StoreError::Conflict {
                field: "slug".into(),
                message: format!(
                    "category {slug} holds {items} item(s); move them to another category or delete them first"
                ),
            });
        }
        let lists: Vec<String> = sqlx::query_scalar(
            "SELECT l.slug FROM list_categories lc JOIN lists l ON l.id = lc.list_id WHERE lc.category_id = $1 ORDER BY l.slug",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        if !lists.is_empty() {
            return Err(StoreError::Conflict {
                field: "slug".into(),
                message: format!(
                    "category {slug} is covered by the list(s) {}; take it off them first",
                    lists.join(", ")
                ),
            });
        }
        sqlx::query("DELETE FROM categories WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let version =
            super::items::bump_site(self.store, &mut tx, now, &ContentChange::Everything).await?;
        tx.commit().await?;
        self.store
            .announce_local(ContentChange::Everything, Some(version));
        Ok(())
    }

    pub async fn item_by_id(self, id: i64) -> StoreResult<Option<Item>> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS} FROM items i WHERE i.id = $1"
        ))
        .bind(id)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(self.hydrate(rows).await?.pop())
    }

    pub async fn item_by_slug(self, slug: &str) -> StoreResult<Option<Item>> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS} FROM items i WHERE i.slug = $1"
        ))
        .bind(slug)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(self.hydrate(rows).await?.pop())
    }

    /// Items for admins, drafts included, newest first.
    pub async fn items(self, filter: &ItemFilter) -> StoreResult<ItemPage> {
        // $1 is the category slug (or NULL for all), $2 the status (or NULL).
        let (cte, in_category) = match filter.category {
            Some(_) => (
                SUBTREE_CTE,
                "i.id IN (SELECT ic.item_id FROM item_categories ic JOIN subtree s ON s.id = ic.category_id)",
            ),
            None => ("", "($1 IS NULL OR $1 IS NOT NULL)"),
        };
        // $3 is a LIKE pattern (or NULL), matched against the original's title, summary
        // and slug and the titles and summaries of the item's other language versions;
        // $4 and $5 a publication window (or NULL).
        let condition = format!(
            "{in_category} AND ($2 IS NULL OR i.status = $2)
             AND ($3 IS NULL OR LOWER(i.title) LIKE $3 ESCAPE '\\' OR LOWER(i.summary) LIKE $3 ESCAPE '\\'
                  OR i.slug LIKE $3 ESCAPE '\\'
                  OR EXISTS (SELECT 1 FROM item_translations t WHERE t.item_id = i.id
                      AND (LOWER(t.title) LIKE $3 ESCAPE '\\' OR LOWER(t.summary) LIKE $3 ESCAPE '\\')))
             AND ($4 IS NULL OR (i.status = 'published' AND i.published_at >= $4 AND i.published_at <= $5))"
        );
        let status = filter.status.map(|s| s.as_str());
        let pattern = filter
            .search
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(super::contains_pattern);
        let (since, until) = match filter.published_within {
            Some((from, to)) => (Some(to_ts(from)), Some(to_ts(to))),
            None => (None, None),
        };
        let total: i64 = sqlx::query_scalar(&format!(
            "{cte} SELECT COUNT(*) FROM items i WHERE {condition}"
        ))
        .bind(filter.category.as_deref())
        .bind(status)
        .bind(pattern.as_deref())
        .bind(since)
        .bind(until)
        .fetch_one(&self.store.pool)
        .await?;
        let rows = sqlx::query(&format!(
            "{cte} SELECT {ITEM_COLUMNS} FROM items i WHERE {condition}
             ORDER BY COALESCE(i.published_at, i.created_at) DESC, i.id DESC LIMIT $6 OFFSET $7"
        ))
        .bind(filter.category.as_deref())
        .bind(status)
        .bind(pattern.as_deref())
        .bind(since)
        .bind(until)
        .bind(i64::from(filter.limit))
        .bind(filter.offset as i64)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(ItemPage {
            items: self.hydrate(rows).await?,
            total: total as u64,
        })
    }

    /// Visible items for a feed or page, newest first. `None` from an unknown category.
    pub async fn feed_items(self, q: &FeedQuery<'_>) -> StoreResult<Option<ItemPage>> {
        if let Some(slug) = q.category
            && self.category(slug).await?.is_none()
        {
            return Ok(None);
        }
        let (cte, in_category) = match q.category {
            Some(_) => (
                SUBTREE_CTE,
                "i.id IN (SELECT ic.item_id FROM item_categories ic JOIN subtree s ON s.id = ic.category_id)",
            ),
            None => ("", "($1 IS NULL OR $1 IS NOT NULL)"),
        };
        let events = if q.events_only {
            "AND i.event_starts_at IS NOT NULL"
        } else {
            ""
        };
        let condition =
            format!("{in_category} AND i.status = 'published' AND i.published_at <= $2 {events}");
        let now = to_ts(q.now);
        let total: i64 = sqlx::query_scalar(&format!(
            "{cte} SELECT COUNT(*) FROM items i WHERE {condition}"
        ))
        .bind(q.category)
        .bind(now)
        .fetch_one(&self.store.pool)
        .await?;
        let rows = sqlx::query(&format!(
            "{cte} SELECT {ITEM_COLUMNS} FROM items i WHERE {condition}
             ORDER BY i.published_at DESC, i.id DESC LIMIT $3 OFFSET $4"
        ))
        .bind(q.category)
        .bind(now)
        .bind(i64::from(q.limit))
        .bind(q.offset as i64)
        .fetch_all(&self.store.pool)
        .await?;
        Ok(Some(ItemPage {
            items: self.hydrate(rows).await?,
            total: total as u64,
        }))
    }

    /// The first publication time after `now`: when a cached feed must be rebuilt.
    pub async fn next_publication_after(
        self,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let next: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(published_at) FROM items WHERE status = 'published' AND published_at > $1",
        )
        .bind(to_ts(now))
        .fetch_one(&self.store.pool)
        .await?;
        Ok(next.map(from_ts))
    }

    /// When the content of a feed last changed: a write to anything in the category's
    /// subtree (or anywhere, for `None`), or an item's publication time passing.
    pub async fn feed_changed_at(
        self,
        category: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<DateTime<Utc>> {
        let (written, published): (Option<i64>, Option<i64>) = match category {
            Some(slug) => {
                let written =
                    sqlx::query_scalar("SELECT content_changed_at FROM categories WHERE slug = $1")
                        .bind(slug)
                        .fetch_optional(&self.store.pool)
                        .await?;
                let published = sqlx::query_scalar(&format!(
                    "{SUBTREE_CTE} SELECT MAX(i.published_at) FROM items i
                     WHERE i.status = 'published' AND i.published_at <= $2
                       AND i.id IN (SELECT ic.item_id FROM item_categories ic JOIN subtree s ON s.id = ic.category_id)"
                ))
                .bind(slug)
                .bind(to_ts(now))
                .fetch_one(&self.store.pool)
                .await?;
                (written, published)
            }
            None => {
                let written =
                    sqlx::query_scalar("SELECT content_changed_at FROM site_state WHERE id = 1")
                        .fetch_optional(&self.store.pool)
                        .await?;
                let published = sqlx::query_scalar(
                    "SELECT MAX(published_at) FROM items WHERE status = 'published' AND published_at <= $1",
                )
                .bind(to_ts(now))
                .fetch_one(&self.store.pool)
                .await?;
                (written, published)
            }
        };
        Ok(from_ts(written.unwrap_or(0).max(published.unwrap_or(0))))
    }

    /// Goes up on every content write, by any instance sharing the database.
    pub async fn version(self) -> StoreResult<i64> {
        Ok(
            sqlx::query_scalar("SELECT content_version FROM site_state WHERE id = 1")
                .fetch_one(&self.store.pool)
                .await?,
        )
    }

    /// Fills in categories and tags of item rows, keeping their order.
    pub(super) async fn hydrate(self, rows: Vec<AnyRow>) -> StoreResult<Vec<Item>> {
        let mut items: Vec<Item> = rows
            .iter()
            .map(item_from_row)
            .collect::<anyhow::Result<_>>()?;
        if items.is_empty() {
            return Ok(items);
        }
        let ids: Vec<i64> = items.iter().map(|i| i.id).collect();
        let list = placeholders(1, ids.len());
        let sql = format!(
            "SELECT ic.item_id, c.slug, c.name, c.id FROM item_categories ic
             JOIN categories c ON c.id = ic.category_id
             WHERE ic.item_id IN ({list}) ORDER BY ic.item_id, c.id"
        );
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(*id);
        }
        let mut categories: HashMap<i64, Vec<(i64, CategoryRef)>> = HashMap::new();
        for row in q.fetch_all(&self.store.pool).await? {
            categories.entry(row.try_get(0)?).or_default().push((
                row.try_get(3)?,
                CategoryRef {
                    slug: row.try_get(1)?,
                    name: row.try_get(2)?,
                    names: Default::default(),
                },
            ));
        }
        let mut category_ids: Vec<i64> = categories.values().flatten().map(|(id, _)| *id).collect();
        category_ids.sort_unstable();
        category_ids.dedup();
        let names = names::read(&self.store.pool, Owner::Category, &category_ids).await?;
        let mut categories: HashMap<i64, Vec<CategoryRef>> = categories
            .into_iter()
            .map(|(item, refs)| {
                let refs = refs
                    .into_iter()
                    .map(|(id, mut c)| {
                        c.names = names.get(&id).cloned().unwrap_or_default();
                        c
                    })
                    .collect();
                (item, refs)
            })
            .collect();
        let sql = format!(
            "SELECT item_id, tag FROM item_tags WHERE item_id IN ({list}) ORDER BY item_id, position"
        );
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(*id);
        }
        let mut tags: HashMap<i64, Vec<String>> = HashMap::new();
        for row in q.fetch_all(&self.store.pool).await? {
            tags.entry(row.try_get(0)?)
                .or_default()
                .push(row.try_get(1)?);
        }
        let sql = format!(
            "SELECT item_id, language, title, summary, body_markdown, body_html, event_venue,
                 event_mode_text
             FROM item_translations WHERE item_id IN ({list}) ORDER BY item_id, language"
        );
        let mut q = sqlx::query(&sql);
        for id in &ids {
            q = q.bind(*id);
        }
        let mut translations: HashMap<i64, Vec<ItemVersion>> = HashMap::new();
        for row in q.fetch_all(&self.store.pool).await? {
            translations
                .entry(row.try_get(0)?)
                .or_default()
                .push(ItemVersion {
                    language: row.try_get(1)?,
                    title: row.try_get(2)?,
                    summary: row.try_get(3)?,
                    body_markdown: row.try_get(4)?,
                    body_html: row.try_get(5)?,
                    venue: row.try_get(6)?,
                    mode_text: row.try_get(7)?,
                });
        }
        for item in &mut items {
            item.categories = categories.remove(&item.id).unwrap_or_default();
            item.tags = tags.remove(&item.id).unwrap_or_default();
            item.translations = translations.remove(&item.id).unwrap_or_default();
        }
        Ok(items)
    }
}

pub(super) fn slug_taken_or(e: sqlx::Error, what: &str, slug: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::Conflict {
            field: "slug".into(),
            message: format!("another {what} already has the slug {slug:?}"),
        }
    } else {
        StoreError::from(e)
    }
}
