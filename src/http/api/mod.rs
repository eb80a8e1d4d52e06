//! The admin API under `/api/v1`, with its OpenAPI description.

pub mod categories;
pub mod contract;
pub mod digests;
pub mod items;
pub mod lists;
pub mod partners;
pub mod subscribers;
pub mod tokens;
pub mod versions;

use super::AppState;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(title = "newsdesk admin API", description = "Write news items and categories; manage partners, subscribers and lists. Every call needs `Authorization: Bearer TOKEN`. Errors are application/problem+json."),
    modifiers(&BearerAuth),
    tags((name = "items"), (name = "categories"), (name = "tokens"), (name = "partners"), (name = "subscribers"), (name = "lists"), (name = "digests"))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and the OpenAPI document built from their annotations, finished by
/// [`contract::finish`].
pub fn router() -> (axum::Router<AppState>, serde_json::Value) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(items::router())
        .merge(versions::router())
        .merge(categories::router())
        .merge(tokens::router())
        .merge(partners::router())
        .merge(subscribers::router())
        .merge(lists::router())
        .merge(digests::router())
        .split_for_parts();
    (router, contract::finish(&doc))
}
