//! The public pages everyone reads (the front page, category pages, item pages, the
//! digest archive), kept rendered in memory like the feeds: one entry per address, with
//! its strong ETag and compressed variants, answered without a database query, with 304
//! to a client that has the current copy.
//!
//! Each entry carries tags saying what it shows; a change drops only the entries it
//! touches ([`PageCache::apply`]): an item write drops the front page and the pages of
//! the categories it touched (their ancestors included), a list or digest change that
//! list's archive pages, a change of the category tree everything. Like the feed cache,
//! a generation counter stops a render that began before a change from storing stale
//! bytes, and an entry stops counting when a scheduled item goes live.
//!
//! Each entry keeps the language of its page for `Content-Language`; the pages of the
//! site languages are entries of their own (`/zh/items/x`), and `/`, which picks a
//! language by `Accept-Language`, answers from the entry of the language it picks.
//!
//! These pages are the same for everyone: they read no cookie, session or token, so
//! they may be kept by shared caches (`Cache-Control: public, no-cache`: kept, but asked
//! about again before each use, so a write shows at once). Pages that do vary (the
//! subscription forms, the token pages, the admin pages) are not cached here.

use super::headers;
use super::pages::PageError;
use super::views::PageLang;
use crate::app::ContentChange;
use crate::feeds::cache::{CachedFeed, Encoding};
use crate::http::AppState;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// The tag of an entry that any item write may change (the front page).
pub const ANY_ITEM: &str = "*";

/// The tag of the entries that show a mailing list's archive.
pub fn list_tag(list_id: i64) -> String {
    format!("list:{list_id}")
}

/// A page as rendered, with what it shows.
pub struct Fresh {
    pub html: String,
    /// Category slugs, [`ANY_ITEM`], [`list_tag`]s.
    pub tags: Vec<String>,
    /// When a scheduled item goes live and the page may read differently.
    pub expires_at: Option<DateTime<Utc>>,
    /// The language of the page (its `<html lang>`), for `Content-Language`.
    pub language: String,
}

/// A page as kept: its bytes and the language they are in.
#[derive(Clone)]
pub struct CachedPage {
    pub page: Arc<CachedFeed>,
    pub language: Option<HeaderValue>,
}

struct Entry {
    page: CachedPage,
    tags: Vec<String>,
    /// The templates' generation ([`crate::templates::LiveTemplates::generation`]) the
    /// page was rendered under; an entry of an earlier one is a miss.
    templates: u64,
}

#[derive(Default)]
pub struct PageCache {
    entries: RwLock<HashMap<String, Entry>>,
    generation: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl PageCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached page at this address, unless it has expired or was rendered with
    /// templates older than `templates`; counted as a hit or miss.
    pub fn get(&self, key: &str, now: DateTime<Utc>, templates: u64) -> Option<CachedPage> {
        let found = self
            .entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .filter(|e| e.templates == templates)
            .filter(|e| e.page.page.expires_at.is_none_or(|at| now < at))
            .map(|e| e.page.clone());
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Take this before reading the database for a render; pass it to `insert`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps a rendering unless something changed since `generation`; `templates` is
    /// the templates' generation taken before the render.
    pub fn insert(
        &self,
        key: String,
        tags: Vec<String>,
        page: CachedPage,
        generation: u64,
        templates: u64,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if self.generation.load(Ordering::Acquire) == generation {
            entries.insert(
                key,
                Entry {
                    page,
                    tags,
                    templates,
                },
            );
        }
    }

    /// Drops the entries a change touches (see the module's doc).
    pub fn apply(&self, change: &ContentChange) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        match change {
            ContentChange::Everything => entries.clear(),
            ContentChange::Categories(slugs) => entries.retain(|_, e| {
                !e.tags
                    .iter()
                    .any(|t| t == ANY_ITEM || slugs.iter().any(|s| s == t))
            }),
            ContentChange::List(id) | ContentChange::Digests(id) => {
                let tag = list_tag(*id);
                entries.retain(|_, e| !e.tags.contains(&tag));
            }
        }
    }

