//! `/feeds/{scope}.{format}` and `/feeds.opml`, served from the in-memory cache with
//! conditional GET and pre-compressed bodies.
//!
//! `?lang=TAG` (a site language, `NEWSDESK_LANGUAGES`) gives the feed in that language:
//! each item's version in it, or its original led by a note, linking to the pages under
//! `/TAG/`. Without it, each item is its original. Any other `lang` is a 404 naming it.

use crate::domain::{Language, Slug};
use crate::feeds::cache::{CacheKey, CachedFeed, Encoding};
use crate::feeds::{self, FeedEntry, FeedFormat, FeedMeta, Paging};
use crate::http::AppState;
use crate::http::error::{ApiResult, AppError};
use crate::i18n::PageWords;
use crate::services::content;
use crate::templates::Templates;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct FeedParams {
    page: Option<String>,
    lang: Option<String>,
}

/// `?lang=`: one of the site's languages, spelt as configured (like the pages'
/// `/{lang}/`); none: the originals. Anything else, well-formed or not, names no feed
/// here: the error names the parameter and the site's languages.
pub(super) fn feed_language<'a>(
    state: &'a AppState,
    lang: Option<&str>,
) -> Result<Option<&'a Language>, String> {
    let Some(raw) = lang else {
        return Ok(None);
    };
    let languages = &state.settings.languages;
    let all = languages.all();
    all.iter()
        .find(|l| l.as_str() == raw)
        .map(Some)
        .ok_or_else(|| {
            let all: Vec<&str> = all.iter().map(Language::as_str).collect();
            format!(
                "feed language lang={raw:?} (this site's languages: {})",
                all.join(", ")
            )
        })
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
    let lang = match feed_language(&state, params.lang.as_deref()) {
        Ok(lang) => lang,
        // `ZH`, `zh-CN`: the feed of the site language that is, at its one address.
        Err(e) => match params
            .lang
            .as_deref()
            .and_then(|raw| state.settings.languages.respelt(raw))
        {
            Some(l) => {
                let page = params
                    .page
                    .as_deref()
                    .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                    .map(|p| format!("&page={p}"))
                    .unwrap_or_default();
                let to = format!("/feeds/{file}?lang={}{page}", l.as_str());
                return Ok(axum::response::Redirect::permanent(&to).into_response());
            }
            None => return Err(AppError::NotFound(e)),
        },
    };
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
        lang: lang.map(|l| l.as_str().to_owned()),
        format,
        page,
    };
    let now = state.clock.now();
    // One set of templates (their words) for the whole render, and its generation.
    let templates = state.templates.current();
    let hit = state.cache.get_current(&key, now, templates.generation());
    state.metrics.feed_cache(hit.is_some());
    let cached = match hit {
        Some(hit) => hit,
        None => {
            let generation = state.cache.generation();
            let rendered = Arc::new(
                render(&state, &templates, scope, lang, format, page, now)
                    .await?
                    .ok_or_else(|| AppError::NotFound(format!("feed {file:?} page {page}")))?,
            );
            state.cache.insert_rendered_with(
                key,
                rendered.clone(),
                generation,
                templates.generation(),
            );
            rendered
        }
    };
    Ok(respond(&cached, &headers))
}

/// Renders one page of one feed, in `lang` or of the originals; `None` when the
/// category or the page does not exist.
async fn render(
    state: &AppState,
    templates: &Templates,
    scope: &str,
    lang: Option<&Language>,
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
    let lang = lang.map(Language::as_str);
    let feed_url = feed_url(base, scope, format, lang);
    let page_url = |n: u32| page_url(&feed_url, n);
    // The originals' feed speaks the site's default language where it speaks at all.
    let words = templates.page_words();
    let w = words.get(lang.unwrap_or(settings.languages.default_language().as_str()));
    let site = &settings.site_name;
    let prefix = lang.map(|l| format!("/{l}")).unwrap_or_default();
    let (title, description, html_url) = match &found.category {
        // A feed in a language names the category in it; the originals' feed by its
        // default name.
        Some(c) => (
            format!("{site}: {}", named_in(c, lang)),
            // A description is written in the site's default language: a feed in
            // another says in its own words what the feed holds, rather than carry
            // text labelled as a language it is not in.
            if c.description.is_empty()
                || lang.is_some_and(|l| l != settings.languages.default_language().as_str())
            {
                w.fill(
                    "feed_category_description",
                    &[("category", named_in(c, lang)), ("site", site)],
                )
            } else {
                c.description.clone()
            },
            format!("{base}{prefix}/categories/{}", c.slug),
        ),
        None => (
            site.clone(),
            w.fill("feed_all_description", &[("site", site)]),
            format!("{base}{prefix}/"),
        ),
    };
    let last_page = found.last_page;
    let meta = FeedMeta {
        // Each language's feed is a feed of its own; its entries keep their ids.
        id: match lang {
            Some(l) => app_ids.feed(&format!("{scope}/{l}")),
            None => app_ids.feed(scope),
        },
        title: titled(&title, lang, words),
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
        language: lang.map(str::to_owned),
    };
    let entries: Vec<FeedEntry> = found
        .items
        .iter()
        .map(|i| FeedEntry::localized(i, lang, base, app_ids, words))
        .collect();
    let body = match format {
        FeedFormat::Rss => feeds::rss::render(&meta, &entries),
        FeedFormat::Atom => feeds::atom::render(&meta, &entries),
        FeedFormat::Json => feeds::jsonfeed::render(&meta, &entries),
        FeedFormat::Ics => feeds::ics::render(
            &meta.title,
            app_ids.as_str(),
            &entries,
            found.changed_at,
            words,
        ),
    };
    Ok(Some(CachedFeed::new(
        body,
        format.media_type(),
        found.changed_at,
        found.expires_at,
    )))
}

