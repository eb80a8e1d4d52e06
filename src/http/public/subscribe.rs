//! The public side of lists: subscribe, confirm, one-click unsubscribe, preferences.

use super::views::Page;
use crate::domain::{
    Email, FieldErrors, Language, MailingList, Slug, SubscriptionOutcome, Text, TimeZone,
    TokenPurpose, Visibility,
};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::subscriptions::{mint_token, send_confirmation_later, token_hash};
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
    Ok(state
        .store
        .lists()
        .all()
        .await?
        .into_iter()
        .filter(|l| l.visibility == Visibility::Public)
        .collect())
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

struct Request {
    email: Email,
    name: Text,
    language: Language,
    list: MailingList,
}

fn check(form: &SubscribeForm, lists: &[MailingList]) -> Result<Request, FieldErrors> {
    let mut errors = FieldErrors::new();
    let email = errors.check("email", Email::parse(&form.email));
    let name = errors.check("name", Text::parse(&form.name, 200, false, false));
    let language = match form.language.as_deref().filter(|l| !l.is_empty()) {
        Some(l) => errors.check("language", Language::parse(l)),
        None => Some(Language::default()),
    };
    let list = match form.list.as_deref().filter(|l| !l.is_empty()) {
        None if lists.len() == 1 => Some(lists[0].clone()),
        None => {
            errors.add("list", "choose a list");
            None
        }
        Some(slug) => {
            // A private list is answered exactly like one that does not exist.
            let found = Slug::parse(slug)
                .ok()
                .and_then(|s| lists.iter().find(|l| l.slug == s.as_str()));
            if found.is_none() {
                errors.add("list", format!("there is no public list {slug:?}"));
            }
            found.cloned()
        }
    };
    errors.finish(|| {
        Some(Request {
            email: email?,
            name: name?,
            language: language?,
            list: list?,
        })
    })
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
    if !state.limiter.allow(client) {
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
    let lists = match public_lists(&state).await {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let request = match check(&form, &lists) {
        Ok(r) => r,
        Err(errors) if json => return AppError::Validation(errors).into_response(),
        Err(errors) => {
            return render_form(
                &state,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                &lists,
                errors.0,
            );
        }
    };
    let now = state.clock.now();
    let ip = client.to_string();
    let outcome = state
        .store
        .lists()
        .request_subscription(
            &request.email,
            request.name.as_str(),
            request.language.as_str(),
            &request.list,
            Some(&ip),
            now,
        )
        .await;
    match outcome {
        Ok(SubscriptionOutcome::NeedsConfirmation { subscriber_id }) => {
            send_confirmation_later(state.app(), subscriber_id, request.list.clone())
        }
        Ok(SubscriptionOutcome::Joined { .. } | SubscriptionOutcome::NothingToDo) => {}
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
    let now = state.clock.now();
    let confirmed = match state
        .store
        .tokens()
        .confirm_subscription(&token_hash(&token), now)
        .await
    {
        Ok(c) => c,
        Err(e) => return AppError::from(e).into_response(),
    };
    let Some((subscriber_id, list_id)) = confirmed else {
        return unknown_link(&state);
    };
    let list_name = match list_id {
        Some(id) => state
            .store
            .lists()
            .by_id(id)
            .await
            .ok()
            .flatten()
            .map(|l| l.name),
        None => None,
    };
    let preferences = match mint_token(
        &state.store,
        subscriber_id,
        TokenPurpose::Preferences,
        None,
        None,
        now,
    )
    .await
    {
        Ok(t) => Some((
            format!("{}/preferences/{t}", state.settings.base_url),
            "Manage your subscriptions",
        )),
        Err(e) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "could not make a preferences link"
            );
            None
        }
    };
    let line = match list_name {
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
    let now = state.clock.now();
    let grant = match state
        .store
        .tokens()
        .find(&token_hash(&token), TokenPurpose::Unsubscribe, now)
        .await
    {
        Ok(Some(g)) => g,
        Ok(None) => return unknown_link(&state),
        Err(e) => return AppError::from(e).into_response(),
    };
    let subscriber = state
        .store
        .people()
        .subscriber(grant.subscriber_id)
        .await
        .ok()
        .flatten();
    let list = match grant.list_id {
        Some(id) => state.store.lists().by_id(id).await.ok().flatten(),
        None => None,
    };
    #[derive(Serialize)]
    struct Body {
        list_name: String,
        email: String,
        action: String,
    }
    let body = Body {
        list_name: list
            .map(|l| l.name)
            .unwrap_or_else(|| "any mail from us".into()),
        email: subscriber.map(|s| s.email).unwrap_or_default(),
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
    match state
        .store
        .tokens()
        .unsubscribe(&token_hash(&token), state.clock.now())
        .await
    {
        Ok(Some(_)) => message(
            &state,
            StatusCode::OK,
            "You are unsubscribed",
            &["You will not receive this list any more. Other lists you are on are not affected."],
            None,
        ),
        Ok(None) => unknown_link(&state),
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
    let now = state.clock.now();
    let grant = match state
        .store
        .tokens()
        .find(&token_hash(token), TokenPurpose::Preferences, now)
        .await
    {
        Ok(Some(g)) => g,
        Ok(None) => return unknown_link(state),
        Err(e) => return AppError::from(e).into_response(),
    };
    let result = async {
        let subscriber = state
            .store
            .people()
            .subscriber(grant.subscriber_id)
            .await?
            .ok_or_else(|| AppError::NotFound("subscriber".into()))?;
        let memberships = state.store.lists().memberships_of(subscriber.id).await?;
        let lists = state.store.lists().all().await?;
        let institution_zone = match subscriber.partner_id {
            Some(id) => state.store.people().partner(id).await?.map(|p| p.timezone),
            None => None,
        };
        let shown: Vec<PreferenceList> = lists
            .into_iter()
            .filter_map(|l| {
                let membership = memberships.iter().find(|m| m.list_id == l.id);
                if l.visibility == Visibility::Private && membership.is_none() {
                    return None;
                }
                let status = membership.map(|m| m.status);
                Some(PreferenceList {
                    checked: status == Some(crate::domain::MembershipStatus::Confirmed),
                    pending: status == Some(crate::domain::MembershipStatus::Pending),
                    slug: l.slug,
                    name: l.name,
                    description: l.description,
                })
            })
            .collect();
        Ok::<_, AppError>(PreferencesBody {
            email: subscriber.email,
            action: format!("{}/preferences/{token}", state.settings.base_url),
            lists: shown,
            languages: languages(&subscriber.language),
            zones: chrono_tz::TZ_VARIANTS
                .iter()
                .map(|z| ZoneOption {
                    name: z.name(),
                    selected: subscriber.timezone.as_deref() == Some(z.name()),
                })
                .collect(),
            institution_zone,
            saved,
        })
    }
    .await;
    match result {
        Ok(body) => html(
            state,
            StatusCode::OK,
            "preferences",
            "Your subscriptions",
            body,
        ),
        Err(e) => e.into_response(),
    }
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
    let now = state.clock.now();
    let grant = match state
        .store
        .tokens()
        .find(&token_hash(&token), TokenPurpose::Preferences, now)
        .await
    {
        Ok(Some(g)) => g,
        Ok(None) => return unknown_link(&state),
        Err(e) => return AppError::from(e).into_response(),
    };
    let mut language = None;
    let mut timezone = None;
    let mut wanted_slugs = Vec::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        match k.as_ref() {
            "language" => language = Some(v.into_owned()),
            "timezone" => timezone = Some(v.into_owned()),
            "list" => wanted_slugs.push(v.into_owned()),
            _ => {}
        }
    }
    let result = async {
        let mut errors = FieldErrors::new();
        let language = match language.as_deref() {
            Some(l) => errors.check("language", Language::parse(l)),
            None => Some(Language::default()),
        };
        // Empty: the institution's zone.
        let timezone = match timezone.as_deref().map(str::trim) {
            None => Some(None),
            Some("") => Some(Some(None)),
            Some(t) => errors
                .check("timezone", TimeZone::parse(t))
                .map(|z| Some(Some(z))),
        };
        let lists = state.store.lists().all().await?;
        let memberships = state
            .store
            .lists()
            .memberships_of(grant.subscriber_id)
            .await?;
        let mut wanted = Vec::new();
        for slug in &wanted_slugs {
            // Private lists can be kept but not joined from here.
            match lists.iter().find(|l| &l.slug == slug) {
                Some(l)
                    if l.visibility == Visibility::Public
                        || memberships.iter().any(|m| m.list_id == l.id) =>
                {
                    wanted.push(l.id)
                }
                _ => errors.add("list", format!("there is no list {slug:?} to join")),
            }
        }
        let (language, timezone) = errors.finish(|| Some((language?, timezone?)))?;
        state
            .store
            .lists()
            .save_preferences(
                grant.subscriber_id,
                language.as_str(),
                timezone.as_ref().map(|z| z.as_ref().map(|z| z.name())),
                &wanted,
                now,
            )
            .await?;
        Ok::<_, AppError>(())
    }
    .await;
    match result {
        Ok(()) => preferences_page(&state, &token, true).await,
        Err(e) => e.into_response(),
    }
}
