//! HTML pages: the front page, a category, an item (and its `.ics`).

use super::page_cache::{self, ANY_ITEM, Fresh};
use super::views::{CategoryLink, ItemView, Page, category_tree, feed_links};
use crate::domain::{Category, IdAuthority, Item};
use crate::feeds::{self, FeedEntry};
use crate::http::AppState;
use crate::services::{ServiceError, content};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// Page errors are pages too: a plain 404 or 500, never a stack trace.
pub enum PageError {
    NotFound(String),
    Internal(anyhow::Error),
}

impl<E: Into<anyhow::Error>> From<E> for PageError {
    fn from(e: E) -> Self {
        Self::Internal(e.into())
    }
}

type PageResult = Result<Response, PageError>;

impl PageError {
    pub(crate) fn into_page(self, state: &AppState) -> Response {
        let (status, template, message) = match self {
            PageError::NotFound(message) => (StatusCode::NOT_FOUND, "not_found", message),
            PageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "error", String::new())
            }
        };
        #[derive(Serialize)]
        struct Body {
            message: String,
        }
        let page = Page::new(&state.settings, "Not found", Vec::new(), Body { message });
        match state.templates.render(template, &page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}

async fn finish(state: &AppState, result: PageResult) -> Response {
    result.unwrap_or_else(|e| e.into_page(state))
}

/// A service's "not found" names what is missing (`section`, `page`, `item`).
fn service_error(e: ServiceError) -> PageError {
    match e {
        ServiceError::NotFound(what) => PageError::NotFound(format!("There is no such {what}.")),
        other => PageError::Internal(other.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct PageParams {
    page: Option<String>,
}

pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    page_cache::serve(&state, "/".into(), &headers, front(&state)).await
}

async fn front(state: &AppState) -> Result<Fresh, PageError> {
    let settings = &state.settings;
    let base = &settings.base_url;
    let front = content::front_page(state.app())
        .await
        .map_err(service_error)?;
    #[derive(Serialize)]
    struct Body {
        items: Vec<ItemView>,
        categories: Vec<CategoryLink>,
    }
    let page = Page::new(
        settings,
        "",
        feed_links(settings, "all", &settings.site_name),
        Body {
            items: front.items.iter().map(|i| ItemView::new(i, base)).collect(),
            categories: category_tree(&front.categories, base),
        },
    );
    Ok(Fresh {
        html: state.templates.render("index", &page)?,
        tags: vec![ANY_ITEM.into()],
        expires_at: next_publication(state).await?,
    })
}

/// When the next scheduled item goes live: a listing page reads differently from then.
async fn next_publication(
    state: &AppState,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, PageError> {
    Ok(state
        .store
        .content()
        .next_publication_after(state.clock.now())
        .await?)
}

fn link(c: &Category, base: &str) -> CategoryLink {
    CategoryLink {
        slug: c.slug.clone(),
        name: c.name.clone(),
        url: format!("{base}/categories/{}", c.slug),
        indent: 0,
    }
}

#[derive(Serialize)]
struct CategoryView {
    name: String,
    description: String,
}

#[derive(Serialize)]
struct CategoryBody {
    category: CategoryView,
    crumbs: Vec<CategoryLink>,
    children: Vec<CategoryLink>,
    items: Vec<ItemView>,
    prev_url: Option<String>,
    next_url: Option<String>,
}

pub async fn category(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(params): Query<PageParams>,
    headers: HeaderMap,
) -> Response {
    let page_no = match params.page.as_deref() {
        None => 1,
        Some(p) => match p.parse::<u32>().ok().filter(|n| *n >= 1) {
            Some(n) => n,
            None => {
                let missing = PageError::NotFound("There is no such page.".into());
                return page_cache::with_security_headers(missing.into_page(&state));
            }
        },
    };
    let key = format!("/categories/{slug}?page={page_no}");
    page_cache::serve(&state, key, &headers, category_page(&state, &slug, page_no)).await
}

async fn category_page(state: &AppState, slug: &str, page_no: u32) -> Result<Fresh, PageError> {
    let settings = &state.settings;
    let base = &settings.base_url;
    let found = content::category_page(state.app(), slug, page_no)
        .await
        .map_err(service_error)?;
    let category = &found.category;
    let children: Vec<CategoryLink> = category_tree(&found.categories, base)
        .into_iter()
        .filter(|l| {
            found
                .categories
                .iter()
                .any(|c| c.slug == l.slug && c.parent.as_deref() == Some(&category.slug))
        })
        .collect();
    let page_url = |n: u32| format!("{base}/categories/{}?page={n}", category.slug);
    let title = format!("{}: {}", settings.site_name, category.name);
    let page = Page::new(
        settings,
        &category.name,
        feed_links(settings, &category.slug, &title),
        CategoryBody {
            category: CategoryView {
                name: category.name.clone(),
                description: category.description.clone(),
            },
            crumbs: found.trail.iter().map(|c| link(c, base)).collect(),
            children,
            items: found.items.iter().map(|i| ItemView::new(i, base)).collect(),
            prev_url: (page_no > 1).then(|| page_url(page_no - 1)),
            next_url: found.has_next.then(|| page_url(page_no + 1)),
        },
    );
    // Its items are those of the category and its descendants, and an item write names
    // every ancestor of the categories it touched: the slug alone says when it changes.
    Ok(Fresh {
        html: state.templates.render("category", &page)?,
        tags: vec![category.slug.clone()],
        expires_at: next_publication(state).await?,
    })
}

/// An event as a calendar file.
fn ics(item: &Item, base: &str, ids: &IdAuthority) -> PageResult {
    if item.event.is_none() {
        return Err(PageError::NotFound("This item is not an event.".into()));
    }
    let entry = FeedEntry::from_item(item, base, ids);
    let body = feeds::ics::render(&item.title, ids.as_str(), &[entry], item.updated_at);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/calendar; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.ics\"", item.slug),
            ),
        ],
        body,
    )
        .into_response())
}

