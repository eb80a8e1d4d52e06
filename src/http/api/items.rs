//! `/api/v1/items`: write, read, list, publish and delete news items.

use crate::content::render_markdown;
use crate::domain::{
    Event, EventMode, FieldErrors, Item, ItemDraft, ItemStatus, Language, Slug, Text, TimeZone,
    WebUrl,
};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::ApiJson;
use crate::store::ItemFilter;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
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
pub struct ItemListQuery {
    /// A category slug; items of its descendants are included.
    pub category: Option<String>,
    /// `draft` or `published`.
    pub status: Option<String>,
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
        }
    });
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
    }
}

pub(crate) fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!("must be an RFC 3339 date-time such as 2023-11-09T14:00:00+08:00 (got {s:?})")
        })
}

/// An event time: with an offset it is taken as it is; without, it is a wall-clock
/// time in the event's zone.
fn parse_event_time(s: &str, tz: Option<TimeZone>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            format!("must be a date-time such as 2023-11-09T14:00 or 2023-11-09T14:00:00+08:00 (got {s:?})")
        })?;
    let tz = tz.ok_or("cannot be read without a valid event.timezone")?;
    tz.tz()
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{s} does not exist in {} (a clock change)", tz.name()))
}

impl ItemRequest {
    /// Checks every field and reports all problems at once.
    pub fn into_draft(self) -> Result<ItemDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = errors.check("title", Text::parse(&self.title, 300, true, false));
        let slug = match &self.slug {
            Some(s) => errors.check("slug", Slug::parse(s)),
            None => title.as_ref().map(|t| Slug::from_title(t.as_str())),
        };
        let summary = errors.check("summary", Text::parse(&self.summary, 2000, false, true));
        let body = errors.check("body", Text::parse(&self.body, 200_000, false, true));
        let author = errors.check("author", Text::parse(&self.author, 200, false, false));
        let org_unit = errors.check("org_unit", Text::parse(&self.org_unit, 200, false, false));
        let language = match &self.language {
            Some(l) => errors.check("language", Language::parse(l)),
            None => Some(Language::default()),
        };
        if self.categories.is_empty() {
            errors.add("categories", "must name at least one category");
        }
        if self.categories.len() > 20 {
            errors.add("categories", "must name at most 20 categories");
        }
        let categories: Vec<Slug> = self
            .categories
            .iter()
            .enumerate()
            .filter_map(|(n, c)| errors.check(&format!("categories[{n}]"), Slug::parse(c)))
            .collect();
        if self.tags.len() > 50 {
            errors.add("tags", "must hold at most 50 tags");
        }
        let tags: Vec<Text> = self
            .tags
            .iter()
            .enumerate()
            .filter_map(|(n, t)| {
                errors.check(&format!("tags[{n}]"), Text::parse(t, 100, true, false))
            })
            .collect();
        let status = match &self.status {
            Some(s) => errors.check("status", ItemStatus::parse(s)),
            None => Some(ItemStatus::Draft),
        };
        let published_at = match &self.published_at {
            Some(p) => errors.check("published_at", parse_instant(p)).map(Some),
            None => Some(None),
        };
        let event = match self.event {
            None => Some(None),
            Some(e) => parse_event(e, &mut errors).map(Some),
        };
        errors.finish(|| {
            Some(ItemDraft {
                slug: slug?,
                title: title?,
                summary: summary?,
                body_markdown: body?,
                author: author?,
                org_unit: org_unit?,
                language: language?,
                categories,
                tags,
                status: status?,
                published_at: published_at?,
                event: event?,
            })
        })
    }
}

fn parse_event(e: EventRequest, errors: &mut FieldErrors) -> Option<Event> {
    let timezone = errors.check("event.timezone", TimeZone::parse(&e.timezone));
    let starts_at = errors.check("event.starts_at", parse_event_time(&e.starts_at, timezone));
    let ends_at = match &e.ends_at {
        Some(s) => errors
            .check("event.ends_at", parse_event_time(s, timezone))
            .map(Some),
        None => Some(None),
    };
    let venue = match e.venue.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        Some(v) => errors
            .check("event.venue", Text::parse(v, 300, true, false))
            .map(|t| Some(t.into_string())),
        None => Some(None),
    };
    let online_url = match e
        .online_url
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        Some(u) => errors
            .check("event.online_url", WebUrl::parse(u))
            .map(|u| Some(u.as_str().to_owned())),
        None => Some(None),
    };
    let mode = errors.check("event.mode", EventMode::parse(&e.mode));
    let event = Event {
        starts_at: starts_at?,
        ends_at: ends_at?,
        timezone: timezone?,
        venue: venue?,
        online_url: online_url?,
        mode: mode?,
    };
    let problems = event.validate();
    for (field, message) in &problems {
        errors.add(*field, message.clone());
    }
    problems.is_empty().then_some(event)
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
    State(state): State<AppState>,
    Query(q): Query<ItemListQuery>,
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
    if !errors.is_empty() {
        return Err(errors.into());
    }
    if let Some(c) = &category
        && state.store.content().category(c.as_str()).await?.is_none()
    {
        return Err(AppError::NotFound(format!("category {c}")));
    }
    let found = state
        .store
        .content()
        .items(&ItemFilter {
            category: category.map(|c| c.as_str().to_owned()),
            status,
            search: None,
            published_within: None,
            limit: per_page,
            offset: u64::from(page - 1) * u64::from(per_page),
        })
        .await?;
    let base = &state.settings.base_url;
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
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ItemRequest>,
) -> ApiResult<(StatusCode, Json<ItemResponse>)> {
    let draft = request.into_draft()?;
    let html = render_markdown(draft.body_markdown.as_str());
    let written = state
        .store
        .content()
        .create_item(&draft, &html, state.clock.now())
        .await?;
    state.cache.invalidate(&written.touched_categories);
    Ok((
        StatusCode::CREATED,
        Json(to_response(written.value, &state.settings.base_url)),
    ))
}

