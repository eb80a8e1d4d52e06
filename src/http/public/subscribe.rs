//! The public side of lists: subscribe, confirm, one-click unsubscribe, preferences.

use super::views::Page;
use crate::domain::{MailingList, MembershipStatus};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::services::subscriptions::public::{self, PreferencesInput, SubscribeInput};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

const LANGUAGES: [(&str, &str); 2] = [("en", "English"), ("zh", "中文")];

#[derive(Serialize)]
struct LanguageOption {
    code: &'static str,
    label: &'static str,
    selected: bool,
}

fn languages(selected: &str) -> Vec<LanguageOption> {
    LANGUAGES
        .iter()
        .map(|(code, label)| LanguageOption {
            code,
            label,
            selected: *code == selected,
        })
        .collect()
}

#[derive(Debug, Default, Deserialize, Serialize)]
pub struct SubscribeForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    list: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

#[derive(Serialize)]
struct ListOption {
    slug: String,
    name: String,
    description: String,
    selected: bool,
}

#[derive(Serialize)]
struct FormBody {
    form: SubscribeForm,
    lists: Vec<ListOption>,
    languages: Vec<LanguageOption>,
    errors: Vec<crate::domain::FieldError>,
}

async fn public_lists(state: &AppState) -> Result<Vec<MailingList>, AppError> {
    Ok(public::public_lists(state.app()).await?)
}

fn html(
    state: &AppState,
    status: StatusCode,
    template: &str,
    title: &str,
    body: impl Serialize,
) -> Response {
    let page = Page::new(&state.settings, title, Vec::new(), body);
    match state.templates.render(template, &page) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => AppError::Internal(e).into_response(),
    }
}

#[derive(Serialize)]
struct Message {
    heading: String,
    paragraphs: Vec<String>,
    link_url: Option<String>,
    link_text: String,
}

fn message(
    state: &AppState,
    status: StatusCode,
    heading: &str,
    paragraphs: &[&str],
    link: Option<(String, &str)>,
) -> Response {
    let (link_url, link_text) = match link {
        Some((url, text)) => (Some(url), text.to_owned()),
        None => (None, String::new()),
    };
    let body = Message {
        heading: heading.into(),
        paragraphs: paragraphs.iter().map(|p| p.to_string()).collect(),
        link_url,
        link_text,
    };
    html(state, status, "message", heading, body)
}

/// The plain 404 every unknown, used or expired token gets: it says nothing of why.
fn unknown_link(state: &AppState) -> Response {
    message(
        state,
        StatusCode::NOT_FOUND,
        "Not found",
        &["This link is not valid. It may have expired or been used already."],
        None,
    )
}

#[derive(Debug, Deserialize)]
pub struct FormQuery {
    list: Option<String>,
}

pub async fn form(State(state): State<AppState>, Query(q): Query<FormQuery>) -> Response {
    let lists = match public_lists(&state).await {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let chosen = q
        .list
        .or_else(|| (lists.len() == 1).then(|| lists[0].slug.clone()));
    render_form(
        &state,
        StatusCode::OK,
        SubscribeForm {
            list: chosen,
            ..Default::default()
        },
        &lists,
        Vec::new(),
    )
}

fn render_form(
    state: &AppState,
    status: StatusCode,
    form: SubscribeForm,
    lists: &[MailingList],
    errors: Vec<crate::domain::FieldError>,
) -> Response {
    let language = form.language.clone().unwrap_or_else(|| "en".into());
    let body = FormBody {
        lists: lists
            .iter()
            .map(|l| ListOption {
                selected: form.list.as_deref() == Some(l.slug.as_str()),
                slug: l.slug.clone(),
                name: l.name.clone(),
                description: l.description.clone(),
            })
            .collect(),
        languages: languages(&language),
        errors,
        form,
    };
    html(state, status, "subscribe", "Subscribe", body)
}

/// `POST /subscribe`, from the form or as JSON. The answer is the same whether the
/// address was new, pending or confirmed already.
pub async fn subscribe(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let client = crate::http::client_ip(&state.settings, peer, &headers);
    let allowed = match public::subscribe_allowed(state.app(), &client.to_string()).await {
        Ok(a) => a,
        Err(e) => return AppError::from(e).into_response(),
    };
    if !allowed {
        let mut response = if json {
            AppError::TooManyRequests.into_response()
        } else {
            message(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests",
                &["Please try again later."],
                None,
            )
        };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
        return response;
    }
    let form: SubscribeForm = if json {
        match crate::http::extract::parse_json(&body) {
            Ok(f) => f,
            Err(e) => return e.into_response(),
        }
    } else {
        match serde_urlencoded::from_bytes(&body) {
            Ok(f) => f,
            Err(e) => {
                return AppError::BadRequest(format!("the form could not be read: {e}"))
                    .into_response();
            }
        }
    };
    let input = SubscribeInput {
        email: &form.email,
        name: &form.name,
        list: form.list.as_deref(),
        language: form.language.as_deref(),
    };
    match public::subscribe(state.app(), &input, &client.to_string()).await {
        Ok(()) => {}
        Err(crate::services::ServiceError::Invalid(errors)) if !json => {
            let lists = match public_lists(&state).await {
                Ok(l) => l,
                Err(e) => return e.into_response(),
            };
            return render_form(
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                &lists,
                errors.0,
            );
        }
        Err(e) => return AppError::from(e).into_response(),
    }
    let text =
        "If this address can receive mail, a message is on its way. Follow its link to confirm.";
    if json {
        (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({"status": "accepted", "message": text})),
        )
            .into_response()
    } else {
        message(&state, StatusCode::OK, "Check your inbox", &[text], None)
    }
}

