//! HTTP: the public side (feeds, pages, health) and the admin API, on one router.

pub mod admin;
pub mod api;
pub mod auth;
pub mod download;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod observe;
pub mod public;

use crate::app::{App, ContentChange, Core};
use crate::config::Settings;
use crate::feeds::cache::FeedCache;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use public::page_cache::PageCache;
use std::sync::Arc;
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
        Self(Arc::new(Shared { app, cache, pages }))
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
    let openapi_json = Arc::new(serde_json::to_string_pretty(&openapi).unwrap_or_default());
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
                // The route template only: paths (`/unsubscribe/{token}`), query strings
                // and headers may carry tokens.
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or(observe::UNMATCHED, |m| m.as_str());
                tracing::info_span!("request", method = %req.method(), route, id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid));
    // `/metrics` on the main address when a token guards it and it has no address of
    // its own (`startup` serves it there); otherwise it does not exist.
    let observe = &state.settings.observe;
    let metrics = if observe.metrics_token.is_some() && observe.metrics_bind.is_none() {
        metrics::router()
    } else {
        Router::new()
    };
    // Feeds go around those layers: they are answered from memory, already compressed,
    // and a span, a request id and a compression check per request cost more than the
    // answer itself. Every request, feeds included, is counted and logged (`observe`).
    Router::new()
        .merge(public::feed_router())
        .merge(metrics)
        .merge(rest)
        .layer(observe::ObserveLayer::new(state.metrics.clone()))
        .with_state(state)
}
