//! The public side of lists: subscribe, confirm, one-click unsubscribe, preferences.
//!
//! Each page is in each site language under `/{lang}/` (`/zh/subscribe`,
//! `/zh/preferences/{token}`, ...), its words from the page label files
//! (`web/labels.LANG.json`, overridable); the unprefixed addresses (in mail sent before,
//! and the site's default) are in the site's default language. A subscription made from
//! `/{lang}/subscribe` is in that language unless the form picks another, and its
//! confirmation mail is then in it, linking to the pages under `/{lang}/` (unprefixed
//! for the default language). Form errors name the field in the page's words; their
//! message is the service's own (English) on an English page, the label file's
//! `error_FIELD` on another.

use super::pages::PrefixLanguage;
use super::views::{Page, PageLang};
use crate::domain::{Language, MailingList, MembershipStatus, primary_language};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::i18n::Words;
use crate::services::subscriptions::public::{self, PreferencesInput, SubscribeInput};
use crate::templates::Templates;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;

/// The languages mail is built in besides the site's own (`email/confirm.zh.*`, the
/// digest labels): offered even where the site's pages are not read in them.
const MAIL_LANGUAGES: [&str; 2] = ["en", "zh"];

/// The `{token}` of a route, with or without a `{lang}` before it.
#[derive(Deserialize)]
pub struct TokenPath {
    token: String,
}

#[derive(Serialize)]
struct LanguageOption {
    code: String,
    label: String,
    selected: bool,
}

/// The languages a reader may choose for their mail: the site's, then the built-in mail
/// languages it is not read in, each by its own name. `selected` is the one matching
/// exactly, else by primary language (an imported `zh-CN` shows as `zh`), so saving the
/// form keeps the reader's language.
fn languages(state: &AppState, lang: PageLang<'_>, selected: &str) -> Vec<LanguageOption> {
    let mut codes: Vec<String> = state
        .settings
        .languages
        .all()
        .iter()
        .map(|l| l.as_str().to_owned())
        .collect();
    for built in MAIL_LANGUAGES {
        if !codes
            .iter()
            .any(|c| primary_language(c).eq_ignore_ascii_case(built))
        {
            codes.push(built.to_owned());
        }
    }
    let exact = codes.iter().any(|c| c.eq_ignore_ascii_case(selected));
    let mut chosen = false;
    codes
        .into_iter()
        .map(|code| {
            let matches = if exact {
                code.eq_ignore_ascii_case(selected)
            } else {
                primary_language(&code).eq_ignore_ascii_case(primary_language(selected))
            };
            let selected = matches && !chosen;
            chosen |= selected;
            LanguageOption {
                label: lang.templates.page_words().endonym(&code),
                code,
                selected,
            }
        })
        .collect()
}

/// The page's language: `/{lang}/...`, or the site's default at the unprefixed address.
fn page_lang<'a>(
    state: &'a AppState,
    language: Option<&'a Language>,
    templates: &'a Templates,
) -> PageLang<'a> {
    match language {
        Some(l) => PageLang::of(l, templates),
        None => PageLang::default_for(&state.settings, templates),
    }
}

/// A label with one placeholder split around it, for a value the template sets apart
/// (`Mail goes to <strong>{email}</strong>.`); the other placeholders filled.
#[derive(Serialize)]
struct Around {
    before: String,
    after: String,
}