/// The address of a feed's first page: `/feeds/{scope}.{ext}`, `?lang=` for a language.
pub fn feed_url(base: &str, scope: &str, format: FeedFormat, lang: Option<&str>) -> String {
    let url = format!("{base}/feeds/{scope}.{}", format.extension());
    match lang {
        Some(l) => format!("{url}?lang={l}"),
        None => url,
    }
}

/// Page `n` of the feed at `first`.
fn page_url(first: &str, n: u32) -> String {
    match (n, first.contains('?')) {
        (1, _) => first.to_owned(),
        (_, true) => format!("{first}&page={n}"),
        (_, false) => format!("{first}?page={n}"),
    }
}

/// A feed's title; a language's feed names its language, so two subscriptions to the
/// same section in two languages read apart.
pub fn titled(title: &str, lang: Option<&str>, words: &PageWords) -> String {
    match lang {
        Some(l) => format!("{title} · {}", words.endonym(l)),
        None => title.to_owned(),
    }
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
    lang: Option<String>,
}

fn plain(status: StatusCode, message: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// The site's feed and one feed per category, in one format (Atom unless `?format=`
/// says rss or json), for importing into a reader in one go: the originals' feeds, then
/// a group (a folder in most readers) per site language with that language's feeds;
/// `?lang=TAG` lists only that language's. One format only: a reader importing every
/// format of every category gets each item several times over.
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
                return Ok(plain(StatusCode::BAD_REQUEST, message.into()));
            }
        },
    };
    let only = match feed_language(&state, params.lang.as_deref()) {
        Ok(l) => l,
        Err(message) => {
            // `ZH`, `zh-CN`: the list of the site language that is, as for the feeds.
            return Ok(
                match params
                    .lang
                    .as_deref()
                    .and_then(|raw| state.settings.languages.respelt(raw))
                {
                    Some(l) => {
                        let with_format = params
                            .format
                            .as_deref()
                            .map(|_| format!("&format={}", format.extension()))
                            .unwrap_or_default();
                        let to = format!("/feeds.opml?lang={}{with_format}", l.as_str());
                        axum::response::Redirect::permanent(&to).into_response()
                    }
                    None => plain(StatusCode::NOT_FOUND, format!("{message} not found\n")),
                },
            );
        }
    };
    let base = &state.settings.base_url;
    let site = &state.settings.site_name;
    let categories = content::list_categories(state.app()).await?;
    let templates = state.templates.current();
    let words = templates.page_words();
    let list = |lang: Option<&str>| {
        let prefix = lang.map(|l| format!("/{l}")).unwrap_or_default();
        let feed = |scope: &str, title: String, html_url: String| feeds::opml::OpmlFeed {
            title: titled(&title, lang, words),
            xml_url: feed_url(base, scope, format, lang),
            html_url,
            kind: match format {
                FeedFormat::Atom => "atom",
                FeedFormat::Json => "json",
                _ => "rss",
            },
        };
        let mut list = vec![feed("all", site.clone(), format!("{base}{prefix}/"))];
        for c in &categories {
            list.push(feed(
                &c.slug,
                format!("{site}: {}", named_in(c, lang)),
                format!("{base}{prefix}/categories/{}", c.slug),
            ));
        }
        list
    };
    let title = format!("{site} feeds ({})", format.label());
    let body = match only {
        Some(l) => feeds::opml::render(
            &titled(&title, Some(l.as_str()), words),
            &list(Some(l.as_str())),
            &[],
        ),
        None => {
            let groups: Vec<feeds::opml::OpmlGroup> = state
                .settings
                .languages
                .all()
                .iter()
                .map(|l| feeds::opml::OpmlGroup {
                    title: words.endonym(l.as_str()),
                    feeds: list(Some(l.as_str())),
                })
                .collect();
            feeds::opml::render(&title, &list(None), &groups)
        }
    };
    Ok(([(header::CONTENT_TYPE, "text/x-opml; charset=utf-8")], body).into_response())
}

/// A category's name in a feed of `lang`: its name in that language, else (and in the
/// originals' feeds) its default name.
fn named_in<'a>(c: &'a crate::domain::Category, lang: Option<&str>) -> &'a str {
    lang.map_or(c.name.as_str(), |l| c.name_in(l))
}
