//! HTML pages: the front page, a category, an item (and its `.ics`).

use super::views::{CategoryLink, ItemView, Page, category_tree, feed_links};
use crate::domain::ItemStatus;
use crate::feeds::{self, FeedEntry};
use crate::http::AppState;
use crate::store::FeedQuery;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
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

fn render(state: &AppState, template: &str, data: &impl Serialize) -> PageResult {
    let html = state.templates.render(template, data)?;
    Ok(Html(html).into_response())
}

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

#[derive(Debug, Deserialize)]
pub struct PageParams {
    page: Option<String>,
}

const ITEMS_PER_PAGE: u32 = 20;

pub async fn index(State(state): State<AppState>) -> Response {
    let result = async {
        let settings = &state.settings;
        let base = &settings.base_url;
        let found = state
            .store
            .content()
            .feed_items(&FeedQuery {
                category: None,
                events_only: false,
                now: state.clock.now(),
                limit: ITEMS_PER_PAGE,
                offset: 0,
            })
            .await?
            .unwrap_or_else(|| crate::store::ItemPage {
                items: Vec::new(),
                total: 0,
            });
        let categories = state.store.content().categories().await?;
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
                items: found.items.iter().map(|i| ItemView::new(i, base)).collect(),
                categories: category_tree(&categories, base),
            },
        );
        render(&state, "index", &page)
    }
    .await;
    finish(&state, result).await
}

pub async fn category(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(params): Query<PageParams>,
) -> Response {
    let result = async {
        let settings = &state.settings;
        let base = &settings.base_url;
        let categories = state.store.content().categories().await?;
        let Some(category) = categories.iter().find(|c| c.slug == slug) else {
            return Err(PageError::NotFound("There is no such section.".into()));
        };
        let page_no = match params.page.as_deref() {
            None => 1,
            Some(p) => p
                .parse::<u32>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| PageError::NotFound("There is no such page.".into()))?,
        };
        let found = state
            .store
            .content()
            .feed_items(&FeedQuery {
                category: Some(&category.slug),
                events_only: false,
                now: state.clock.now(),
                limit: ITEMS_PER_PAGE,
                offset: u64::from(page_no - 1) * u64::from(ITEMS_PER_PAGE),
            })
            .await?
            .ok_or_else(|| PageError::NotFound("There is no such section.".into()))?;
        if page_no > 1 && found.items.is_empty() {
            return Err(PageError::NotFound("There is no such page.".into()));
        }
        // Breadcrumbs from the root down to this category.
        let mut crumbs = Vec::new();
        let mut at = Some(category);
        while let Some(c) = at {
            crumbs.push(CategoryLink {
                slug: c.slug.clone(),
                name: c.name.clone(),
                url: format!("{base}/categories/{}", c.slug),
                indent: 0,
            });
            at = c
                .parent
                .as_ref()
                .and_then(|p| categories.iter().find(|x| &x.slug == p));
        }
        crumbs.reverse();
        let children: Vec<CategoryLink> = category_tree(&categories, base)
            .into_iter()
            .filter(|l| {
                categories
                    .iter()
                    .any(|c| c.slug == l.slug && c.parent.as_deref() == Some(&category.slug))
            })
            .collect();
        let page_url = |n: u32| format!("{base}/categories/{}?page={n}", category.slug);
        #[derive(Serialize)]
        struct CategoryView {
            name: String,
            description: String,
        }
        #[derive(Serialize)]
        struct Body {
            category: CategoryView,
            crumbs: Vec<CategoryLink>,
            children: Vec<CategoryLink>,
            items: Vec<ItemView>,
            prev_url: Option<String>,
            next_url: Option<String>,
        }
        let shown = u64::from(page_no) * u64::from(ITEMS_PER_PAGE);
        let title = format!("{}: {}", settings.site_name, category.name);
        let page = Page::new(
            settings,
            &category.name,
            feed_links(settings, &category.slug, &title),
            Body {
                category: CategoryView {
                    name: category.name.clone(),
                    description: category.description.clone(),
                },
                crumbs,
                children,
                items: found.items.iter().map(|i| ItemView::new(i, base)).collect(),
                prev_url: (page_no > 1).then(|| page_url(page_no - 1)),
                next_url: (shown < found.total).then(|| page_url(page_no + 1)),
            },
        );
        render(&state, "category", &page)
    }
    .await;
    finish(&state, result).await
}

pub async fn item(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let result = async {
        let settings = &state.settings;
        let base = &settings.base_url;
        let (slug, ics) = match file.strip_suffix(".ics") {
            Some(slug) => (slug, true),
            None => (file.as_str(), false),
        };
        let now = state.clock.now();
        let item = state
            .store
            .content()
            .item_by_slug(slug)
            .await?
            .filter(|i| i.status == ItemStatus::Published && i.is_visible_at(now))
            .ok_or_else(|| PageError::NotFound("There is no such item.".into()))?;
        if ics {
            if item.event.is_none() {
                return Err(PageError::NotFound("This item is not an event.".into()));
            }
            let entry = FeedEntry::from_item(&item, base);
            let body = feeds::ics::render(
                &item.title,
                &feeds::tag_authority(base),
                &[entry],
                item.updated_at,
            );
            return Ok((
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
                .into_response());
        }
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
        render(&state, "item", &page)
    }
    .await;
    finish(&state, result).await
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
