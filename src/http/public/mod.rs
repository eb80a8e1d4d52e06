//! What anyone may read: feeds, pages, health.

mod digests;
mod feeds;
mod headers;
mod health;
pub mod page_cache;
mod pages;
mod subscribe;
pub(crate) mod views;

use super::AppState;
use axum::Router;
use axum::middleware;
use axum::routing::get;

/// The hot path: the feeds and the pages everyone reads, served from their caches
/// with their own compression and headers (see `page_cache`).
pub fn feed_router() -> Router<AppState> {
    Router::new()
        .route("/feeds/{file}", get(feeds::feed))
        .route("/", get(pages::index))
        .route("/categories/{slug}", get(pages::category))
        .route("/items/{file}", get(pages::item))
        .route("/digests/{file}", get(digests::archive))
        .route("/digests/{list}/{period}", get(digests::issue))
        // The same pages in each site language (`pages` says which segments name one).
        .route("/{lang}", get(pages::language_root))
        .route("/{lang}/", get(pages::language_index))
        .route("/{lang}/categories/{slug}", get(pages::category))
        .route("/{lang}/items/{file}", get(pages::item))
        .route("/{lang}/digests/{file}", get(digests::language_archive))
        .route("/{lang}/digests/{list}/{period}", get(digests::issue))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/feeds.opml", get(feeds::opml))
        .route("/static/site.css", get(headers::stylesheet))
        .route(
            "/subscribe",
            get(subscribe::form).post(subscribe::subscribe),
        )
        .route("/subscribe/confirm/{token}", get(subscribe::confirm))
        .route(
            "/unsubscribe/{token}",
            get(subscribe::unsubscribe_page).post(subscribe::unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(subscribe::preferences).post(subscribe::save_preferences),
        )
        // The same in each site language (`/zh/subscribe`; others are 404).
        .route(
            "/{lang}/subscribe",
            get(subscribe::form).post(subscribe::subscribe),
        )
        .route("/{lang}/subscribe/confirm/{token}", get(subscribe::confirm))
        .route(
            "/{lang}/unsubscribe/{token}",
            get(subscribe::unsubscribe_page).post(subscribe::unsubscribe),
        )
        .route(
            "/{lang}/preferences/{token}",
            get(subscribe::preferences).post(subscribe::save_preferences),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(pages::not_found)
        .layer(middleware::from_fn(headers::security_headers))
}
