//! What anyone may read: feeds, pages, health.

mod feeds;
mod health;
mod pages;
mod views;

use super::AppState;
use axum::Router;
use axum::routing::get;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/feeds/{file}", get(feeds::feed))
        .route("/feeds.opml", get(feeds::opml))
        .route("/", get(pages::index))
        .route("/categories/{slug}", get(pages::category))
        .route("/items/{file}", get(pages::item))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .fallback(pages::not_found)
}
