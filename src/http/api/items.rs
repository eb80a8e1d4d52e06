//! `/api/v1/items`: write, read, list, publish and delete news items.

use crate::app::App;
use crate::domain::{
    EventInput, EventMode, FieldErrors, Item, ItemDraft, ItemInput, ItemStatus, Slug, VersionInput,
    parse_instant,
};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::{ApiJson, ApiQuery};
use crate::services::content::{self, ItemQuery};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_items, create_item))
        .routes(routes!(get_item, update_item, delete_item))
        .routes(routes!(publish_item))
        .routes(routes!(unpublish_item))
}

/// An item as written by a client (create, or full replacement on update).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemRequest {
    /// URL name; made from the title when left out.
    pub slug: Option<String>,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// Markdown. Rendered to HTML and sanitised when stored.
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub author: String,
    /// Organisational unit, e.g. "Asia-Africa Center".
    #[serde(default)]
    pub org_unit: String,
    /// BCP 47 tag; `en` when left out.
    pub language: Option<String>,
    /// Category slugs; at least one.
    pub categories: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// `draft` (the default) or `published`.
    pub status: Option<String>,
    /// RFC 3339; may be in the future, the item then appears at that time.
    pub published_at: Option<String>,
    pub event: Option<EventRequest>,
    /// The other language versions (the item's own fields are the original, in
    /// `language`); none in the original's language, no language twice. Left out: none.
    #[serde(default)]
    pub translations: Vec<VersionRequest>,
}

/// One language version of an item besides the original.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionRequest {
    /// BCP 47 tag, e.g. `zh`.
    pub language: String,
    pub title: String,
    #[serde(default)]
    pub summary: String,
    /// Markdown.
    #[serde(default)]
    pub body: String,
    /// For events: the venue in this language; left out: the original's.
    pub venue: Option<String>,
    /// For events: how to take part, in this language; left out: the mode's standard words.
    pub mode_text: Option<String>,
}