fn around(w: &Words, key: &str, placeholder: &str, values: &[(&str, &str)]) -> Around {
    let text = w.fill(key, values);
    let mark = format!("{{{placeholder}}}");
    match text.split_once(&mark) {
        Some((before, after)) => Around {
            before: before.to_owned(),
            after: after.to_owned(),
        },
        None => Around {
            before: text,
            after: String::new(),
        },
    }
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

/// A form error as the page shows it: the field named in the page's words.
#[derive(Serialize)]
struct ErrorView {
    /// As named in the request (`email`).
    field: String,
    label: String,
    message: String,
}

#[derive(Serialize)]
struct FormBody {
    intro: String,
    action: String,
    form: SubscribeForm,
    lists: Vec<ListOption>,
    languages: Vec<LanguageOption>,
    errors: Vec<ErrorView>,
}

async fn public_lists(state: &AppState) -> Result<Vec<MailingList>, AppError> {
    Ok(public::public_lists(state.app()).await?)
}

/// A page in `lang`; with `path` (its address without a language), linked to its
/// versions in every site language.
fn html(
    state: &AppState,
    lang: PageLang,
    status: StatusCode,
    template: &str,
    (title, path): (&str, Option<&str>),
    body: impl Serialize,
) -> Response {
    let page = Page::at(&state.settings, lang, path, title, Vec::new(), body);
    match lang.templates.render(template, &page) {
        Ok(html) => {
            let mut response = (status, Html(html)).into_response();
            if let Ok(v) = HeaderValue::from_str(lang.chrome) {
                response.headers_mut().insert(header::CONTENT_LANGUAGE, v);
            }
            response
        }
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
    lang: PageLang,
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
    html(state, lang, status, "message", (heading, None), body)
}

/// The plain 404 every unknown, used or expired token gets: it says nothing of why.
fn unknown_link(state: &AppState, lang: PageLang) -> Response {
    let w = lang.words;
    message(
        state,
        lang,
        StatusCode::NOT_FOUND,
        w.get("not_found"),
        &[w.get("invalid_link")],
        None,
    )
}

#[derive(Debug, Deserialize)]
pub struct FormQuery {
    list: Option<String>,
}

/// `GET /subscribe` and `/{lang}/subscribe`.
pub async fn form(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Query(q): Query<FormQuery>,
) -> Response {
    form_in(&state, language.as_ref(), q).await
}

async fn form_in(state: &AppState, language: Option<&Language>, q: FormQuery) -> Response {
    let templates = state.templates.current();
    let lang = page_lang(state, language, &templates);
    let lists = match public_lists(state).await {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let chosen = q
        .list
        .or_else(|| (lists.len() == 1).then(|| lists[0].slug.clone()));
    render_form(
        state,
        lang,
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
    lang: PageLang,
    status: StatusCode,
    form: SubscribeForm,
    lists: &[MailingList],
    errors: Vec<crate::domain::FieldError>,
) -> Response {
    let w = lang.words;
    let language = form
        .language
        .clone()
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| lang.chrome.to_owned()); // the page's own language first
    // The service's messages are English: other languages say what the field needs.
    let english = primary_language(lang.chrome).eq_ignore_ascii_case("en");
    let errors = errors
        .into_iter()
        .map(|e| {
            let own = |prefix: &str| {
                let key = format!("{prefix}_{}", e.field);
                let said = w.get(&key);
                (said != key).then(|| said.to_owned())
            };
            ErrorView {
                label: own("field").unwrap_or_else(|| e.field.clone()),
                message: match own("error") {
                    Some(m) if !english => m,
                    _ => e.message.clone(),
                },
                field: e.field,
            }
        })
        .collect();
    let body = FormBody {
        intro: w.fill("subscribe_intro", &[("site", &state.settings.site_name)]),
        action: format!("{}{}", state.settings.base_url, lang.path("/subscribe")),
        lists: lists
            .iter()
            .map(|l| ListOption {
                selected: form.list.as_deref() == Some(l.slug.as_str()),
                slug: l.slug.clone(),
                name: l.name_in(lang.chrome).to_owned(),
                description: l.description.clone(),
            })
            .collect(),
        languages: languages(state, lang, &language),
        errors,
        form,
    };
    let title = w.get("subscribe");
    html(
        state,
        lang,
        status,
        "subscribe",
        (title, Some("/subscribe")),
        body,
    )
}

/// `POST /subscribe`, from the form or as JSON. The answer is the same whether the
/// address was new, pending or confirmed already. `POST /{lang}/subscribe` makes a
/// subscription in `lang` unless the form names another.
pub async fn subscribe(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    subscribe_in(&state, language.as_ref(), peer, &headers, &body).await
}

async fn subscribe_in(
    state: &AppState,
    language: Option<&Language>,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let templates = state.templates.current();
    let lang = page_lang(state, language, &templates);
    let w = lang.words;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let client = crate::http::client_ip(&state.settings, peer, headers);
    let allowed = match public::subscribe_allowed(state.app(), &client.to_string()).await {
        Ok(a) => a,
        Err(e) => return AppError::from(e).into_response(),
    };
    if !allowed {
        let mut response = if json {
            AppError::TooManyRequests.into_response()
        } else {
            message(
                state,
                lang,
                StatusCode::TOO_MANY_REQUESTS,
                w.get("too_many_requests"),
                &[w.get("try_later")],
                None,
            )
        };
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("3600"));
        return response;
    }
    let form: SubscribeForm = if json {
        match crate::http::extract::parse_json(body) {
            Ok(f) => f,
            Err(e) => return e.into_response(),
        }
    } else {
        match serde_urlencoded::from_bytes(body) {
            Ok(f) => f,
            Err(e) => {
                return AppError::BadRequest(format!("the form could not be read: {e}"))
                    .into_response();
            }
        }
    };
    // From `/{lang}/subscribe`, the mail is in the page's language unless chosen.
    let page_language = language.map(|_| lang.chrome);
    let input = SubscribeInput {
        email: &form.email,
        name: &form.name,
        list: form.list.as_deref(),
        language: form
            .language
            .as_deref()
            .filter(|l| !l.is_empty())
            .or(page_language),
    };
    match public::subscribe(state.app(), &input, &client.to_string()).await {
        Ok(()) => {}
        Err(crate::services::ServiceError::Invalid(errors)) if !json => {
            let lists = match public_lists(state).await {
                Ok(l) => l,
                Err(e) => return e.into_response(),
            };
            return render_form(
                state,
                lang,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                &lists,
                errors.0,
            );
        }
        Err(e) => return AppError::from(e).into_response(),
    }
    if json {
        // In the language the subscription asked for, when the site is read in it; else
        // the page's (`/{lang}/subscribe`) or the site's default.
        let chosen = form
            .language
            .as_deref()
            .and_then(|asked| state.settings.languages.for_content(asked));
        let words = match chosen {
            Some(l) => PageLang::of(l, &templates).words,
            None => w,
        };
        let text = words.get("check_inbox_text");
        (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({"status": "accepted", "message": text})),
        )
            .into_response()
    } else {
        message(
            state,
            lang,
            StatusCode::OK,
            w.get("check_inbox"),
            &[w.get("check_inbox_text")],
            None,
        )
    }
}

/// `GET /subscribe/confirm/{token}`: the link in the confirmation mail.
pub async fn confirm(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Path(TokenPath { token }): Path<TokenPath>,
) -> Response {
    confirm_in(&state, language.as_ref(), &token).await
}

async fn confirm_in(state: &AppState, language: Option<&Language>, token: &str) -> Response {
    let templates = state.templates.current();
    let lang = page_lang(state, language, &templates);
    let w = lang.words;
    let confirmed = match public::confirm(state.app(), token).await {
        Ok(Some(c)) => c,
        Ok(None) => return unknown_link(state, lang),
        Err(e) => return AppError::from(e).into_response(),
    };
    let preferences = confirmed.preferences_token.map(|t| {
        (
            format!(
                "{}{}",
                state.settings.base_url,
                lang.path(&format!("/preferences/{t}"))
            ),
            w.get("manage_subscriptions"),
        )
    });
    let line = match &confirmed.list {
        Some(list) => w.fill("confirmed_list", &[("list", list.name_in(lang.chrome))]),
        None => w.get("confirmed").to_owned(),
    };
    message(
        state,
        lang,
        StatusCode::OK,
        w.get("confirmed_heading"),
        &[&line],
        preferences,
    )
}

/// `GET /unsubscribe/{token}`: a page with one button.
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Path(TokenPath { token }): Path<TokenPath>,
) -> Response {
    unsubscribe_page_in(&state, language.as_ref(), &token).await
}

