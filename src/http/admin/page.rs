//! What every admin page shares: the layout's values, form bodies, errors as pages.

use super::session::{Flash, Session};
use crate::domain::{FieldError, FieldErrors};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::services::{ServiceError, ServiceResult};
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

/// The values of a submitted form (`application/x-www-form-urlencoded`), in order;
/// a name may repeat (check boxes).
#[derive(Debug, Default, Clone)]
pub struct FormData(Vec<(String, String)>);

impl FormData {
    pub fn parse(bytes: &[u8]) -> Self {
        Self(url::form_urlencoded::parse(bytes).into_owned().collect())
    }

    pub fn parse_str(s: &str) -> Self {
        Self::parse(s.as_bytes())
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.get_opt(name).unwrap_or("")
    }

    pub fn get_opt(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` when it is there and not blank.
    pub fn non_blank(&self, name: &str) -> Option<&str> {
        self.get_opt(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn has(&self, name: &str) -> bool {
        self.get_opt(name).is_some()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = Response;

    /// The session check parsed the body already for its CSRF token and left the
    /// values in the request's extensions; only where no check ran (the sign-in form)
    /// is the body read here.
    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(parsed) = req.extensions_mut().remove::<FormData>() {
            return Ok(parsed);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self::parse(&bytes))
    }
}

/// An error shown as an admin page.
#[derive(Debug)]
pub struct PageError(pub AppError);

pub type PageResult = Result<Response, PageError>;

impl From<AppError> for PageError {
    fn from(e: AppError) -> Self {
        Self(e)
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self(e.into())
    }
}

impl From<ServiceError> for PageError {
    fn from(e: ServiceError) -> Self {
        Self(e.into())
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        Self(AppError::Internal(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let message = match self.0 {
            AppError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error on an admin page");
                "Something went wrong on the server; the log has the details.".to_owned()
            }
            AppError::NotFound(what) => format!("There is no {what}."),
            other => other.to_string(),
        };
        error_response(status, &message)
    }
}

/// A small page of its own for errors met before or outside the layout (no session,
/// CSRF refused, forbidden): it names the problem and links back.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · newsdesk admin</title><link rel=\"stylesheet\" href=\"/admin/static/admin.css\"></head>\
         <body><main class=\"narrow\" id=\"main\"><h1>{title}</h1><p class=\"flash error\" role=\"alert\">{}</p>\
         <p><a href=\"/admin\">Back to the dashboard</a></p></main></body></html>",
        escape(message)
    );
    (status, Html(body)).into_response()
}

pub fn escape(s: &str) -> String {
    handlebars::html_escape(s)
}

#[derive(Serialize)]
struct Layout<'a, T: Serialize> {
    site_name: &'a str,
    page_title: String,
    section: &'a str,
    user_name: &'a str,
    role: &'static str,
    is_admin: bool,
    csrf: &'a str,
    flash: Option<&'a Flash>,
    #[serde(flatten)]
    body: &'a T,
}

/// A page in the admin layout.
pub fn render<T: Serialize>(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    section: &str,
    template: &str,
    title: &str,
    body: &T,
) -> PageResult {
    let layout = Layout {
        site_name: &state.settings.site_name,
        page_title: format!("{title} · {} admin", state.settings.site_name),
        section,
        user_name: &session.name,
        role: session.role.as_str(),
        is_admin: session.is_admin(),
        csrf: &session.csrf,
        flash: session.flash.as_ref(),
        body,
    };
    let html = state.templates.render(template, &layout)?;
    Ok((status, Html(html)).into_response())
}

/// A page without the signed-in layout (the sign-in form).
pub fn bare<T: Serialize>(
    state: &AppState,
    status: StatusCode,
    template: &str,
    title: &str,
    body: &T,
) -> Response {
    #[derive(Serialize)]
    struct Bare<'a, T: Serialize> {
        site_name: &'a str,
        page_title: String,
        #[serde(flatten)]
        body: &'a T,
    }
    let page = Bare {
        site_name: &state.settings.site_name,
        page_title: format!("{title} · {} admin", state.settings.site_name),
        body,
    };
    match state.templates.render(template, &page) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// Field errors as the forms show them: a list, and a message per field under each
/// input. `by_field` holds every field of the form (null when it is fine), so the
/// strict templates can ask for any of them; names are made template-safe
/// (`event.starts_at` → `event_starts_at`).
#[derive(Debug, Default, Serialize)]
pub struct FormErrors {
    pub list: Vec<FieldError>,
    pub by_field: std::collections::BTreeMap<String, Option<String>>,
}

fn key(field: &str) -> String {
    field
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect::<String>()
        .trim_end_matches('_')
        .to_owned()
}

impl FormErrors {
    /// No errors, for a form with these fields.
    pub fn none(fields: &[&str]) -> Self {
        Self {
            list: Vec::new(),
            by_field: fields.iter().map(|f| (key(f), None)).collect(),
        }
    }

    pub fn new(errors: FieldErrors, fields: &[&str]) -> Self {
        let mut out = Self::none(fields);
        for err in &errors.0 {
            // `categories[2]` is shown under `categories`.
            let base = err.field.split('[').next().unwrap_or(&err.field);
            let slot = out.by_field.entry(key(base)).or_insert(None);
            match slot {
                Some(m) => {
                    m.push_str("; ");
                    m.push_str(&err.message);
                }
                None => *slot = Some(err.message.clone()),
            }
        }
        out.list = errors.0;
        out
    }

    pub fn one(field: &str, message: impl Into<String>, fields: &[&str]) -> Self {
        let mut e = FieldErrors::new();
        e.add(field, message);
        Self::new(e, fields)
    }
}

/// A service's answer to a submitted form: the value, or the errors the form shows
/// again (invalid fields, a conflict); anything else is an error page. The one shape
/// of every admin form handler:
///
/// ```ignore
/// match page::submitted(services::content::create_category(&app, draft).await, FIELDS)? {
///     Ok(category) => /* flash and redirect */,
///     Err(errors) => /* the form again, 422, with `errors` */,
/// }
/// ```
pub fn submitted<T>(
    result: ServiceResult<T>,
    fields: &[&str],
) -> Result<Result<T, FormErrors>, PageError> {
    match result {
        Ok(value) => Ok(Ok(value)),
        Err(ServiceError::Invalid(errors)) => Ok(Err(FormErrors::new(errors, fields))),
        Err(ServiceError::Conflict { field, message }) => {
            Ok(Err(FormErrors::one(&field, message, fields)))
        }
        Err(other) => Err(other.into()),
    }
}

/// `"5"` → 5; anything else is "not found" (ids in addresses).
pub fn parse_id(what: &str, s: &str) -> Result<i64, PageError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| PageError(AppError::NotFound(format!("{what} {s:?}"))))
}