/// A language version as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionResponse {
    pub language: String,
    pub title: String,
    pub summary: String,
    /// The Markdown as written.
    pub body: String,
    /// The sanitised HTML that pages and feeds show.
    pub body_html: String,
    pub venue: Option<String>,
    pub mode_text: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventRequest {
    /// RFC 3339 with an offset, or a local date-time (`2023-11-09T14:00`) read in `timezone`.
    pub starts_at: String,
    pub ends_at: Option<String>,
    /// IANA time zone, e.g. `Asia/Shanghai`.
    pub timezone: String,
    pub venue: Option<String>,
    pub online_url: Option<String>,
    /// `in_person`, `online` or `hybrid`.
    pub mode: String,
    /// The original's own words on how to take part; left out: the mode's standard words.
    pub mode_text: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventResponse {
    /// RFC 3339 in the event's time zone.
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub timezone: String,
    pub venue: Option<String>,
    pub online_url: Option<String>,
    pub mode: EventMode,
    pub mode_text: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResponse {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub summary: String,
    /// The Markdown as written.
    pub body: String,
    /// The sanitised HTML that pages and feeds show.
    pub body_html: String,
    pub author: String,
    pub org_unit: String,
    pub language: String,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    pub status: ItemStatus,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub event: Option<EventResponse>,
    /// The other language versions, by language (the item's own fields are the original).
    pub translations: Vec<VersionResponse>,
    /// The public page (shown once the item is published and its time has come).
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ItemList {
    pub items: Vec<ItemResponse>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ItemListQuery {
    /// A category slug; items of its descendants are included.
    pub category: Option<String>,
    /// `draft` or `published`.
    pub status: Option<String>,
    /// Words the title, summary or slug must contain (any case), or the title or
    /// summary of one of the item's language versions; at most 200 characters.
    pub q: Option<String>,
    /// 1-based page number.
    pub page: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub per_page: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// RFC 3339; now when left out. A future time schedules the item.
    pub at: Option<String>,
}

fn to_response(item: Item, base_url: &str) -> ItemResponse {
    let event = item.event.map(|e| {
        let tz = e.timezone.tz();
        EventResponse {
            starts_at: e.starts_at.with_timezone(&tz).to_rfc3339(),
            ends_at: e.ends_at.map(|t| t.with_timezone(&tz).to_rfc3339()),
            timezone: e.timezone.name().to_owned(),
            venue: e.venue,
            online_url: e.online_url,
            mode: e.mode,
            mode_text: e.mode_text,
        }
    });
    let translations = item
        .translations
        .into_iter()
        .map(|v| VersionResponse {
            language: v.language,
            title: v.title,
            summary: v.summary,
            body: v.body_markdown,
            body_html: v.body_html,
            venue: v.venue,
            mode_text: v.mode_text,
        })
        .collect();
    ItemResponse {
        url: format!("{base_url}/items/{}", item.slug),
        id: item.id,
        slug: item.slug,
        title: item.title,
        summary: item.summary,
        body: item.body_markdown,
        body_html: item.body_html,
        author: item.author,
        org_unit: item.org_unit,
        language: item.language,
        categories: item.categories.into_iter().map(|c| c.slug).collect(),
        tags: item.tags,
        status: item.status,
        published_at: item.published_at,
        created_at: item.created_at,
        updated_at: item.updated_at,
        event,
        translations,
    }
}

impl From<ItemRequest> for ItemInput {
    fn from(r: ItemRequest) -> Self {
        Self {
            slug: r.slug,
            title: r.title,
            summary: r.summary,
            body: r.body,
            author: r.author,
            org_unit: r.org_unit,
            language: r.language,
            categories: r.categories,
            tags: r.tags,
            status: r.status,
            published_at: r.published_at,
            event: r.event.map(|e| EventInput {
                starts_at: e.starts_at,
                ends_at: e.ends_at,
                timezone: e.timezone,
                venue: e.venue,
                online_url: e.online_url,
                mode: e.mode,
                mode_text: e.mode_text,
            }),
            translations: r
                .translations
                .into_iter()
                .map(|v| VersionInput {
                    language: v.language,
                    title: v.title,
                    summary: v.summary,
                    body: v.body,
                    venue: v.venue,
                    mode_text: v.mode_text,
                })
                .collect(),
        }
    }
}

impl ItemRequest {
    /// Checks every field and reports all problems at once.
    pub fn into_draft(self) -> Result<ItemDraft, FieldErrors> {
        ItemInput::from(self).parse()
    }
}

pub(crate) fn parse_page(
    query_page: Option<&str>,
    per_page: Option<&str>,
    errors: &mut FieldErrors,
) -> (u32, u32) {
    let page = match query_page {
        None => 1,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if n >= 1 => n,
            _ => {
                errors.add("page", format!("must be a whole number from 1 (got {p:?})"));
                1
            }
        },
    };
    let per_page = match per_page {
        None => 50,
        Some(p) => match p.parse::<u32>() {
            Ok(n) if (1..=200).contains(&n) => n,
            _ => {
                errors.add(
                    "per_page",
                    format!("must be a whole number from 1 to 200 (got {p:?})"),
                );
                50
            }
        },
    };
    (page, per_page)
}

/// List items, drafts included, newest first.
#[utoipa::path(get, path = "/api/v1/items", tag = "items", params(ItemListQuery),
    security(("bearer" = [])),
    responses((status = 200, body = ItemList), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn list_items(
    _: AdminUser,
    State(app): State<App>,
    ApiQuery(q): ApiQuery<ItemListQuery>,
) -> ApiResult<Json<ItemList>> {
    let mut errors = FieldErrors::new();
    let (page, per_page) = parse_page(q.page.as_deref(), q.per_page.as_deref(), &mut errors);
    let status = q
        .status
        .as_deref()
        .and_then(|s| errors.check("status", ItemStatus::parse(s)));
    let category = q
        .category
        .as_deref()
        .and_then(|c| errors.check("category", Slug::parse(c)));
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 200) {
        errors.add("q", "must be at most 200 characters");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let query = ItemQuery {
        category,
        status,
        search: search.map(str::to_owned),
        page,
        per_page,
    };
    let found = content::list_items(&app, query).await?;
    let base = &app.settings.base_url;
    Ok(Json(ItemList {
        items: found
            .items
            .into_iter()
            .map(|i| to_response(i, base))
            .collect(),
        total: found.total,
        page,
        per_page,
    }))
}

/// Create an item.
#[utoipa::path(post, path = "/api/v1/items", tag = "items", request_body = ItemRequest,
    security(("bearer" = [])),
    responses((status = 201, body = ItemResponse), (status = 401, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn create_item(
    _: AdminUser,
    State(app): State<App>,
    ApiJson(request): ApiJson<ItemRequest>,
) -> ApiResult<(StatusCode, Json<ItemResponse>)> {
    let draft = request.into_draft()?;
    let item = content::create_item(&app, draft).await?;
    Ok((
        StatusCode::CREATED,
        Json(to_response(item, &app.settings.base_url)),
    ))
}

/// Read one item.
#[utoipa::path(get, path = "/api/v1/items/{id}", tag = "items", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_item(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
) -> ApiResult<Json<ItemResponse>> {
    let item = content::item(&app, parse_id(&id)?).await?;
    Ok(Json(to_response(item, &app.settings.base_url)))
}

/// Replace an item.
#[utoipa::path(put, path = "/api/v1/items/{id}", tag = "items", params(("id" = i64, Path)),
    request_body = ItemRequest, security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn update_item(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ItemRequest>,
) -> ApiResult<Json<ItemResponse>> {
    let id = parse_id(&id)?;
    let draft = request.into_draft()?;
    let item = content::update_item(&app, id, draft).await?;
    Ok(Json(to_response(item, &app.settings.base_url)))
}

/// Delete an item.
#[utoipa::path(delete, path = "/api/v1/items/{id}", tag = "items", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn delete_item(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    content::delete_item(&app, parse_id(&id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Publish an item now or at a given time.
#[utoipa::path(post, path = "/api/v1/items/{id}/publish", tag = "items", params(("id" = i64, Path)),
    request_body(content = PublishRequest, description = "optional"), security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn publish_item(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ItemResponse>> {
    let id = parse_id(&id)?;
    let request: PublishRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PublishRequest::default()
    } else {
        crate::http::extract::parse_json(&body)?
    };
    let mut errors = FieldErrors::new();
    let at = request
        .at
        .as_deref()
        .and_then(|a| errors.check("at", parse_instant(a)));
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let item = content::publish_item(&app, id, at).await?;
    Ok(Json(to_response(item, &app.settings.base_url)))
}

/// Take an item back to draft; it leaves every feed and page.
#[utoipa::path(post, path = "/api/v1/items/{id}/unpublish", tag = "items", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn unpublish_item(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
) -> ApiResult<Json<ItemResponse>> {
    let item = content::unpublish_item(&app, parse_id(&id)?).await?;
    Ok(Json(to_response(item, &app.settings.base_url)))
}

pub(crate) fn parse_id(s: &str) -> Result<i64, AppError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::NotFound(format!("item {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_checked_by_the_domain_rules() {
        let request: ItemRequest = serde_json::from_value(serde_json::json!({
            "title": "x", "categories": ["events"],
            "event": {"starts_at": "2023-11-09T14:00", "ends_at": "2023-11-09T13:00",
                      "timezone": "Asia/Shanghai", "mode": "hybrid"}
        }))
        .unwrap();
        let errors = request.into_draft().unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event.ends_at", "event.online_url", "event.venue"]);
    }
}
