//! `/feeds/{scope}.{format}` and `/feeds.opml`, served from the in-memory cache with
//! conditional GET and pre-compressed bodies.

use crate::domain::Slug;
use crate::feeds::cache::{CacheKey, CachedFeed, Encoding};
use crate::feeds::{self, FeedEntry, FeedFormat, FeedMeta, Paging};
use crate::http::AppState;
use crate::http::error::{ApiResult, AppError};
use crate::services::content;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct FeedParams {
    page: Option<String>,
}

pub async fn feed(
    state: State<AppState>,
    file: Path<String>,
    params: Query<FeedParams>,
    headers: HeaderMap,
) -> Response {
    // Outside the page layers (see `http::router`), so the feeds' errors get it here too.
    let mut response = match cached_feed(state, file, params, headers).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    super::headers::nosniff(response.headers_mut());
    response
}

async fn cached_feed(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<FeedParams>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (scope, format) = file
        .rsplit_once('.')
        .and_then(|(scope, ext)| Some((scope, FeedFormat::from_extension(ext)?)))
        .ok_or_else(|| AppError::NotFound(format!("feed {file:?}")))?;
    if scope != "all" && Slug::parse(scope).is_err() {
        return Err(AppError::NotFound(format!("feed {file:?}")));
    }
    let page = match params.page.as_deref() {
        None => 1,
        Some(p) => p.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
            let mut errors = crate::domain::FieldErrors::new();
            errors.add("page", format!("must be a whole number from 1 (got {p:?})"));
            AppError::Validation(errors)
        })?,
    };
    let key = CacheKey {
        scope: scope.to_owned(),
        format,
        page,
    };
    let now = state.clock.now();
    let hit = state.cache.get(&key, now);
    state.metrics.feed_cache(hit.is_some());
    let cached = match hit {
        Some(hit) => hit,
        None => {
            let generation = state.cache.generation();
            let rendered = Arc::new(
                render(&state, scope, format, page, now)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("feed {file:?} page {page}")))?,
            );
            state.cache.insert(key, rendered.clone(), generation);
            rendered
        }
    };
    Ok(respond(&cached, &headers))
}

/// Renders one page of one feed; `None` when the category or the page does not exist.
async fn render(
    state: &AppState,
    scope: &str,
    format: FeedFormat,
    page: u32,
    now: DateTime<Utc>,
) -> ApiResult<Option<CachedFeed>> {
    let settings = &state.settings;
    let base = &settings.base_url;
    let app_ids = &state.ids;
    let category = (scope != "all").then_some(scope);
    let events_only = format == FeedFormat::Ics;
    let Some(found) = content::feed_page(state.app(), category, events_only, page, now).await?
    else {
        return Ok(None);
    };
    let feed_url = format!("{base}/feeds/{scope}.{}", format.extension());
    let page_url = |n: u32| {
        if n == 1 {
            feed_url.clone()
        } else {
            format!("{feed_url}?page={n}")
        }
    };
    let (title, description, html_url) = match &found.category {
        Some(c) => (
            format!("{}: {}", settings.site_name, c.name),
            if c.description.is_empty() {
                format!("{} from {}", c.name, settings.site_name)
            } else {
                c.description.clone()
            },
            format!("{base}/categories/{}", c.slug),
        ),
        None => (
            settings.site_name.clone(),
            format!("Everything published by {}", settings.site_name),
            format!("{base}/"),
        ),
    };
    let last_page = found.last_page;
    let meta = FeedMeta {
        id: app_ids.feed(scope),
        title,
        description,
        self_url: page_url(page),
        html_url,
        updated: found.changed_at,
        site_name: settings.site_name.clone(),
        paging: Paging {
            first: page_url(1),
            last: page_url(last_page),
            previous: (page > 1).then(|| page_url(page - 1)),
            next: (page < last_page).then(|| page_url(page + 1)),
        },
    };
    let entries: Vec<FeedEntry> = found
        .items
        .iter()
        .map(|i| FeedEntry::from_item(i, base, app_ids))
        .collect();
    let body = match format {
        FeedFormat::Rss => feeds::rss::render(&meta, &entries),
        FeedFormat::Atom => feeds::atom::render(&meta, &entries),
        FeedFormat::Json => feeds::jsonfeed::render(&meta, &entries),
        FeedFormat::Ics => {
            feeds::ics::render(&meta.title, app_ids.as_str(), &entries, found.changed_at)
        }
    };
    Ok(Some(CachedFeed::new(
        body,
        format.media_type(),
        found.changed_at,
        found.expires_at,
    )))
}

/// A cached body in the coding chosen for the client, with its content type and coding
/// (the feeds' and the cached pages' 200 answer).
pub(super) fn encoded_body(cached: &CachedFeed, encoding: Encoding) -> Response {
    let mut r = cached.body_in(encoding).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(cached.content_type),
    );
    if let Some(coding) = encoding.header_value() {
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    r
}

/// Answers 304 when the client's copy is current, else the body in the best coding
/// the client accepts.
pub fn respond(feed: &CachedFeed, headers: &HeaderMap) -> Response {
    let encoding = Encoding::choose(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    // If-None-Match wins; If-Modified-Since counts only without it (RFC 9110 13.2.2).
    let not_modified = match headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
    {
        Some(inm) => feed.matches_if_none_match(inm),
        None => headers
            .get(header::IF_MODIFIED_SINCE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| {
                let since: DateTime<Utc> = since.into();
                feed.last_modified.timestamp() <= since.timestamp()
            }),
    };
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        encoded_body(feed, encoding)
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, feed.etag_header(encoding).clone());
    h.insert(header::LAST_MODIFIED, feed.last_modified_header.clone());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    // Readers may keep a copy but must ask before using it: a write shows at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[derive(Debug, Deserialize)]
pub struct OpmlParams {
    format: Option<String>,
}

/// The site's feed and one feed per category, in one format (Atom unless `?format=`
/// says rss or json), for importing into a reader in one go. One format only: a reader
/// importing every format of every category gets each item several times over.
/// iCalendar is not offered: OPML outlines are feed subscriptions (`type="rss"`), and
/// feed readers cannot read a calendar.
pub async fn opml(
    State(state): State<AppState>,
    Query(params): Query<OpmlParams>,
) -> ApiResult<Response> {
    let format = match params.format.as_deref() {
        None => FeedFormat::Atom,
        Some(name) => match FeedFormat::from_extension(name) {
            Some(f) if f != FeedFormat::Ics => f,
            _ => {
                let message = "unknown format: choose atom (the default), rss or json\n";
                return Ok((
                    StatusCode::BAD_REQUEST,
                    [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    message,
                )
                    .into_response());
            }
        },
    };
    let base = &state.settings.base_url;
    let site = &state.settings.site_name;
    let feed = |scope: &str, title: String, html_url: String| feeds::opml::OpmlFeed {
        title,
        xml_url: format!("{base}/feeds/{scope}.{}", format.extension()),
        html_url,
        kind: match format {
            FeedFormat::Atom => "atom",
            FeedFormat::Json => "json",
            _ => "rss",
        },
    };
    let mut list = vec![feed("all", site.clone(), format!("{base}/"))];
    for c in content::list_categories(state.app()).await? {
        list.push(feed(
            &c.slug,
            format!("{site}: {}", c.name),
            format!("{base}/categories/{}", c.slug),
        ));
    }
    let title = format!("{site} feeds ({})", format.label());
    let body = feeds::opml::render(&title, &list);
    Ok(([(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")], body).into_response())
}
