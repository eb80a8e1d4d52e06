//! Sign-in, sessions and CSRF for the admin pages.
//!
//! - The session cookie holds 256 random bits; the database keeps only their SHA-256.
//!   A new cookie is made at every sign-in (and the one the browser had is dropped).
//! - Every form carries the session's CSRF token; the sign-in form, before there is a
//!   session, carries a token that must equal a cookie set with the form.
//! - Failed sign-ins lock the account for a while (doubling), and each client address
//!   has a budget of attempts: the rules are `services::users`', counted in the
//!   database so that every instance on it shares them.

use super::page::{self, FormData, PageError, PageResult};
use crate::domain::Role;
use crate::http::AppState;
use crate::services::users::{self, IDLE_SECONDS as IDLE, Resumed, SignInRefused};
use axum::body::{Body, to_bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

pub use crate::services::users::{random_token, same};

pub const SESSION_COOKIE: &str = "nd_session";
const PRE_SESSION_COOKIE: &str = "nd_signin";

/// The signed-in person, put in the request by [`require_session`].
#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: i64,
    pub name: String,
    pub role: Role,
    pub csrf: String,
    pub flash: Option<Flash>,
    pub(crate) token_hash: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: String,
    pub message: String,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Session>()
            .cloned()
            .ok_or_else(|| Redirect::to("/admin/sign-in").into_response())
    }
}

pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn set_cookie(state: &AppState, name: &str, value: &str, max_age: i64) -> HeaderValue {
    let secure = if state.settings.base_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/admin; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are hex")
}

/// To the sign-in form, coming back afterwards to the page asked for; a form posted
/// after the session ended comes back to the page the form was on (its address is
/// only for POSTs).
fn sign_in_redirect(parts: &Parts) -> Response {
    let next = if parts.method == Method::GET {
        parts.uri.path_and_query().map(|p| p.as_str().to_owned())
    } else {
        parts
            .headers
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok())
            .and_then(|r| url::Url::parse(r).ok())
            .map(|u| match u.query() {
                Some(q) => format!("{}?{q}", u.path()),
                None => u.path().to_owned(),
            })
    };
    let next = safe_next(next.as_deref());
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", &next)
        .finish();
    Redirect::to(&format!("/admin/sign-in?{query}")).into_response()
}

/// Finds the session of the cookie (or sends the browser to sign in), checks the CSRF
/// token of every POST, and puts the [`Session`] (and a form's parsed body) in the
/// request.
pub async fn require_session(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
        return sign_in_redirect(&parts);
    };
    let is_get = parts.method == Method::GET;
    let now = state.clock.now();
    let found = users::resume_session(&state.store, &token, now, is_get).await;
    let Resumed {
        record,
        token_hash,
        touched,
        flash,
    } = match found {
        Ok(Some(r)) => r,
        Ok(None) => return sign_in_redirect(&parts),
        Err(e) => return PageError::from(e).into_response(),
    };
    let body = if parts.method == Method::POST {
        match checked_form(&state, &mut parts, body, &record.csrf_token).await {
            Ok(body) => body,
            Err(refused) => return refused,
        }
    } else {
        body
    };
    parts.extensions.insert(Session {
        user_id: record.user.id,
        name: record.user.name.clone(),
        role: record.user.role,
        csrf: record.csrf_token,
        // Shown by the GET that follows a POST's redirect.
        flash: flash.map(|(kind, message)| Flash { kind, message }),
        token_hash,
    });
    let mut response = next.run(Request::from_parts(parts, body)).await;
    if touched {
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&state, SESSION_COOKIE, &token, IDLE),
        );
    }
    response
}

/// Reads a posted form (within the size limit) and checks its CSRF token; the parsed
/// form goes into the request's extensions for the handler. Uploads carry the token in
/// the form's address, so their body streams on to the handler (to disk) unread.
async fn checked_form(
    state: &AppState,
    parts: &mut Parts,
    body: Body,
    csrf: &str,
) -> Result<Body, Response> {
    let multipart = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if multipart && parts.uri.path() != "/admin/import" {
        return Err(page::error_response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Only the import form sends files.",
        ));
    }
    let (sent, body) = if multipart {
        let sent = parts
            .uri
            .query()
            .map(FormData::parse_str)
            .and_then(|q| q.get_opt("csrf").map(str::to_owned));
        (sent, body)
    } else {
        let limit = state.settings.max_body_bytes;
        let Ok(bytes) = to_bytes(body, limit).await else {
            return Err(page::error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("The form is larger than {limit} bytes."),
            ));
        };
        let form = FormData::parse(&bytes);
        let sent = form.get_opt("csrf").map(str::to_owned);
        parts.extensions.insert(form);
        (sent, Body::from(bytes))
    };
    if !sent.is_some_and(|s| same(&s, csrf)) {
        tracing::warn!(path = %parts.uri.path(), "admin form refused: missing or wrong CSRF token");
        return Err(page::error_response(
            StatusCode::FORBIDDEN,
            "This form has expired or did not come from this site. Go back, reload the page and send it again.",
        ));
    }
    Ok(body)
}

/// Admin-only pages: editors get a 403 page that says so.
pub async fn require_admin(request: Request, next: Next) -> Response {
    match request.extensions().get::<Session>() {
        Some(s) if s.is_admin() => next.run(request).await,
        Some(_) => page::error_response(
            StatusCode::FORBIDDEN,
            "This page is for admins. Editors manage items and categories; ask an admin for anything else.",
        ),
        None => Redirect::to("/admin/sign-in").into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct SignInQuery {
    next: Option<String>,
    signed_out: Option<String>,
    password_changed: Option<String>,
}

#[derive(Serialize)]
struct SignInBody {
    csrf: String,
    name: String,
    next: String,
    error: Option<String>,
    notice: Option<String>,
}

/// Only pages of this site's admin, never another host (`//evil`, `/\evil`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with("/admin")
                && n.bytes().all(|b| b.is_ascii_graphic())
                && !n.contains("//")
                && !n.contains('\\')
                && !n.starts_with("/admin/sign-") =>
        {
            n.to_owned()
        }
        _ => "/admin".into(),
    }
}

