//! Rendered feed bytes kept in memory per (scope, language, format, page), with their ETag and
//! compressed variants, so a hot feed costs a hash-map lookup.
//!
//! Freshness: every content write drops the entries of the scopes it touched before
//! the writer gets its answer, and a generation counter stops a render that started
//! before the write from putting stale bytes back. Entries also carry the time the
//! next scheduled item goes live, after which they no longer count.

use super::FeedFormat;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// A category slug, or `all`.
    pub scope: String,
    /// The site language of a `?lang=` feed (as configured); `None`: the originals.
    pub lang: Option<String>,
    pub format: FeedFormat,
    pub page: u32,
}

/// A content coding the client accepts, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    /// Picks brotli, then gzip, then none, from an `Accept-Encoding` value.
    pub fn choose(accept_encoding: Option<&str>) -> Self {
        let Some(header) = accept_encoding else {
            return Self::Identity;
        };
        let accepts = |name: &str| {
            header.split(',').any(|part| {
                let mut pieces = part.split(';');
                let coding = pieces.next().unwrap_or_default().trim();
                let q_zero = pieces.any(|p| {
                    let p = p.trim();
                    p.strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q == 0.0)
                });
                coding.eq_ignore_ascii_case(name) && !q_zero
            })
        };
        if accepts("br") {
            Self::Brotli
        } else if accepts("gzip") {
            Self::Gzip
        } else {
            Self::Identity
        }
    }

    pub fn header_value(self) -> Option<&'static str> {
        match self {
            Self::Brotli => Some("br"),
            Self::Gzip => Some("gzip"),
            Self::Identity => None,
        }
    }

    fn etag_suffix(self) -> &'static str {
        match self {
            Self::Brotli => "-br",
            Self::Gzip => "-gz",
            Self::Identity => "",
        }
    }
}

/// One rendered feed document.
#[derive(Debug)]
pub struct CachedFeed {
    pub body: Bytes,
    gzip: OnceLock<Bytes>,
    brotli: OnceLock<Bytes>,
    /// Hash of the identity body; the same bytes give the same tag across restarts.
    etag: String,
    pub last_modified: DateTime<Utc>,
    pub content_type: &'static str,
    /// When this rendering stops being right (an item scheduled to go live).
    pub expires_at: Option<DateTime<Utc>>,
    /// Header values made once, not on every request: ETag per coding, Last-Modified.
    etag_headers: [axum::http::HeaderValue; 3],
    pub last_modified_header: axum::http::HeaderValue,
}

impl CachedFeed {
    pub fn new(
        body: Vec<u8>,
        content_type: &'static str,
        last_modified: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        let digest = Sha256::digest(&body);
        let etag = hex::encode(&digest[..16]);
        let header = |suffix: &str| {
            axum::http::HeaderValue::from_str(&format!("\"{etag}{suffix}\""))
                .expect("hex is a valid header value")
        };
        let etag_headers = [header(""), header("-gz"), header("-br")];
        let last_modified_header =
            axum::http::HeaderValue::from_str(&httpdate::fmt_http_date(last_modified.into()))
                .expect("an HTTP date is a valid header value");
        Self {
            etag,
            etag_headers,
            last_modified_header,
            body: Bytes::from(body),
            gzip: OnceLock::new(),
            brotli: OnceLock::new(),
            last_modified,
            content_type,
            expires_at,
        }
    }

    /// The strong ETag of the representation in this coding, quoted.
    pub fn etag(&self, encoding: Encoding) -> String {
        format!("\"{}{}\"", self.etag, encoding.etag_suffix())
    }

    /// The same, as a header value made once.
    pub fn etag_header(&self, encoding: Encoding) -> &axum::http::HeaderValue {
        match encoding {
            Encoding::Identity => &self.etag_headers[0],
            Encoding::Gzip => &self.etag_headers[1],
            Encoding::Brotli => &self.etag_headers[2],
        }
    }

