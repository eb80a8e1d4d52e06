//! What readers see: the front page, a category page, an item page, a page of a feed.
//! Only published items whose time has come are shown.

use crate::app::App;
use crate::domain::{Category, Item, ItemStatus};
use crate::services::{ServiceError, ServiceResult};
use crate::store::FeedQuery;
use chrono::{DateTime, Utc};

/// Items on the front page and on each page of a category page.
pub const ITEMS_PER_PAGE: u32 = 20;

pub struct FrontPage {
    /// The newest visible items.
    pub items: Vec<Item>,
    pub categories: Vec<Category>,
}

pub async fn front_page(app: &App) -> ServiceResult<FrontPage> {
    let found = app
        .store
        .content()
        .feed_items(&FeedQuery {
            category: None,
            events_only: false,
            now: app.clock.now(),
            limit: ITEMS_PER_PAGE,
            offset: 0,
        })
        .await?;
    Ok(FrontPage {
        items: found.map(|f| f.items).unwrap_or_default(),
        categories: app.store.content().categories().await?,
    })
}

pub struct CategoryPage {
    pub category: Category,
    /// From the root down to this category.
    pub trail: Vec<Category>,
    /// Every category (for the tree of sub-sections).
    pub categories: Vec<Category>,
    pub items: Vec<Item>,
    pub page: u32,
    pub has_next: bool,
}

/// Page `page` (from 1) of a category. Not found: `section` for an unknown category,
/// `page` for a page past the last.
pub async fn category_page(app: &App, slug: &str, page: u32) -> ServiceResult<CategoryPage> {
    let no_section = || ServiceError::not_found("section");
    let categories = app.store.content().categories().await?;
    let category = categories
        .iter()
        .find(|c| c.slug == slug)
        .cloned()
        .ok_or_else(no_section)?;
    let page = page.max(1);
    let found = app
        .store
        .content()
        .feed_items(&FeedQuery {
            category: Some(&category.slug),
            events_only: false,
            now: app.clock.now(),
            limit: ITEMS_PER_PAGE,
            offset: u64::from(page - 1) * u64::from(ITEMS_PER_PAGE),
        })
        .await?
        .ok_or_else(no_section)?;
    if page > 1 && found.items.is_empty() {
        return Err(ServiceError::not_found("page"));
    }
    let mut trail = Vec::new();
    let mut at = Some(&category);
    while let Some(c) = at {
        trail.push(c.clone());
        at = c
            .parent
            .as_ref()
            .and_then(|p| categories.iter().find(|x| &x.slug == p));
    }
    trail.reverse();
    let shown = u64::from(page) * u64::from(ITEMS_PER_PAGE);
    Ok(CategoryPage {
        category,
        trail,
        categories,
        items: found.items,
        page,
        has_next: shown < found.total,
    })
}

/// The item with this slug when readers may see it.
pub async fn published_item(app: &App, slug: &str) -> ServiceResult<Item> {
    let now = app.clock.now();
    app.store
        .content()
        .item_by_slug(slug)
        .await?
        .filter(|i| i.status == ItemStatus::Published && i.is_visible_at(now))
        .ok_or_else(|| ServiceError::not_found("item"))
}

/// One page of a feed, with what its caching needs.
pub struct FeedPage {
    /// `None` for the feed of everything.
    pub category: Option<Category>,
    pub items: Vec<Item>,
    pub page: u32,
    pub last_page: u32,
    /// When what the feed shows last changed.
    pub changed_at: DateTime<Utc>,
    /// The next publication time: the page is stale from then on.
    pub expires_at: Option<DateTime<Utc>>,
}

/// Page `page` (from 1) of the feed of `category` (everything for `None`), events only
/// when asked; `None` when the category or the page does not exist.
pub async fn feed_page(
    app: &App,
    category: Option<&str>,
    events_only: bool,
    page: u32,
    now: DateTime<Utc>,
) -> ServiceResult<Option<FeedPage>> {
    let page_size = app.settings.feed_page_size;
    let category = match category {
        None => None,
        Some(slug) => match app.store.content().category(slug).await? {
            Some(c) => Some(c),
            None => return Ok(None),
        },
    };
    let scope = category.as_ref().map(|c| c.slug.as_str());
    let Some(found) = app
        .store
        .content()
        .feed_items(&FeedQuery {
            category: scope,
            events_only,
            now,
            limit: page_size,
            offset: u64::from(page.max(1) - 1) * u64::from(page_size),
        })
        .await?
    else {
        return Ok(None);
    };
    let last_page = found.total.div_ceil(u64::from(page_size)).max(1) as u32;
    if page > last_page {
        return Ok(None);
    }
    let changed_at = app.store.content().feed_changed_at(scope, now).await?;
    let expires_at = app.store.content().next_publication_after(now).await?;
    Ok(Some(FeedPage {
        category,
        items: found.items,
        page,
        last_page,
        changed_at,
        expires_at,
    }))
}
