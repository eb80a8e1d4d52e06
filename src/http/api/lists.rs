//! `/api/v1/lists`: mailing lists, their categories, members and counts.

use super::partners::parse_id;
use super::subscribers::find_list;
use crate::domain::{
    CronExpr, FieldErrors, ListDraft, MailingList, MembershipStatus, OptIn, Schedule, Slug, Text,
    TimeZone, Visibility,
};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::ApiJson;
use crate::subscriptions::add_to_list;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_lists, create_list))
        .routes(routes!(get_list, update_list, delete_list))
        .routes(routes!(add_member))
        .routes(routes!(remove_member))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRequest {
    pub slug: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// Category slugs whose items the list's digests carry (descendants included).
    #[serde(default)]
    pub categories: Vec<String>,
    /// `double` (default) or `single`.
    pub opt_in: Option<String>,
    /// `public` (default: joinable from the form) or `private`.
    pub visibility: Option<String>,
    /// When the digest goes out: cron with seconds, default `0 0 8 * * Mon`.
    pub schedule_cron: Option<String>,
    /// IANA zone the schedule and the digest's week are read in; default `UTC`.
    pub schedule_timezone: Option<String>,
    /// Fewer items than this and the week's digest is skipped; default 1.
    pub min_items: Option<u32>,
    /// A window missed while the service was down is still sent this many minutes
    /// late at most, else recorded as missed; default 1440.
    pub grace_minutes: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub categories: Vec<String>,
    pub opt_in: OptIn,
    pub visibility: Visibility,
    pub schedule_cron: String,
    pub schedule_timezone: String,
    pub min_items: u32,
    pub grace_minutes: u32,
    /// When the schedule next fires.
    pub next_digest_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Members by status on this list.
    pub counts: BTreeMap<MembershipStatus, u64>,
}

impl ListRequest {
    pub(crate) fn into_draft(self) -> Result<ListDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let slug = errors.check("slug", Slug::parse(&self.slug));
        let name = errors.check("name", Text::parse(&self.name, 200, true, false));
        let description = errors.check(
            "description",
            Text::parse(&self.description, 2000, false, true),
        );
        let categories: Vec<Slug> = self
            .categories
            .iter()
            .enumerate()
            .filter_map(|(n, c)| errors.check(&format!("categories[{n}]"), Slug::parse(c)))
            .collect();
        let opt_in = match self.opt_in.as_deref() {
            Some(o) => errors.check("opt_in", OptIn::parse(o)),
            None => Some(OptIn::Double),
        };
        let visibility = match self.visibility.as_deref() {
            Some(v) => errors.check("visibility", Visibility::parse(v)),
            None => Some(Visibility::Public),
        };
        let defaults = Schedule::default();
        let cron = match self.schedule_cron.as_deref() {
            Some(c) => errors.check("schedule_cron", CronExpr::parse(c)),
            None => Some(defaults.cron.clone()),
        };
        let timezone = match self.schedule_timezone.as_deref() {
            Some(t) => errors.check("schedule_timezone", TimeZone::parse(t)),
            None => Some(defaults.timezone),
        };
        let min_items = self.min_items.unwrap_or(defaults.min_items);
        if !(1..=1000).contains(&min_items) {
            errors.add("min_items", "must be from 1 to 1000");
        }
        let grace_minutes = self.grace_minutes.unwrap_or(defaults.grace_minutes);
        if grace_minutes > 60 * 24 * 14 {
            errors.add("grace_minutes", "must be at most 20160 (two weeks)");
        }
        errors.finish(|| {
            Some(ListDraft {
                schedule: Schedule {
                    cron: cron?,
                    timezone: timezone?,
                    min_items,
                    grace_minutes,
                },
                slug: slug?,
                name: name?,
                description: description?,
                categories,
                opt_in: opt_in?,
                visibility: visibility?,
            })
        })
    }
}

async fn to_response(state: &AppState, l: MailingList) -> ApiResult<ListResponse> {
    let counts = state.store.lists().counts(l.id).await?;
    let next_digest_at = l
        .schedule
        .cron
        .next_fire_after(state.clock.now(), l.schedule.timezone.tz());
    Ok(ListResponse {
        schedule_cron: l.schedule.cron.as_str().to_owned(),
        schedule_timezone: l.schedule.timezone.name().to_owned(),
        min_items: l.schedule.min_items,
        grace_minutes: l.schedule.grace_minutes,
        next_digest_at,
        slug: l.slug,
        name: l.name,
        description: l.description,
        categories: l.categories,
        opt_in: l.opt_in,
        visibility: l.visibility,
        created_at: l.created_at,
        updated_at: l.updated_at,
        counts,
    })
}

