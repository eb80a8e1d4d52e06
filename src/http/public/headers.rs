//! Security headers of the public side: the pages' Content-Security-Policy, framing and
//! referrer rules, and `nosniff` on everything (pages, OPML, `.ics`, the stylesheet).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// As strict as the templates in `templates/web/` allow: no script at all, the one
/// stylesheet from newsdesk (no `<style>` and no `style=` in any template), images in
/// item bodies from anywhere over HTTPS (authors link them) or inline data, forms
/// posting back to newsdesk only, and no framing by anyone.
pub const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The site's stylesheet, kept out of the pages so that the CSP needs no `'unsafe-inline'`.
const SITE_CSS: &str = include_str!("../../../templates/web/static/site.css");

/// Every public answer (pages, error pages, the OPML, `.ics`): a handler's own value wins.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    set_security_headers(response.headers_mut());
    response
}

/// The headers of [`security_headers`], on one answer (a handler's own value wins).
pub fn set_security_headers(headers: &mut HeaderMap) {
    nosniff(headers);
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_CSP));
    headers
        .entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    // Links out of an item (authors' sites) get the origin only, never the token in a
    // preference or unsubscribe address.
    headers
        .entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("strict-origin-when-cross-origin"));
}

/// `X-Content-Type-Options: nosniff`, also used by the feed responses (a static value:
/// no allocation on the hot path).
pub fn nosniff(headers: &mut HeaderMap) {
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

pub async fn stylesheet() -> Response {
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        SITE_CSS,
    )
        .into_response()
}