    /// True when an `If-None-Match` value names this feed in any coding (a weak
    /// comparison, as RFC 9110 allows for GET).
    pub fn matches_if_none_match(&self, header: &str) -> bool {
        header.split(',').any(|tag| {
            let tag = tag.trim();
            if tag == "*" {
                return true;
            }
            let tag = tag.strip_prefix("W/").unwrap_or(tag).trim_matches('"');
            let base = tag
                .strip_suffix("-br")
                .or_else(|| tag.strip_suffix("-gz"))
                .unwrap_or(tag);
            base == self.etag
        })
    }

    /// The body in the given coding, compressed once on first use.
    pub fn body_in(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.body.clone(),
            Encoding::Gzip => self.gzip.get_or_init(|| gzip(&self.body)).clone(),
            Encoding::Brotli => self.brotli.get_or_init(|| brotli(&self.body)).clone(),
        }
    }
}

fn gzip(data: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    encoder.write_all(data).expect("gzip into memory");
    Bytes::from(encoder.finish().expect("gzip into memory"))
}

fn brotli(data: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(data.len() / 4);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 9,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params).expect("brotli into memory");
    Bytes::from(out)
}

#[derive(Debug, Default)]
pub struct FeedCache {
    /// Each feed with the templates' generation it was rendered under (the feeds' words
    /// come from the templates: see [`crate::templates::Templates::page_words`]).
    entries: RwLock<HashMap<CacheKey, (Arc<CachedFeed>, u64)>>,
    generation: AtomicU64,
}