/// Every list with its member counts.
#[utoipa::path(get, path = "/api/v1/lists", tag = "lists", security(("bearer" = [])),
    responses((status = 200, body = Vec<ListResponse>), (status = 401, body = Problem)))]
async fn list_lists(
    _: AdminUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ListResponse>>> {
    let mut out = Vec::new();
    for l in state.store.lists().all().await? {
        out.push(to_response(&state, l).await?);
    }
    Ok(Json(out))
}

/// Create a list.
#[utoipa::path(post, path = "/api/v1/lists", tag = "lists", request_body = ListRequest, security(("bearer" = [])),
    responses((status = 201, body = ListResponse), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create_list(
    _: AdminUser,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<ListRequest>,
) -> ApiResult<(StatusCode, Json<ListResponse>)> {
    let draft = request.into_draft()?;
    let list = state
        .store
        .lists()
        .create(&draft, state.clock.now())
        .await?;
    state.lists_changed.notify_one();
    Ok((StatusCode::CREATED, Json(to_response(&state, list).await?)))
}

/// Read a list with its counts.
#[utoipa::path(get, path = "/api/v1/lists/{slug}", tag = "lists", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_list(
    _: AdminUser,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<Json<ListResponse>> {
    let list = find_list(&state, &slug).await?;
    Ok(Json(to_response(&state, list).await?))
}

/// Replace a list's settings.
#[utoipa::path(put, path = "/api/v1/lists/{slug}", tag = "lists", params(("slug" = String, Path)),
    request_body = ListRequest, security(("bearer" = [])),
    responses((status = 200, body = ListResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_list(
    _: AdminUser,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(request): ApiJson<ListRequest>,
) -> ApiResult<Json<ListResponse>> {
    let draft = request.into_draft()?;
    let list = state
        .store
        .lists()
        .update(&slug, &draft, state.clock.now())
        .await?;
    state.lists_changed.notify_one();
    Ok(Json(to_response(&state, list).await?))
}

/// Delete a list without confirmed members (409 with the reason otherwise).
#[utoipa::path(delete, path = "/api/v1/lists/{slug}", tag = "lists", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_list(
    _: AdminUser,
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.lists().delete(&slug).await?;
    state.lists_changed.notify_one();
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    pub subscriber_id: i64,
    /// Stated consent: the member is confirmed at once. Without it a double opt-in
    /// list mails a confirmation link and the member stays pending.
    pub consent_source: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MemberResponse {
    pub list: String,
    pub subscriber_id: i64,
    pub status: MembershipStatus,
}

/// Put a subscriber on a list.
#[utoipa::path(post, path = "/api/v1/lists/{slug}/members", tag = "lists", params(("slug" = String, Path)),
    request_body = MemberRequest, security(("bearer" = [])),
    responses((status = 200, body = MemberResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn add_member(
    _: AdminUser,
    State(state): State<AppState>,
    Path(slug): Path<String>,
    ApiJson(request): ApiJson<MemberRequest>,
) -> ApiResult<Json<MemberResponse>> {
    let list = find_list(&state, &slug).await?;
    let mut errors = FieldErrors::new();
    let consent = match request.consent_source.as_deref() {
        Some(c) => errors
            .check("consent_source", Text::parse(c, 300, true, false))
            .map(Some),
        None => Some(None),
    };
    let consent = errors.finish(|| consent)?;
    let subscriber = state
        .store
        .people()
        .subscriber(request.subscriber_id)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("subscriber {}", request.subscriber_id)))?;
    let status = add_to_list(
        state.app(),
        &list,
        &subscriber,
        consent.as_ref().map(|c| c.as_str()),
        "an admin",
        state.clock.now(),
    )
    .await?;
    Ok(Json(MemberResponse {
        list: list.slug,
        subscriber_id: subscriber.id,
        status,
    }))
}

/// Take a subscriber off a list (they stay on their other lists).
#[utoipa::path(delete, path = "/api/v1/lists/{slug}/members/{subscriber_id}", tag = "lists",
    params(("slug" = String, Path), ("subscriber_id" = i64, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn remove_member(
    _: AdminUser,
    State(state): State<AppState>,
    Path((slug, subscriber_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let list = find_list(&state, &slug).await?;
    let id = parse_id("subscriber", &subscriber_id)?;
    if state
        .store
        .lists()
        .membership_status(list.id, id)
        .await?
        .is_none()
    {
        return Err(AppError::NotFound(format!(
            "subscriber {id} on list {slug}"
        )));
    }
    state
        .store
        .lists()
        .set_membership(
            list.id,
            id,
            MembershipStatus::Unsubscribed,
            "removed by an admin",
            state.clock.now(),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