fn render_sign_in(
    state: &AppState,
    status: StatusCode,
    pre_token: &str,
    body: SignInBody,
) -> Response {
    let mut response = page::bare(state, status, "admin/sign_in", "Sign in", &body);
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(state, PRE_SESSION_COOKIE, pre_token, 3600),
    );
    response
}

pub async fn sign_in_form(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<SignInQuery>,
) -> PageResult {
    if let Some(token) = cookie(&headers, SESSION_COOKIE)
        && users::session_is_live(&state.store, &token, state.clock.now()).await?
    {
        return Ok(Redirect::to(&safe_next(q.next.as_deref())).into_response());
    }
    let pre = cookie(&headers, PRE_SESSION_COOKIE)
        .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(random_token);
    Ok(render_sign_in(
        &state,
        StatusCode::OK,
        &pre,
        SignInBody {
            csrf: pre.clone(),
            name: String::new(),
            next: safe_next(q.next.as_deref()),
            error: None,
            notice: if q.password_changed.is_some() {
                Some("Your password was changed. Sign in with the new one.".to_owned())
            } else {
                q.signed_out.map(|_| "You have signed out.".to_owned())
            },
        },
    ))
}

pub async fn sign_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: FormData,
) -> PageResult {
    let now = state.clock.now();
    let name = form.get("name").trim().to_owned();
    let next = safe_next(form.get_opt("next"));
    let fresh_pre = random_token();
    let again = |status: StatusCode, error: &str| {
        Ok(render_sign_in(
            &state,
            status,
            &fresh_pre,
            SignInBody {
                csrf: fresh_pre.clone(),
                name: name.clone(),
                next: next.clone(),
                error: Some(error.to_owned()),
                notice: None,
            },
        ))
    };
    let pre = cookie(&headers, PRE_SESSION_COOKIE);
    if !pre.is_some_and(|p| same(&p, form.get("csrf"))) {
        tracing::warn!("sign-in refused: missing or wrong CSRF token");
        return again(
            StatusCode::FORBIDDEN,
            "The sign-in form had expired. Please sign in again.",
        );
    }
    let client = crate::http::client_ip(&state.settings, peer, &headers).to_string();
    let old = cookie(&headers, SESSION_COOKIE);
    let password = form.get("password");
    let signed_in =
        users::sign_in(&state.store, now, &name, password, &client, old.as_deref()).await?;
    let refused = match signed_in {
        Ok(signed_in) => return Ok(started(&state, &signed_in.token, &next)),
        Err(refused) => refused,
    };
    let (status, message) = match refused {
        SignInRefused::AddressOver => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed sign-ins from your address. Wait a few minutes and try again.".into(),
        ),
        SignInRefused::Incomplete => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Enter your user name and your password.".into(),
        ),
        SignInRefused::Locked(left) => (StatusCode::TOO_MANY_REQUESTS, locked_message(left)),
        SignInRefused::Wrong => (
            StatusCode::UNAUTHORIZED,
            "The user name or the password is wrong.".into(),
        ),
        SignInRefused::Disabled => (
            StatusCode::FORBIDDEN,
            "This account is disabled. Ask an admin to enable it.".into(),
        ),
    };
    state
        .metrics
        .sign_in_failed(crate::metrics::sign_in_reason(status));
    again(status, &message)
}

fn locked_message(left: chrono::Duration) -> String {
    let minutes = (left.num_seconds() + 59) / 60;
    format!(
        "Too many failed sign-ins for this account: it is locked for {minutes} more minute(s). \
         An admin can unlock it by setting a new password."
    )
}

/// To the page asked for, with the new session's cookie; the sign-in form's cookie goes.
fn started(state: &AppState, token: &str, next: &str) -> Response {
    let mut response = Redirect::to(next).into_response();
    let headers = response.headers_mut();
    headers.append(
        header::SET_COOKIE,
        set_cookie(state, SESSION_COOKIE, token, IDLE),
    );
    headers.append(
        header::SET_COOKIE,
        set_cookie(state, PRE_SESSION_COOKIE, "", 0),
    );
    response
}

pub async fn sign_out(State(state): State<AppState>, session: Session) -> PageResult {
    users::end_session(&state.store, &session.token_hash).await?;
    let mut response = Redirect::to("/admin/sign-in?signed_out=1").into_response();
    response.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(&state, SESSION_COOKIE, "", 0),
    );
    Ok(response)
}

/// The message the next page shows, then a redirect to it (303: the browser GETs).
pub async fn done(
    state: &AppState,
    session: &Session,
    ok: bool,
    message: &str,
    to: &str,
) -> PageResult {
    users::set_flash(&state.store, &session.token_hash, ok, message).await?;
    Ok(Redirect::to(to).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_admin_pages() {
        assert_eq!(
            safe_next(Some("/admin/items?status=draft")),
            "/admin/items?status=draft"
        );
        for bad in [
            "https://evil.example",
            "//evil.example",
            "/admin//evil",
            "/\\evil",
            "/feeds",
            "/admin/sign-out",
        ] {
            assert_eq!(safe_next(Some(bad)), "/admin", "{bad}");
        }
        assert_eq!(safe_next(None), "/admin");
    }

    #[test]
    fn cookies_are_read_by_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; nd_session=xyz; b=2"),
        );
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