/// Dates as admins read them: `Thu 9 Nov 2023 14:00 UTC`.
pub fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%a %-d %b %Y %H:%M UTC").to_string()
}

pub fn when_opt(t: Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(when).unwrap_or_default()
}

/// One option of a `<select>` (or one check box).
#[derive(Debug, Serialize)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Options from (value, label) pairs, `selected` marked.
pub fn choices(options: impl IntoIterator<Item = (String, String)>, selected: &str) -> Vec<Choice> {
    options
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == selected,
            value,
            label,
        })
        .collect()
}

/// Every IANA time zone, for the zone pickers.
pub fn zone_choices(selected: &str) -> Vec<Choice> {
    choices(
        chrono_tz::TZ_VARIANTS
            .iter()
            .map(|z| (z.name().to_owned(), z.name().to_owned())),
        selected,
    )
}

/// One per-language name field of the list and category forms (`names.zh`).
#[derive(Debug, Clone, Serialize)]
pub struct NameField {
    /// The input's name: `names.zh`.
    pub field: String,
    pub language: String,
    /// "Chinese (中文)".
    pub label: String,
    pub value: String,
    pub error: Option<String>,
}

/// The languages a name form asks a name in: every site language but the default one
/// (the default name is in it), then any other language a name is stored or was posted
/// in, so saving the form keeps it.
fn name_languages(state: &AppState, known: &[String]) -> Vec<String> {
    let site = &state.settings.languages;
    let default = site.default_language().as_str();
    let mut out: Vec<String> = site
        .all()
        .iter()
        .map(|l| l.as_str().to_owned())
        .filter(|l| l != default)
        .collect();
    for tag in known {
        if !out.iter().any(|l| l.eq_ignore_ascii_case(tag)) {
            out.push(tag.clone());
        }
    }
    out
}

/// The names posted in a form's `names.TAG` fields, blank ones included (a blank name
/// is no name in that language; the domain's parsers drop it).
pub fn posted_names(f: &FormData) -> std::collections::BTreeMap<String, String> {
    f.0.iter()
        .filter_map(|(k, v)| k.strip_prefix("names.").map(|t| (t.to_owned(), v.clone())))
        .collect()
}

/// The name fields of a form showing `values`, with the errors on them.
pub fn name_fields(
    state: &AppState,
    values: &std::collections::BTreeMap<String, String>,
    errors: &FormErrors,
) -> Vec<NameField> {
    let known: Vec<String> = values.keys().cloned().collect();
    // The words in use: a language the site added names itself there.
    let templates = state.templates.current();
    let words = templates.page_words();
    let english = words.get("en");
    name_languages(state, &known)
        .into_iter()
        .map(|language| {
            let field = format!("names.{language}");
            let error = errors
                .list
                .iter()
                .filter(|e| e.field == field)
                .map(|e| e.message.clone())
                .reduce(|a, b| format!("{a}; {b}"));
            let value = values
                .iter()
                .find(|(t, _)| t.eq_ignore_ascii_case(&language))
                .map(|(_, n)| n.clone())
                .unwrap_or_default();
            let (name, own) = (english.language_name(&language), words.endonym(&language));
            let label = if name == own {
                name
            } else {
                format!("{name} ({own})")
            };
            NameField {
                field,
                language,
                label,
                value,
                error,
            }
        })
        .collect()
}
