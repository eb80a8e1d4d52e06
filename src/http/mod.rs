//! HTTP: the public side (feeds, pages, health) and the admin API, on one router.

pub mod admin;
pub mod api;
pub mod auth;
pub mod download;
pub mod error;
pub mod extract;
pub mod public;
pub mod rate_limit;

pub use rate_limit::RateLimiter;

use crate::app::{App, ContentChange, Core};
use crate::config::Settings;
use crate::feeds::cache::FeedCache;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use public::page_cache::PageCache;
use std::sync::Arc;
use std::time::Duration;
use tower_http::compression::CompressionLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

/// What every handler can reach: the application core and the HTTP layer's own state.
/// Cloned for every request, so it is one `Arc`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// The HTTP state around an application core; the feed and page caches follow the
    /// core's content changes (this instance's and, through `crate::bridge`, others').
    pub fn new(app: App) -> Self {
        let cache = Arc::new(FeedCache::new());
        let pages = Arc::new(PageCache::new());
        let (feeds, listening) = (cache.clone(), pages.clone());
        app.content_events.subscribe(move |change| {
            match change {
                ContentChange::Categories(slugs) => feeds.invalidate(slugs),
                ContentChange::Everything => feeds.clear(),
                ContentChange::List(_) | ContentChange::Digests(_) => {}
            }
            listening.apply(change);
        });
        let limiter = Arc::new(RateLimiter::new(
            app.settings.subscribe_rate_per_hour,
            Duration::from_secs(3600),
        ));
        Self(Arc::new(Shared {
            app,
            cache,
            pages,
            limiter,
            // Per client address: 30 sign-in attempts per 15 minutes (each account also
            // locks after 5 failures in a row).
            sign_in_limiter: Arc::new(RateLimiter::new(30, Duration::from_secs(15 * 60))),
            unknown_name_limiter: Arc::new(RateLimiter::new(4, Duration::from_secs(15 * 60))),
        }))
    }

    pub fn app(&self) -> &App {
        &self.0.app
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl axum::extract::FromRef<AppState> for App {
    fn from_ref(state: &AppState) -> App {
        state.0.app.clone()
    }
}

/// The HTTP layer's own state; the core's parts (`store`, `clock`, ...) are reached
/// through it.
pub struct Shared {
    pub app: App,
    pub cache: Arc<FeedCache>,
    /// The public pages everyone reads (`public::page_cache`).
    pub pages: Arc<PageCache>,
    pub limiter: Arc<RateLimiter>,
    /// Failed sign-ins per client address.
    pub sign_in_limiter: Arc<RateLimiter>,
    /// Failed sign-ins per user name that names nobody: they "lock" like real
    /// accounts, so the answers do not tell which names exist.
    pub unknown_name_limiter: Arc<RateLimiter<String>>,
}

impl std::ops::Deref for Shared {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.app
    }
}

/// The client's address for per-address limits: the peer's, or behind a trusted reverse
/// proxy the last `X-Forwarded-For` entry (the one that proxy added; earlier entries
/// are whatever the client claimed).
pub fn client_ip(
    settings: &Settings,
    peer: std::net::SocketAddr,
    headers: &axum::http::HeaderMap,
) -> std::net::IpAddr {
    if settings.trust_forwarded_for
        && let Some(ip) = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return ip;
    }
    peer.ip()
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = api::router();
    let openapi_json = Arc::new(openapi.to_pretty_json().unwrap_or_default());
    let request_id = HeaderName::from_static("x-request-id");
    let rest = Router::new()
        .merge(api.layer(DefaultBodyLimit::max(state.settings.max_body_bytes)))
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                let json = openapi_json.clone();
                async move {
                    (
                        [("content-type", "application/json")],
                        json.as_ref().clone(),
                    )
                }
            }),
        )
        .merge(admin::router(state.clone()))
        .merge(public::router())
        // Feeds set their own Content-Encoding from cached compressed bytes; this layer
        // leaves such responses alone and compresses pages and API answers.
        .layer(CompressionLayer::new().gzip(true).br(true))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &Request<_>| {
                let id = req
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-");
                // The path only: query strings and headers may carry tokens.
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // Feeds go around those layers: they are answered from memory, already compressed,
    // and a span, a request id and a compression check per request cost more than the
    // answer itself.
    Router::new()
        .merge(public::feed_router())
        .merge(rest)
        .with_state(state)
}
