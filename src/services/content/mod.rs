//! Categories and items: every rule about writing them (create, update, move, delete
//! refused with the reason, publish now or at a time, unpublish, Markdown to sanitised
//! HTML), and ([`reads`]) what the pages and feeds show.
//!
//! Every write tells `app.content_events` what it touched (the store does, right after
//! the commit and before the write returns), so a reader asking right after a write gets
//! the new feed; other instances hear of it through the database (`crate::bridge`).

mod reads;
mod versions;

pub use reads::{
    CategoryPage, FeedPage, FrontPage, category_page, feed_page, front_page, published_item,
};
pub use versions::{delete_item_version, put_item_version};

use super::{ServiceError, ServiceResult};
use crate::app::App;
use crate::content::render_markdown;
use crate::domain::{Category, Item, ItemDraft, ItemStatus, NewCategory, Slug};
use crate::store::{ItemFilter, ItemHtml, ItemPage, Store, Written};
use chrono::{DateTime, Utc};

// ---- categories ----------------------------------------------------------------------

/// Every category, parents before children in creation order.
pub async fn list_categories(app: &App) -> ServiceResult<Vec<Category>> {
    Ok(app.store.content().categories().await?)
}

pub async fn category(app: &App, slug: &str) -> ServiceResult<Category> {
    app.store
        .content()
        .category(slug)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("category {slug:?}")))
}

/// Every category with the number of items filed under it (its descendants included).
pub async fn categories_with_counts(app: &App) -> ServiceResult<Vec<(Category, u64)>> {
    let all = app.store.content().categories().await?;
    let mut out = Vec::with_capacity(all.len());
    for c in all {
        let items = app
            .store
            .content()
            .items(&ItemFilter {
                category: Some(c.slug.clone()),
                limit: 1,
                ..Default::default()
            })
            .await?
            .total;
        out.push((c, items));
    }
    Ok(out)
}

pub async fn create_category(app: &App, draft: NewCategory) -> ServiceResult<Category> {
    let written = app
        .store
        .content()
        .create_category(&draft, app.clock.now())
        .await?;
    Ok(written.value)
}

/// Renames, re-describes, re-slugs or moves the category `slug` (not under itself).
pub async fn update_category(app: &App, slug: &str, draft: NewCategory) -> ServiceResult<Category> {
    let current =
        Slug::parse(slug).map_err(|_| ServiceError::not_found(format!("category {slug:?}")))?;
    let written = app
        .store
        .content()
        .update_category(&current, &draft, app.clock.now())
        .await?;
    // A rename shows in every item of the category, in every feed: the store announced
    // everything.
    Ok(written.value)
}

/// Deletes an empty category; one with child categories, items or lists is refused
/// (a conflict) with the reason.
pub async fn delete_category(app: &App, slug: &str) -> ServiceResult<()> {
    app.store
        .content()
        .delete_category(slug, app.clock.now())
        .await?;
    Ok(())
}

// ---- items ---------------------------------------------------------------------------

/// Which items to list (drafts included), one page of them.
#[derive(Debug, Clone, Default)]
pub struct ItemQuery {
    /// Items of this category and its descendants; it must exist.
    pub category: Option<Slug>,
    pub status: Option<ItemStatus>,
    /// Words to look for, as typed (see [`search_terms`]).
    pub search: Option<String>,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

/// A search as it is run: trimmed, at most 200 characters, nothing when blank.
pub fn search_terms(typed: &str) -> Option<String> {
    Some(typed.trim())
        .filter(|s| !s.is_empty())
        .map(|s| s.chars().take(200).collect())
}

/// Items newest first, drafts included.
pub async fn list_items(app: &App, q: ItemQuery) -> ServiceResult<ItemPage> {
    if let Some(c) = &q.category
        && app.store.content().category(c.as_str()).await?.is_none()
    {
        return Err(ServiceError::not_found(format!("category {c}")));
    }
    let page = q.page.max(1);
    Ok(app
        .store
        .content()
        .items(&ItemFilter {
            category: q.category.map(|c| c.as_str().to_owned()),
            status: q.status,
            search: q.search.as_deref().and_then(search_terms),
            published_within: None,
            limit: q.per_page,
            offset: u64::from(page - 1) * u64::from(q.per_page),
        })
        .await?)
}

/// What the dashboard shows of the content: the items published this (UTC) week, up
/// to 50, newest first, and how many drafts wait.
pub async fn this_week(app: &App) -> ServiceResult<(crate::domain::IsoWeek, ItemPage, u64)> {
    let now = app.clock.now();
    let week = crate::domain::IsoWeek::containing(now, chrono_tz::UTC);
    let content = app.store.content();
    let published = content
        .items(&ItemFilter {
            status: Some(ItemStatus::Published),
            published_within: Some((week.start(chrono_tz::UTC), now)),
            limit: 50,
            ..Default::default()
        })
        .await?;
    let drafts = content
        .items(&ItemFilter {
            status: Some(ItemStatus::Draft),
            limit: 1,
            ..Default::default()
        })
        .await?;
    Ok((week, published, drafts.total))
}

pub async fn item(app: &App, id: i64) -> ServiceResult<Item> {
    app.store
        .content()
        .item_by_id(id)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("item {id}")))
}

/// The sanitised HTML of some Markdown, as an item's body would show it.
pub fn preview(markdown: &str) -> String {
    render_markdown(markdown)
}

/// Stores a new item with its Markdown rendered, telling no one: for content loaded
/// before anything reads it (the demo). Everything else goes through [`create_item`].
pub async fn store_new_item(
    store: &Store,
    draft: &ItemDraft,
    now: DateTime<Utc>,
) -> ServiceResult<Written<Item>> {
    Ok(store
        .content()
        .create_item(draft, &html_of(draft), now)
        .await?)
}

/// A draft's bodies rendered and sanitised: the original's and each translation's.
fn html_of(draft: &ItemDraft) -> ItemHtml {
    ItemHtml {
        original: render_markdown(draft.body_markdown.as_str()),
        translations: draft
            .translations
            .iter()
            .map(|v| render_markdown(v.body_markdown.as_str()))
            .collect(),
    }
}

pub async fn create_item(app: &App, draft: ItemDraft) -> ServiceResult<Item> {
    let written = store_new_item(&app.store, &draft, app.clock.now()).await?;
    Ok(touched(app, written))
}

/// Replaces item `id` with `draft`.
pub async fn update_item(app: &App, id: i64, draft: ItemDraft) -> ServiceResult<Item> {
    let written = app
        .store
        .content()
        .update_item(id, &draft, &html_of(&draft), app.clock.now())
        .await?;
    Ok(touched(app, written))
}

pub async fn delete_item(app: &App, id: i64) -> ServiceResult<()> {
    let written = app.store.content().delete_item(id, app.clock.now()).await?;
    touched(app, written);
    Ok(())
}

/// Publishes an item now, or at `at` (a future time schedules it).
pub async fn publish_item(app: &App, id: i64, at: Option<DateTime<Utc>>) -> ServiceResult<Item> {
    let written = app
        .store
        .content()
        .set_item_status(id, ItemStatus::Published, at, app.clock.now())
        .await?;
    Ok(touched(app, written))
}

/// Takes an item back to draft: it leaves every feed and page.
pub async fn unpublish_item(app: &App, id: i64) -> ServiceResult<Item> {
    let written = app
        .store
        .content()
        .set_item_status(id, ItemStatus::Draft, None, app.clock.now())
        .await?;
    Ok(touched(app, written))
}

/// The value of an item write (the store told the listeners what it touched).
fn touched<T>(_app: &App, written: Written<T>) -> T {
    written.value
}
