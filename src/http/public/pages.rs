//! HTML pages: the front page, a category, an item (and its `.ics`), in each site
//! language under `/{lang}/...` and as the originals' view at the unprefixed addresses.
//!
//! - `/{lang}/`, `/{lang}/categories/{slug}`, `/{lang}/items/{slug}`: each item in its
//!   version in `lang`, or its original marked with `lang` and a note; the page's own
//!   words in `lang`. Only the site's languages, spelt as configured; others are 404.
//! - `/categories/{slug}`, `/items/{slug}`: the originals' view, each item in its
//!   original (the links in sent mail go there); `x-default` of the pages above.
//! - `/`: the front page in the language `Accept-Language` picks (the site's default
//!   without one), served as is (no redirect) with `Vary: Accept-Language` and
//!   `Content-Language`; it is the very page (bytes, ETag, cache entry) of `/{lang}/`.

use super::page_cache::{self, ANY_ITEM, Fresh};
use super::views::{CategoryLink, ItemView, Page, PageLang, category_tree_in, feed_links};
use crate::domain::{Category, IdAuthority, Item, Language};
use crate::feeds::{self, FeedEntry};
use crate::http::AppState;
use crate::i18n::PageWords;
use crate::services::{ServiceError, content};
use axum::extract::{FromRequestParts, Path, Query, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

/// Page errors are pages too: a plain 404 or 500, never a stack trace.
pub enum PageError {
    /// What is missing, as a key of the page labels (`no_such_item`).
    NotFound(&'static str),
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
        let templates = state.templates.current();
        self.into_page_in(state, PageLang::default_for(&state.settings, &templates))
    }

    /// The error page in the words of `lang` (a 404 under `/zh/` reads Chinese).
    pub(crate) fn into_page_in(self, state: &AppState, lang: PageLang) -> Response {
        let (status, template, message) = match self {
            PageError::NotFound(key) => (StatusCode::NOT_FOUND, "not_found", key),
            PageError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "error", "")
            }
        };
        #[derive(Serialize)]
        struct Body {
            message: String,
        }
        let body = Body {
            message: lang.words.get(message).to_owned(),
        };
        let title = lang.words.get("not_found");
        let page = Page::at(&state.settings, lang, None, title, Vec::new(), body);
        match lang.templates.render(template, &page) {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}

/// A service's "not found" names what is missing (`section`, `page`, `item`).
fn service_error(e: ServiceError) -> PageError {
    match e {
        ServiceError::NotFound(what) => PageError::NotFound(match what.as_str() {
            "section" => "no_such_section",
            "page" => "no_such_page",
            "item" => "no_such_item",
            _ => "nothing_at_address",
        }),
        other => PageError::Internal(other.into()),
    }
}

/// The site language named by the first segment of a path, spelt as configured.
pub(super) fn site_language<'a>(state: &'a AppState, segment: &str) -> Option<&'a Language> {
    state
        .settings
        .languages
        .all()
        .iter()
        .find(|l| l.as_str() == segment)
}

/// The site language a route's `{lang}` segment names (`/zh/subscribe`), or `None` on
/// the unprefixed route (`/subscribe`); a segment that is not a site language is
/// answered with the site's 404 page, as any unknown address.
pub struct PrefixLanguage(pub Option<Language>);

impl FromRequestParts<AppState> for PrefixLanguage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let params = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let Some((_, segment)) = params.iter().find(|(name, _)| *name == "lang") else {
            return Ok(Self(None));
        };
        match site_language(state, segment) {
            Some(language) => Ok(Self(Some(language.clone()))),
            None => Err(not_found(State(state.clone()), parts.uri.clone()).await),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PageParams {
    page: Option<String>,
}

/// `/`: the front page in the reader's language. Served here rather than redirected,
/// so `/` stays the one address to give out; caches keep one copy per language
/// (`Vary`), and it is `/{lang}/`'s cache entry and ETag.
pub async fn index(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok());
    let language = state.settings.languages.negotiate(accept);
    let templates = state.templates.current();
    let lang = PageLang::of(language, &templates);
    let key = format!("/{}/", language.as_str());
    let mut response = page_cache::serve(&state, key, &headers, lang, front(&state, lang)).await;
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("accept-encoding, accept-language"),
    );
    response
}

/// `/{lang}`: the language's front page is `/{lang}/`.
pub async fn language_root(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    uri: Uri,
) -> Response {
    match site_language(&state, &lang) {
        Some(l) => page_cache::with_security_headers(
            Redirect::permanent(&format!("/{}/", l.as_str())).into_response(),
        ),
        None => not_found(State(state), uri).await,
    }
}

