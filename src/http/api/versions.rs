//! `/api/v1/items/{id}/versions`: an item's language versions, each at its own
//! address. The original (the item's own fields) is one of them, listed first and
//! marked `original: true`; it can be replaced or handed to another version
//! (`"original": true`), never removed. Every write is a write of the whole item
//! (`crate::services::content::put_item_version`), so feeds, pages and `updated_at`
//! follow.

use super::items::parse_id;
use crate::app::App;
use crate::domain::{Item, VersionPut, VersionWrite, parse_version_language};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::ApiJson;
use crate::services::content;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_versions))
        .routes(routes!(get_version, put_version, delete_version))
}

/// One language version of an item.
#[derive(Debug, Serialize, ToSchema)]
pub struct LanguageVersion {
    /// BCP 47 tag.
    pub language: String,
    /// The original: the item's own fields. An item has exactly one.
    pub original: bool,
    pub title: String,
    pub summary: String,
    /// The Markdown as written.
    pub body: String,
    /// The sanitised HTML that pages and feeds show.
    pub body_html: String,
    /// For events: the original's is the event's venue; another version's `null`
    /// shows the original's.
    pub venue: Option<String>,
    /// For events: how to take part, in this language; `null`: the mode's standard
    /// words.
    pub mode_text: Option<String>,
}

/// Every language version of an item, the original first.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionList {
    pub item_id: i64,
    pub versions: Vec<LanguageVersion>,
}

/// A language version as written to its own address (the language is the address's).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionWriteRequest {
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// Markdown.
    #[serde(default)]
    pub body: String,
    /// For events only. The original's is the event's venue (left out: none, which
    /// in-person and hybrid events refuse); another version's left out: the
    /// original's.
    pub venue: Option<String>,
    /// For events only: how to take part, in this language; left out: the mode's
    /// standard words.
    pub mode_text: Option<String>,
    /// `true`: this version becomes the original, and the original until now one of
    /// the other versions. `false` is refused for the original (an item always has
    /// one). Left out: as it is; a new version is not the original.
    pub original: Option<bool>,
}

impl From<VersionWriteRequest> for VersionWrite {
    fn from(r: VersionWriteRequest) -> Self {
        Self {
            title: r.title,
            summary: r.summary,
            body: r.body,
            venue: r.venue,
            mode_text: r.mode_text,
            original: r.original,
        }
    }
}

/// Every version of `item`, the original first.
pub fn versions_of(item: &Item) -> Vec<LanguageVersion> {
    let event = item.event.as_ref();
    let original = LanguageVersion {
        language: item.language.clone(),
        original: true,
        title: item.title.clone(),
        summary: item.summary.clone(),
        body: item.body_markdown.clone(),
        body_html: item.body_html.clone(),
        venue: event.and_then(|e| e.venue.clone()),
        mode_text: event.and_then(|e| e.mode_text.clone()),
    };
    std::iter::once(original)
        .chain(item.translations.iter().map(|v| LanguageVersion {
            language: v.language.clone(),
            original: false,
            title: v.title.clone(),
            summary: v.summary.clone(),
            body: v.body_markdown.clone(),
            body_html: v.body_html.clone(),
            venue: v.venue.clone(),
            mode_text: v.mode_text.clone(),
        }))
        .collect()
}

/// The version of `item` in `language` (case aside), or 404.
fn version_of(item: &Item, language: &str) -> Result<LanguageVersion, AppError> {
    versions_of(item)
        .into_iter()
        .find(|v| v.language.eq_ignore_ascii_case(language))
        .ok_or_else(|| AppError::NotFound(format!("version in {language} of item {}", item.id)))
}

/// List an item's language versions, the original first.
#[utoipa::path(get, path = "/api/v1/items/{id}/versions", tag = "items",
    params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = VersionList), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn list_versions(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
) -> ApiResult<Json<VersionList>> {
    let item = content::item(&app, parse_id(&id)?).await?;
    Ok(Json(VersionList {
        item_id: item.id,
        versions: versions_of(&item),
    }))
}

/// Read one language version of an item.
#[utoipa::path(get, path = "/api/v1/items/{id}/versions/{language}", tag = "items",
    params(("id" = i64, Path), ("language" = String, Path, description = "BCP 47 tag, e.g. `zh`")),
    security(("bearer" = [])),
    responses((status = 200, body = LanguageVersion), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "no such item, or it has no version in that language"),
        (status = 422, body = Problem, description = "`language` is not a language tag")))]
async fn get_version(
    _: AdminUser,
    State(app): State<App>,
    Path((id, language)): Path<(String, String)>,
) -> ApiResult<Json<LanguageVersion>> {
    let id = parse_id(&id)?;
    let language = parse_version_language(&language)?;
    let item = content::item(&app, id).await?;
    Ok(Json(version_of(&item, language.as_str())?))
}

/// Create or replace one language version of an item.
///
/// The original's language replaces the original's words (its venue and mode text are
/// the event's); `"original": true` makes this version the original and the original
/// until now one of the other versions. The item's `updated_at`, feeds and pages move
/// as for any item write.
#[utoipa::path(put, path = "/api/v1/items/{id}/versions/{language}", tag = "items",
    params(("id" = i64, Path), ("language" = String, Path, description = "BCP 47 tag, e.g. `zh`")),
    request_body = VersionWriteRequest, security(("bearer" = [])),
    responses((status = 200, body = LanguageVersion, description = "replaced"),
        (status = 201, body = LanguageVersion, description = "created"),
        (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem, description = "the item kept changing while this was written; try again"),
        (status = 413, body = Problem),
        (status = 422, body = Problem, description = "a field is invalid, `original: false` for the original, or the item has the most versions it may")))]
async fn put_version(
    _: AdminUser,
    State(app): State<App>,
    Path((id, language)): Path<(String, String)>,
    ApiJson(request): ApiJson<VersionWriteRequest>,
) -> ApiResult<Response> {
    let id = parse_id(&id)?;
    let language = parse_version_language(&language)?;
    let (item, put) = content::put_item_version(&app, id, &language, request.into()).await?;
    let version = version_of(&item, language.as_str())?;
    Ok(match put {
        VersionPut::Replaced => Json(version).into_response(),
        VersionPut::Created => {
            let location = format!("/api/v1/items/{id}/versions/{}", version.language);
            let mut response = (StatusCode::CREATED, Json(version)).into_response();
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            response
        }
    })
}

/// Remove one language version of an item; the original cannot be removed.
#[utoipa::path(delete, path = "/api/v1/items/{id}/versions/{language}", tag = "items",
    params(("id" = i64, Path), ("language" = String, Path, description = "BCP 47 tag, e.g. `zh`")),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem),
        (status = 404, body = Problem, description = "no such item, or it has no version in that language"),
        (status = 409, body = Problem, description = "the item kept changing while this was written; try again"),
        (status = 422, body = Problem, description = "`language` is the original's (an item always has its original), or not a language tag")))]
async fn delete_version(
    _: AdminUser,
    State(app): State<App>,
    Path((id, language)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let language = parse_version_language(&language)?;
    content::delete_item_version(&app, id, &language).await?;
    Ok(StatusCode::NO_CONTENT)
}