/// `GET /subscribe/confirm/{token}`: the link in the confirmation mail.
pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let confirmed = match public::confirm(state.app(), &token).await {
        Ok(Some(c)) => c,
        Ok(None) => return unknown_link(&state),
        Err(e) => return AppError::from(e).into_response(),
    };
    let preferences = confirmed.preferences_token.map(|t| {
        (
            format!("{}/preferences/{t}", state.settings.base_url),
            "Manage your subscriptions",
        )
    });
    let line = match confirmed.list_name {
        Some(name) => format!("Your address is confirmed. You will receive {name}."),
        None => "Your address is confirmed.".to_owned(),
    };
    message(
        &state,
        StatusCode::OK,
        "Subscription confirmed",
        &[&line],
        preferences,
    )
}

/// `GET /unsubscribe/{token}`: a page with one button.
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let target = match public::unsubscribe_target(state.app(), &token).await {
        Ok(Some(t)) => t,
        Ok(None) => return unknown_link(&state),
        Err(e) => return AppError::from(e).into_response(),
    };
    #[derive(Serialize)]
    struct Body {
        list_name: String,
        email: String,
        action: String,
    }
    let body = Body {
        list_name: target
            .list_name
            .unwrap_or_else(|| "any mail from us".into()),
        email: target.email.unwrap_or_default(),
        action: format!("{}/unsubscribe/{token}", state.settings.base_url),
    };
    html(&state, StatusCode::OK, "unsubscribe", "Unsubscribe", body)
}

/// `POST /unsubscribe/{token}` with `List-Unsubscribe=One-Click` (RFC 8058): done at
/// once, no login, cookie, redirect or second step. Repeating it is harmless.
pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let one_click = url::form_urlencoded::parse(&body)
        .any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    if !one_click {
        return AppError::BadRequest("the body must be List-Unsubscribe=One-Click".into())
            .into_response();
    }
    match public::unsubscribe(state.app(), &token).await {
        Ok(true) => message(
            &state,
            StatusCode::OK,
            "You are unsubscribed",
            &["You will not receive this list any more. Other lists you are on are not affected."],
            None,
        ),
        Ok(false) => unknown_link(&state),
        Err(e) => AppError::from(e).into_response(),
    }
}

#[derive(Serialize)]
struct PreferenceList {
    slug: String,
    name: String,
    description: String,
    checked: bool,
    pending: bool,
}

#[derive(Serialize)]
struct PreferencesBody {
    email: String,
    action: String,
    lists: Vec<PreferenceList>,
    languages: Vec<LanguageOption>,
    zones: Vec<ZoneOption>,
    /// Their partner's zone, used when they have none of their own.
    institution_zone: Option<String>,
    saved: bool,
}

#[derive(Serialize)]
struct ZoneOption {
    name: &'static str,
    selected: bool,
}

async fn preferences_page(state: &AppState, token: &str, saved: bool) -> Response {
    let found = match public::preferences(state.app(), token).await {
        Ok(Some(p)) => p,
        Ok(None) => return unknown_link(state),
        Err(e) => return AppError::from(e).into_response(),
    };
    let subscriber = found.subscriber;
    let body = PreferencesBody {
        email: subscriber.email,
        action: format!("{}/preferences/{token}", state.settings.base_url),
        lists: found
            .lists
            .into_iter()
            .map(|(l, status)| PreferenceList {
                checked: status == Some(MembershipStatus::Confirmed),
                pending: status == Some(MembershipStatus::Pending),
                slug: l.slug,
                name: l.name,
                description: l.description,
            })
            .collect(),
        languages: languages(&subscriber.language),
        zones: chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| ZoneOption {
                name: z.name(),
                selected: subscriber.timezone.as_deref() == Some(z.name()),
            })
            .collect(),
        institution_zone: found.institution_zone,
        saved,
    };
    html(
        state,
        StatusCode::OK,
        "preferences",
        "Your subscriptions",
        body,
    )
}

pub async fn preferences(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    preferences_page(&state, &token, false).await
}

/// Saves the preference form: `language` and one `list` field per list to be on.
pub async fn save_preferences(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let mut input = PreferencesInput::default();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "language" => input.language = Some(v.into_owned()),
            "timezone" => input.timezone = Some(v.into_owned()),
            "list" => input.lists.push(v.into_owned()),
            _ => {}
        }
    }
    match public::save_preferences(state.app(), &token, &input).await {
        Ok(true) => preferences_page(&state, &token, true).await,
        Ok(false) => unknown_link(&state),
        Err(e) => AppError::from(e).into_response(),
    }
}
