//! The admin web interface under `/admin`: server-rendered pages, plain forms, a
//! session cookie, a CSRF token on every form, and roles (editors write content;
//! admins also manage people, lists, digests and users).

mod categories;
mod dashboard;
mod digests;
mod import;
mod items;
mod lists;
mod page;
mod people;
pub mod session;
mod templates;
mod users;

pub use page::{FormData, PageError, PageResult};
pub use session::Session;

use super::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

const ADMIN_CSS: &str = include_str!("../../../templates/admin/static/admin.css");
const ADMIN_JS: &str = include_str!("../../../templates/admin/static/admin.js");

pub fn router(state: AppState) -> Router<AppState> {
    // Admins only: people, lists, digests, users.
    let admin_only = Router::new()
        .route(
            "/admin/partners",
            get(people::partners).post(people::create_partner),
        )
        .route(
            "/admin/partners/{id}",
            get(people::partner).post(people::update_partner),
        )
        .route("/admin/partners/{id}/delete", post(people::delete_partner))
        .route(
            "/admin/subscribers",
            get(people::subscribers).post(people::create_subscriber),
        )
        .route(
            "/admin/subscribers/{id}",
            get(people::subscriber).post(people::update_subscriber),
        )
        .route(
            "/admin/subscribers/{id}/status",
            post(people::set_subscriber_status),
        )
        .route(
            "/admin/subscribers/{id}/memberships",
            post(people::set_membership),
        )
        .route("/admin/import", get(import::form).post(import::upload))
        .route("/admin/import/apply", post(import::apply))
        .route("/admin/import/{upload}", get(import::preview))
        .route("/admin/lists", get(lists::index).post(lists::create))
        .route("/admin/lists/{slug}", get(lists::show).post(lists::update))
        .route("/admin/lists/{slug}/preview", get(lists::preview_frame))
        .route("/admin/lists/{slug}/send", post(lists::send_now))
        .route("/admin/lists/{slug}/export.csv", get(lists::export))
        .route("/admin/digests/{id}", get(digests::show))
        .route("/admin/digests/{id}/retry", post(digests::retry))
        .route("/admin/digests/{id}/cancel", post(digests::cancel))
        .route("/admin/templates", get(templates::show))
        .route("/admin/users", get(users::index).post(users::create))
        .route("/admin/users/{id}", post(users::update))
        .route("/admin/users/{id}/password", post(users::reset_password))
        .route_layer(middleware::from_fn(session::require_admin));
    // Anyone signed in: content.
    let signed_in = Router::new()
        .route("/admin", get(dashboard::show))
        .route("/admin/", get(dashboard::show))
        .route("/admin/items", get(items::index).post(items::create))
        .route("/admin/items/new", get(items::new_form))
        .route("/admin/items/preview", post(items::preview))
        .route("/admin/items/{id}", get(items::edit).post(items::update))
        .route("/admin/items/{id}/publish", post(items::publish))
        .route("/admin/items/{id}/unpublish", post(items::unpublish))
        .route("/admin/items/{id}/delete", post(items::delete))
        .route(
            "/admin/categories",
            get(categories::index).post(categories::create),
        )
        .route("/admin/categories/{slug}", post(categories::update))
        .route("/admin/categories/{slug}/delete", post(categories::delete))
        .route(
            "/admin/account",
            get(users::account).post(users::change_own_password),
        )
        .route("/admin/sign-out", post(session::sign_out))
        .merge(admin_only)
        // The session check reads the body itself, with its own limits.
        .layer(axum::extract::DefaultBodyLimit::disable())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            session::require_session,
        ));
    Router::new()
        .route(
            "/admin/sign-in",
            get(session::sign_in_form).post(session::sign_in),
        )
        .route("/admin/static/admin.css", get(css))
        .route("/admin/static/admin.js", get(js))
        .merge(signed_in)
        .layer(middleware::from_fn_with_state(state, security_headers))
}

/// Every admin answer: never cached, never framed by another site, scripts and
/// styles from newsdesk only.
async fn security_headers(State(_): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; \
         connect-src 'self'; frame-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
        ));
    response
}

async fn css() -> Response {
    static_asset("text/css; charset=utf-8", ADMIN_CSS)
}

async fn js() -> Response {
    static_asset("text/javascript; charset=utf-8", ADMIN_JS)
}

fn static_asset(content_type: &'static str, body: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