/// Read one item.
#[utoipa::path(get, path = "/api/v1/items/{id}", tag = "items", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_item(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ItemResponse>> {
    let id = parse_id(&id)?;
    let item = state
        .store
        .content()
        .item_by_id(id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("item {id}")))?;
    Ok(Json(to_response(item, &state.settings.base_url)))
}

/// Replace an item.
#[utoipa::path(put, path = "/api/v1/items/{id}", tag = "items", params(("id" = i64, Path)),
    request_body = ItemRequest, security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 413, body = Problem), (status = 422, body = Problem)))]
async fn update_item(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ItemRequest>,
) -> ApiResult<Json<ItemResponse>> {
    let id = parse_id(&id)?;
    let draft = request.into_draft()?;
    let html = render_markdown(draft.body_markdown.as_str());
    let written = state
        .store
        .content()
        .update_item(id, &draft, &html, state.clock.now())
        .await?;
    state.cache.invalidate(&written.touched_categories);
    Ok(Json(to_response(written.value, &state.settings.base_url)))
}

/// Delete an item.
#[utoipa::path(delete, path = "/api/v1/items/{id}", tag = "items", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn delete_item(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id(&id)?;
    let written = state
        .store
        .content()
        .delete_item(id, state.clock.now())
        .await?;
    state.cache.invalidate(&written.touched_categories);
    Ok(StatusCode::NO_CONTENT)
}

/// Publish an item now or at a given time.
#[utoipa::path(post, path = "/api/v1/items/{id}/publish", tag = "items", params(("id" = i64, Path)),
    request_body(content = PublishRequest, description = "optional"), security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn publish_item(
    _: AdminUser,
    State(state): State<AppState>,
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
    let written = state
        .store
        .content()
        .set_item_status(id, ItemStatus::Published, at, state.clock.now())
        .await?;
    state.cache.invalidate(&written.touched_categories);
    Ok(Json(to_response(written.value, &state.settings.base_url)))
}

/// Take an item back to draft; it leaves every feed and page.
#[utoipa::path(post, path = "/api/v1/items/{id}/unpublish", tag = "items", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ItemResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn unpublish_item(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<ItemResponse>> {
    let id = parse_id(&id)?;
    let written = state
        .store
        .content()
        .set_item_status(id, ItemStatus::Draft, None, state.clock.now())
        .await?;
    state.cache.invalidate(&written.touched_categories);
    Ok(Json(to_response(written.value, &state.settings.base_url)))
}

fn parse_id(s: &str) -> Result<i64, AppError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::NotFound(format!("item {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(json: serde_json::Value) -> ItemRequest {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_local_event_time_is_read_in_the_event_zone() {
        let tz = TimeZone::parse("Asia/Shanghai").ok();
        let t = parse_event_time("2023-11-09T14:00", tz).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-09T06:00:00+00:00");
        let t = parse_event_time("2023-11-09T14:00:00+01:00", tz).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-09T13:00:00+00:00");
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = request(serde_json::json!({
            "slug": "Bad Slug",
            "title": "",
            "language": "english",
            "categories": ["Not A Slug"],
            "status": "live",
            "published_at": "yesterday",
            "event": {"starts_at": "soon", "timezone": "Mars/Base", "mode": "telepathy"}
        }))
        .into_draft()
        .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        for expected in [
            "slug",
            "title",
            "language",
            "categories[0]",
            "status",
            "published_at",
            "event.timezone",
            "event.starts_at",
            "event.mode",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn event_rules_between_fields_are_checked() {
        let errors = request(serde_json::json!({
            "title": "x", "categories": ["events"],
            "event": {"starts_at": "2023-11-09T14:00", "ends_at": "2023-11-09T13:00",
                      "timezone": "Asia/Shanghai", "mode": "hybrid"}
        }))
        .into_draft()
        .unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event.ends_at", "event.online_url", "event.venue"]);
    }
}