impl FeedCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The cached feed, unless it has expired (whatever templates it was rendered with).
    pub fn get(&self, key: &CacheKey, now: DateTime<Utc>) -> Option<Arc<CachedFeed>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(f, _)| f.expires_at.is_none_or(|at| now < at))
            .map(|(f, _)| f.clone())
    }

    /// The cached feed, unless it has expired or was rendered with templates older than
    /// `templates` ([`crate::templates::LiveTemplates::generation`]): a swap of the
    /// overrides is seen at once, before the watcher's [`Self::clear`] has run.
    pub fn get_current(
        &self,
        key: &CacheKey,
        now: DateTime<Utc>,
        templates: u64,
    ) -> Option<Arc<CachedFeed>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(key)
            .filter(|(f, t)| *t == templates && f.expires_at.is_none_or(|at| now < at))
            .map(|(f, _)| f.clone())
    }

    /// Take this before reading the database for a render; pass it to `insert`.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Keeps a rendering unless something was invalidated since `generation`.
    pub fn insert(&self, key: CacheKey, feed: Arc<CachedFeed>, generation: u64) {
        self.insert_rendered_with(key, feed, generation, 0);
    }

    /// [`Self::insert`], of a feed rendered with the templates of generation
    /// `templates`.
    pub fn insert_rendered_with(
        &self,
        key: CacheKey,
        feed: Arc<CachedFeed>,
        generation: u64,
        templates: u64,
    ) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        // Checked under the write lock: invalidation bumps the counter under it too.
        if self.generation.load(Ordering::Acquire) == generation {
            entries.insert(key, (feed, templates));
        }
    }

    /// Drops the feeds of these category slugs and of `all`, in every language.
    pub fn invalidate(&self, scopes: &[String]) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.retain(|k, _| k.scope != "all" && !scopes.contains(&k.scope));
    }

    /// Drops everything (a category was renamed, moved or deleted; another instance wrote).
    pub fn clear(&self) {
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        self.generation.fetch_add(1, Ordering::AcqRel);
        entries.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(scope: &str) -> CacheKey {
        CacheKey {
            scope: scope.into(),
            lang: None,
            format: FeedFormat::Rss,
            page: 1,
        }
    }

    fn feed(body: &str) -> Arc<CachedFeed> {
        Arc::new(CachedFeed::new(body.into(), "text/plain", Utc::now(), None))
    }

    #[test]
    fn invalidation_drops_touched_scopes_and_all_but_keeps_others() {
        let cache = FeedCache::new();
        let g = cache.generation();
        for s in ["news", "events", "all"] {
            cache.insert(key(s), feed(s), g);
        }
        cache.invalidate(&["news".into()]);
        let now = Utc::now();
        assert!(cache.get(&key("news"), now).is_none());
        assert!(cache.get(&key("all"), now).is_none());
        assert!(cache.get(&key("events"), now).is_some());
    }

    #[test]
    fn every_language_of_a_touched_scope_is_dropped() {
        let cache = FeedCache::new();
        let g = cache.generation();
        let in_lang = |scope: &str, lang: &str| CacheKey {
            lang: Some(lang.into()),
            ..key(scope)
        };
        for k in [
            in_lang("news", "zh"),
            in_lang("news", "en"),
            in_lang("events", "zh"),
        ] {
            cache.insert(k, feed("x"), g);
        }
        cache.invalidate(&["news".into()]);
        let now = Utc::now();
        assert!(cache.get(&in_lang("news", "zh"), now).is_none());
        assert!(cache.get(&in_lang("news", "en"), now).is_none());
        assert!(cache.get(&in_lang("events", "zh"), now).is_some());
        assert!(cache.get(&key("events"), now).is_none(), "never stored");
    }

    #[test]
    fn a_render_started_before_a_write_is_not_kept() {
        let cache = FeedCache::new();
        let before = cache.generation();
        cache.invalidate(&["news".into()]);
        cache.insert(key("news"), feed("stale"), before);
        assert!(cache.get(&key("news"), Utc::now()).is_none());
    }

    #[test]
    fn an_entry_expires_when_a_scheduled_item_goes_live() {
        let cache = FeedCache::new();
        let now = Utc::now();
        let f = Arc::new(CachedFeed::new(
            b"x".to_vec(),
            "t",
            now,
            Some(now + chrono::Duration::seconds(10)),
        ));
        cache.insert(key("news"), f, cache.generation());
        assert!(cache.get(&key("news"), now).is_some());
        assert!(
            cache
                .get(&key("news"), now + chrono::Duration::seconds(10))
                .is_none()
        );
    }

    #[test]
    fn a_feed_rendered_with_templates_since_swapped_is_a_miss() {
        // The feeds' words come from the templates: a swap is seen before the
        // watcher's `clear` has run.
        let cache = FeedCache::new();
        let now = Utc::now();
        cache.insert_rendered_with(key("news"), feed("old words"), cache.generation(), 3);
        assert!(cache.get_current(&key("news"), now, 3).is_some());
        assert!(cache.get_current(&key("news"), now, 4).is_none());
        assert!(cache.get(&key("news"), now).is_some(), "kept until dropped");
        cache.insert_rendered_with(key("news"), feed("new words"), cache.generation(), 4);
        let hit = cache.get_current(&key("news"), now, 4).unwrap();
        assert_eq!(hit.body.as_ref(), b"new words");
    }

    #[test]
    fn accept_encoding_is_read_with_q_values() {
        assert_eq!(Encoding::choose(None), Encoding::Identity);
        assert_eq!(
            Encoding::choose(Some("gzip, deflate, br")),
            Encoding::Brotli
        );
        assert_eq!(Encoding::choose(Some("gzip, br;q=0")), Encoding::Gzip);
        assert_eq!(Encoding::choose(Some("identity")), Encoding::Identity);
    }

    #[test]
    fn etags_match_across_codings_and_weak_forms() {
        let f = feed("hello");
        let tag = f.etag(Encoding::Identity);
        assert!(f.matches_if_none_match(&tag));
        assert!(f.matches_if_none_match(&f.etag(Encoding::Gzip)));
        assert!(f.matches_if_none_match(&format!("\"other\", W/{tag}")));
        assert!(f.matches_if_none_match("*"));
        assert!(!f.matches_if_none_match("\"other\""));
    }

    #[test]
    fn compressed_bodies_decompress_to_the_original() {
        use std::io::Read;
        let f = feed(&"feed ".repeat(1000));
        let gz = f.body_in(Encoding::Gzip);
        let mut out = String::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out.as_bytes(), &f.body[..]);
        let br = f.body_in(Encoding::Brotli);
        let mut out = Vec::new();
        brotli::BrotliDecompress(&mut &br[..], &mut out).unwrap();
        assert_eq!(out, &f.body[..]);
    }
}