async fn unsubscribe_page_in(
    state: &AppState,
    language: Option<&Language>,
    token: &str,
) -> Response {
    let templates = state.templates.current();
    let lang = page_lang(state, language, &templates);
    let w = lang.words;
    let target = match public::unsubscribe_target(state.app(), token).await {
        Ok(Some(t)) => t,
        Ok(None) => return unknown_link(state, lang),
        Err(e) => return AppError::from(e).into_response(),
    };
    #[derive(Serialize)]
    struct Body {
        list_name: String,
        email: String,
        question: Around,
        action: String,
    }
    let email = target.email.unwrap_or_default();
    let path = format!("/unsubscribe/{token}");
    let body = Body {
        list_name: target.list.as_ref().map_or_else(
            || w.get("any_mail").to_owned(),
            |l| l.name_in(lang.chrome).to_owned(),
        ),
        question: around(w, "unsubscribe_question", "list", &[("email", &email)]),
        email,
        action: format!("{}{}", state.settings.base_url, lang.path(&path)),
    };
    let title = w.get("unsubscribe");
    html(
        state,
        lang,
        StatusCode::OK,
        "unsubscribe",
        (title, Some(&path)),
        body,
    )
}

/// `POST /unsubscribe/{token}` with `List-Unsubscribe=One-Click` (RFC 8058): done at
/// once, no login, cookie, redirect or second step. Repeating it is harmless.
pub async fn unsubscribe(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Path(TokenPath { token }): Path<TokenPath>,
    body: Bytes,
) -> Response {
    unsubscribe_in(&state, language.as_ref(), &token, &body).await
}