pub async fn item(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(slug) = file.strip_suffix(".ics") {
        let result = async {
            let item = content::published_item(state.app(), slug)
                .await
                .map_err(service_error)?;
            ics(&item, &state.settings.base_url, &state.ids)
        }
        .await;
        return page_cache::with_security_headers(finish(&state, result).await);
    }
    let key = format!("/items/{file}");
    page_cache::serve(&state, key, &headers, item_page(&state, &file)).await
}

async fn item_page(state: &AppState, slug: &str) -> Result<Fresh, PageError> {
    let settings = &state.settings;
    let base = &settings.base_url;
    let item = content::published_item(state.app(), slug)
        .await
        .map_err(service_error)?;
    #[derive(Serialize)]
    struct Body {
        item: ItemView,
    }
    let view = ItemView::new(&item, base);
    let feeds = match item.categories.first() {
        Some(c) => feed_links(
            settings,
            &c.slug,
            &format!("{}: {}", settings.site_name, c.name),
        ),
        None => feed_links(settings, "all", &settings.site_name),
    };
    let mut page = Page::new(settings, &item.title, feeds, Body { item: view });
    page.lang = item.language.clone();
    // A write of this item names its categories (before and after); one without any
    // counts as touched by every item write.
    let mut tags: Vec<String> = item.categories.iter().map(|c| c.slug.clone()).collect();
    if tags.is_empty() {
        tags.push(ANY_ITEM.into());
    }
    Ok(Fresh {
        html: state.templates.render("item", &page)?,
        tags,
        expires_at: None,
    })
}

pub async fn not_found(State(state): State<AppState>, uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::http::error::AppError::NotFound(format!(
            "{} (see /api/openapi.json)",
            uri.path()
        ))
        .into_response();
    }
    PageError::NotFound("There is nothing at this address.".into()).into_page(&state)
}