/// `/{lang}/`.
pub async fn language_index(
    State(state): State<AppState>,
    Path(lang): Path<String>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(language) = site_language(&state, &lang) else {
        return not_found(State(state), uri).await;
    };
    let templates = state.templates.current();
    let lang = PageLang::of(language, &templates);
    let key = format!("/{}/", language.as_str());
    page_cache::serve(&state, key, &headers, lang, front(&state, lang)).await
}

async fn front(state: &AppState, lang: PageLang<'_>) -> Result<Fresh, PageError> {
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
    let page = Page::at(
        settings,
        lang,
        Some("/"),
        "",
        feed_links(settings, "all", &settings.site_name, lang),
        Body {
            items: front
                .items
                .iter()
                .map(|i| ItemView::new(i, lang, base))
                .collect(),
            categories: category_tree_in(&front.categories, base, lang),
        },
    );
    Ok(Fresh {
        html: lang.templates.render("index", &page)?,
        tags: vec![ANY_ITEM.into()],
        expires_at: next_publication(state).await?,
        language: lang.chrome.to_owned(),
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

fn link(c: &Category, base: &str, lang: PageLang) -> CategoryLink {
    CategoryLink {
        slug: c.slug.clone(),
        name: c.name_in(lang.chrome).to_owned(),
        url: format!("{base}{}", lang.path(&format!("/categories/{}", c.slug))),
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

/// `?page=N`, from 1.
fn page_number(params: &PageParams) -> Option<u32> {
    match params.page.as_deref() {
        None => Some(1),
        Some(p) => p.parse::<u32>().ok().filter(|n| *n >= 1),
    }
}

pub async fn category(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Path(SlugPath { slug }): Path<SlugPath>,
    Query(params): Query<PageParams>,
    headers: HeaderMap,
) -> Response {
    let templates = state.templates.current();
    let lang = match &language {
        Some(l) => PageLang::of(l, &templates),
        None => PageLang::default_for(&state.settings, &templates),
    };
    category_in(&state, lang, &slug, &params, &headers).await
}

/// The `{slug}` of a route, with or without a `{lang}` before it.
#[derive(Deserialize)]
pub struct SlugPath {
    slug: String,
}

/// The `{file}` of a route, with or without a `{lang}` before it.
#[derive(Deserialize)]
pub struct FilePath {
    file: String,
}

async fn category_in(
    state: &AppState,
    lang: PageLang<'_>,
    slug: &str,
    params: &PageParams,
    headers: &HeaderMap,
) -> Response {
    let Some(page_no) = page_number(params) else {
        let missing = PageError::NotFound("no_such_page").into_page_in(state, lang);
        return page_cache::with_security_headers(missing);
    };
    let key = format!(
        "{}?page={page_no}",
        lang.path(&format!("/categories/{slug}"))
    );
    page_cache::serve(
        state,
        key,
        headers,
        lang,
        category_page(state, lang, slug, page_no),
    )
    .await
}

async fn category_page(
    state: &AppState,
    lang: PageLang<'_>,
    slug: &str,
    page_no: u32,
) -> Result<Fresh, PageError> {
    let settings = &state.settings;
    let base = &settings.base_url;
    let found = content::category_page(state.app(), slug, page_no)
        .await
        .map_err(service_error)?;
    let category = &found.category;
    let children: Vec<CategoryLink> = category_tree_in(&found.categories, base, lang)
        .into_iter()
        .filter(|l| {
            found
                .categories
                .iter()
                .any(|c| c.slug == l.slug && c.parent.as_deref() == Some(&category.slug))
        })
        .collect();
    let path = |n: u32| {
        let path = format!("/categories/{}", category.slug);
        if n > 1 {
            format!("{path}?page={n}")
        } else {
            path
        }
    };
    let page_url = |n: u32| {
        format!(
            "{base}{}",
            lang.path(&format!("/categories/{}?page={n}", category.slug))
        )
    };
    let name = category.name_in(lang.chrome);
    let title = format!("{}: {name}", settings.site_name);
    let page = Page::at(
        settings,
        lang,
        Some(&path(page_no)),
        name,
        feed_links(settings, &category.slug, &title, lang),
        CategoryBody {
            category: CategoryView {
                name: name.to_owned(),
                description: category.description.clone(),
            },
            crumbs: found.trail.iter().map(|c| link(c, base, lang)).collect(),
            children,
            items: found
                .items
                .iter()
                .map(|i| ItemView::new(i, lang, base))
                .collect(),
            prev_url: (page_no > 1).then(|| page_url(page_no - 1)),
            next_url: found.has_next.then(|| page_url(page_no + 1)),
        },
    );
    // Its items are those of the category and its descendants, and an item write names
    // every ancestor of the categories it touched: the slug alone says when it changes.
    Ok(Fresh {
        html: lang.templates.render("category", &page)?,
        tags: vec![category.slug.clone()],
        expires_at: next_publication(state).await?,
        language: lang.chrome.to_owned(),
    })
}

/// An event as a calendar file, in `lang`'s version or the original.
fn ics(
    item: &Item,
    lang: Option<&str>,
    base: &str,
    ids: &IdAuthority,
    words: &PageWords,
) -> PageResult {
    if item.event.is_none() {
        return Err(PageError::NotFound("not_an_event"));
    }
    let entry = FeedEntry::localized(item, lang, base, ids, words);
    let name = entry.title.clone();
    let body = feeds::ics::render(&name, ids.as_str(), &[entry], item.updated_at, words);
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
    PrefixLanguage(language): PrefixLanguage,
    Path(FilePath { file }): Path<FilePath>,
    headers: HeaderMap,
) -> Response {
    item_in(&state, language.as_ref(), &file, &headers).await
}

async fn item_in(
    state: &AppState,
    language: Option<&Language>,
    file: &str,
    headers: &HeaderMap,
) -> Response {
    let templates = state.templates.current();
    let templates = &*templates;
    let error_lang = match language {
        Some(l) => PageLang::of(l, templates),
        None => PageLang::default_for(&state.settings, templates),
    };
    if let Some(slug) = file.strip_suffix(".ics") {
        let result = async {
            let item = content::published_item(state.app(), slug)
                .await
                .map_err(service_error)?;
            let lang = language.map(Language::as_str);
            let words = templates.page_words();
            ics(&item, lang, &state.settings.base_url, &state.ids, words)
        }
        .await;
        let answer = result.unwrap_or_else(|e| e.into_page_in(state, error_lang));
        return page_cache::with_security_headers(answer);
    }
    let key = match language {
        Some(l) => format!("/{}/items/{file}", l.as_str()),
        None => format!("/items/{file}"),
    };
    let rendered = async {
        let item = content::published_item(state.app(), file)
            .await
            .map_err(service_error)?;
        // The originals' view of an item speaks its original's language where that is
        // a site language: the page is then all in one language.
        let lang = match language {
            Some(l) => PageLang::of(l, templates),
            None => match state.settings.languages.for_content(&item.language) {
                Some(l) => PageLang::originals(l.as_str(), templates),
                None => PageLang::default_for(&state.settings, templates),
            },
        };
        item_page(state, lang, &item).await
    };
    page_cache::serve(state, key, headers, error_lang, rendered).await
}

async fn item_page(state: &AppState, lang: PageLang<'_>, item: &Item) -> Result<Fresh, PageError> {
    let settings = &state.settings;
    let base = &settings.base_url;
    #[derive(Serialize)]
    struct Body {
        item: ItemView,
    }
    let view = ItemView::new(item, lang, base);
    let feeds = match item.categories.first() {
        Some(c) => feed_links(
            settings,
            &c.slug,
            &format!(
                "{}: {}",
                settings.site_name,
                c.names.pick(&c.name, lang.chrome)
            ),
            lang,
        ),
        None => feed_links(settings, "all", &settings.site_name, lang),
    };
    let path = format!("/items/{}", item.slug);
    let title = view.title.clone();
    let page = Page::at(
        settings,
        lang,
        Some(&path),
        &title,
        feeds,
        Body { item: view },
    );
    // A write of this item names its categories (before and after); one without any
    // counts as touched by every item write.
    let mut tags: Vec<String> = item.categories.iter().map(|c| c.slug.clone()).collect();
    if tags.is_empty() {
        tags.push(ANY_ITEM.into());
    }
    Ok(Fresh {
        html: lang.templates.render("item", &page)?,
        tags,
        expires_at: None,
        language: lang.chrome.to_owned(),
    })
}

pub async fn not_found(State(state): State<AppState>, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return crate::http::error::AppError::NotFound(format!(
            "{} (see /api/openapi.json)",
            uri.path()
        ))
        .into_response();
    }
    if let Some(to) = canonical_language_address(&state, &uri) {
        return page_cache::with_security_headers(Redirect::permanent(&to).into_response());
    }
    // The fallback's page, with the headers its layer would have set.
    page_cache::with_security_headers(PageError::NotFound("nothing_at_address").into_page(&state))
}

/// An address whose first segment is a site language spelt otherwise (`/ZH/items/x`,
/// `/zh-CN/`, `/en-GB/categories/news`): the same address under the language as
/// configured (`/zh/items/x`), to be redirected to. `None` for anything else.
fn canonical_language_address(state: &AppState, uri: &Uri) -> Option<String> {
    let path = uri.path().strip_prefix('/')?;
    let (segment, rest) = path.split_once('/').unwrap_or((path, ""));
    let language = state.settings.languages.respelt(segment)?;
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    Some(format!("/{}/{rest}{query}", language.as_str()))
}