async fn unsubscribe_in(
    state: &AppState,
    language: Option<&Language>,
    token: &str,
    body: &Bytes,
) -> Response {
    let one_click =
        url::form_urlencoded::parse(body).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    if !one_click {
        return AppError::BadRequest("the body must be List-Unsubscribe=One-Click".into())
            .into_response();
    }
    let templates = state.templates.current();
    let lang = page_lang(state, language, &templates);
    let w = lang.words;
    match public::unsubscribe(state.app(), token).await {
        Ok(true) => message(
            state,
            lang,
            StatusCode::OK,
            w.get("unsubscribed_heading"),
            &[w.get("unsubscribed_text")],
            None,
        ),
        Ok(false) => unknown_link(state, lang),
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
    mail_to: Around,
    action: String,
    lists: Vec<PreferenceList>,
    languages: Vec<LanguageOption>,
    zones: Vec<ZoneOption>,
    /// Their partner's zone, used when they have none of their own.
    institution_zone: Option<String>,
    /// The first choice of zones, in words: the institution's or the list's.
    own_zone: String,
    saved: bool,
}

#[derive(Serialize)]
struct ZoneOption {
    name: &'static str,
    selected: bool,
}

async fn preferences_page(
    state: &AppState,
    lang: PageLang<'_>,
    token: &str,
    saved: bool,
) -> Response {
    let w = lang.words;
    let found = match public::preferences(state.app(), token).await {
        Ok(Some(p)) => p,
        Ok(None) => return unknown_link(state, lang),
        Err(e) => return AppError::from(e).into_response(),
    };
    let subscriber = found.subscriber;
    let path = format!("/preferences/{token}");
    let body = PreferencesBody {
        mail_to: around(w, "mail_goes_to", "email", &[]),
        email: subscriber.email,
        action: format!("{}{}", state.settings.base_url, lang.path(&path)),
        lists: found
            .lists
            .into_iter()
            .map(|(l, status)| PreferenceList {
                checked: status == Some(MembershipStatus::Confirmed),
                pending: status == Some(MembershipStatus::Pending),
                name: l.name_in(lang.chrome).to_owned(),
                slug: l.slug,
                description: l.description,
            })
            .collect(),
        languages: languages(state, lang, &subscriber.language),
        zones: chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| ZoneOption {
                name: z.name(),
                selected: subscriber.timezone.as_deref() == Some(z.name()),
            })
            .collect(),
        own_zone: match &found.institution_zone {
            Some(zone) => w.fill(
                "zone_institution",
                &[("zone", &crate::i18n::zone_name(zone, lang.chrome))],
            ),
            None => w.get("zone_list").to_owned(),
        },
        institution_zone: found.institution_zone,
        saved,
    };
    let title = w.get("preferences_heading");
    html(
        state,
        lang,
        StatusCode::OK,
        "preferences",
        (title, Some(&path)),
        body,
    )
}

pub async fn preferences(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Path(TokenPath { token }): Path<TokenPath>,
) -> Response {
    let templates = state.templates.current();
    let lang = page_lang(&state, language.as_ref(), &templates);
    preferences_page(&state, lang, &token, false).await
}

/// Saves the preference form: `language` and one `list` field per list to be on.
pub async fn save_preferences(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Path(TokenPath { token }): Path<TokenPath>,
    body: Bytes,
) -> Response {
    save_preferences_in(&state, language.as_ref(), &token, &body).await
}

async fn save_preferences_in(
    state: &AppState,
    language: Option<&Language>,
    token: &str,
    body: &Bytes,
) -> Response {
    let templates = state.templates.current();
    let lang = page_lang(state, language, &templates);
    let mut input = PreferencesInput::default();
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "language" => input.language = Some(v.into_owned()),
            "timezone" => input.timezone = Some(v.into_owned()),
            "list" => input.lists.push(v.into_owned()),
            _ => {}
        }
    }
    match public::save_preferences(state.app(), token, &input).await {
        Ok(true) => preferences_page(state, lang, token, true).await,
        Ok(false) => unknown_link(state, lang),
        Err(e) => AppError::from(e).into_response(),
    }
}