    /// Whether a page at this address is kept (for tests and the admin's view).
    pub fn contains(&self, key: &str) -> bool {
        self.entries
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Answers served from memory and renders, since start-up.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

/// Answers a page from the cache, or renders it with `fresh` (only polled on a miss),
/// keeps it and answers. Errors (404, 500) are answered as pages in `error_lang` and
/// never kept.
pub async fn serve(
    state: &AppState,
    key: String,
    request: &HeaderMap,
    error_lang: PageLang<'_>,
    fresh: impl Future<Output = Result<Fresh, PageError>>,
) -> Response {
    let now = state.clock.now();
    // The generation of the very set the page is rendered with (the handler took it
    // before this): a swap since then makes this entry a miss at once.
    let templates = error_lang.templates.generation();
    if let Some(hit) = state.pages.get(&key, now, templates) {
        return respond(&hit, request);
    }
    let generation = state.pages.generation();
    match fresh.await {
        Ok(f) => {
            let page = CachedPage {
                page: Arc::new(CachedFeed::new(
                    f.html.into_bytes(),
                    "text/html; charset=utf-8",
                    now,
                    f.expires_at,
                )),
                language: HeaderValue::from_str(&f.language).ok(),
            };
            state
                .pages
                .insert(key, f.tags, page.clone(), generation, templates);
            respond(&page, request)
        }
        Err(e) => {
            let mut answer = with_security_headers(e.into_page_in(state, error_lang));
            if let Ok(v) = HeaderValue::from_str(error_lang.chrome) {
                answer.headers_mut().insert(header::CONTENT_LANGUAGE, v);
            }
            answer
        }
    }
}

/// An answer of these routes that is not a cached page (an error page, a calendar
/// file): the public side's security headers, which the page layers would have set.
pub fn with_security_headers(mut response: Response) -> Response {
    headers::set_security_headers(response.headers_mut());
    response
}

/// 304 when the client's copy is current (If-None-Match), else the page in the best
/// coding the client accepts.
fn respond(cached: &CachedPage, request: &HeaderMap) -> Response {
    let page = &cached.page;
    let encoding = Encoding::choose(
        request
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    let not_modified = request
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|inm| page.matches_if_none_match(inm));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        super::feeds::encoded_body(page, encoding)
    };
    let h = response.headers_mut();
    h.insert(header::ETAG, page.etag_header(encoding).clone());
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, no-cache"),
    );
    if let Some(language) = &cached.language {
        h.insert(header::CONTENT_LANGUAGE, language.clone());
    }
    headers::set_security_headers(h);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(body: &str) -> CachedPage {
        CachedPage {
            page: Arc::new(CachedFeed::new(body.into(), "text/html", Utc::now(), None)),
            language: None,
        }
    }

    fn filled() -> PageCache {
        let cache = PageCache::new();
        let g = cache.generation();
        cache.insert("/".into(), vec![ANY_ITEM.into()], page("front"), g, 0);
        cache.insert(
            "/categories/news".into(),
            vec!["news".into()],
            page("n"),
            g,
            0,
        );
        cache.insert(
            "/categories/events".into(),
            vec!["events".into()],
            page("e"),
            g,
            0,
        );
        cache.insert("/items/a".into(), vec!["events".into()], page("a"), g, 0);
        cache.insert(
            "/digests/partners".into(),
            vec![list_tag(3)],
            page("d"),
            g,
            0,
        );
        cache
    }

    #[test]
    fn an_item_write_drops_the_front_page_and_its_categories_only() {
        let cache = filled();
        cache.apply(&ContentChange::Categories(vec!["news".into()]));
        assert!(!cache.contains("/"));
        assert!(!cache.contains("/categories/news"));
        assert!(cache.contains("/categories/events"));
        assert!(cache.contains("/items/a"));
        assert!(cache.contains("/digests/partners"));
    }

    #[test]
    fn a_list_change_drops_its_archive_only_and_everything_drops_all() {
        let cache = filled();
        cache.apply(&ContentChange::Digests(4));
        assert_eq!(cache.len(), 5);
        cache.apply(&ContentChange::List(3));
        assert!(!cache.contains("/digests/partners"));
        assert_eq!(cache.len(), 4);
        cache.apply(&ContentChange::Everything);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_render_begun_before_a_change_is_not_kept() {
        let cache = PageCache::new();
        let before = cache.generation();
        cache.apply(&ContentChange::Categories(vec!["news".into()]));
        cache.insert("/".into(), vec![ANY_ITEM.into()], page("stale"), before, 0);
        assert!(!cache.contains("/"));
        assert!(cache.get("/", Utc::now(), 0).is_none());
        assert_eq!(cache.hits_and_misses(), (0, 1));
    }

    #[test]
    fn a_page_rendered_with_templates_since_swapped_is_a_miss() {
        // The swap is seen here before the watcher's drop of the whole cache has run.
        let cache = filled();
        assert!(cache.get("/items/a", Utc::now(), 0).is_some());
        assert!(cache.get("/items/a", Utc::now(), 1).is_none());
        assert_eq!(cache.hits_and_misses(), (1, 1));
        let g = cache.generation();
        cache.insert("/items/a".into(), vec![], page("new"), g, 1);
        let hit = cache.get("/items/a", Utc::now(), 1).unwrap();
        assert_eq!(hit.page.body.as_ref(), b"new");
    }
}
