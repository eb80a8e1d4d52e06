//! `/api/v1/lists`: mailing lists, their categories, members and counts.

use super::partners::parse_id;
use crate::app::App;
use crate::domain::{
    DeliveryZone, FieldErrors, ListDraft, ListInput, MembershipStatus, OptIn, ScheduleInput,
    Visibility,
};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::{ApiJson, whole};
use crate::services::lists::{self, Overview};
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
    /// The default name, shown in a language without one in `names`.
    pub name: String,
    /// Its names in other languages, by language tag (`{"zh": "合作院校通讯"}`): a
    /// reader of a language with a name here (the exact tag, else one of the same
    /// primary language, as item versions are matched) sees it in place of `name`.
    /// The set given replaces the stored one; left out, the list has none.
    #[serde(default)]
    #[schema(example = json!({"zh": "合作院校通讯"}))]
    pub names: BTreeMap<String, String>,
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
    #[serde(default, deserialize_with = "whole::optional")]
    pub min_items: Option<u32>,
    /// A window missed while the service was down is still sent this many minutes
    /// late at most, else recorded as missed; default 1440. With `reader_zone`
    /// delivery it holds for each reader: a delivery first taken more than this long
    /// after its reader's local time is recorded as missed, not sent.
    #[serde(default, deserialize_with = "whole::optional")]
    pub grace_minutes: Option<u32>,
    /// Whose clock the schedule is read on: `list_zone` (default: `schedule_timezone`,
    /// one moment for every reader) or `reader_zone` (the schedule's local time in each
    /// reader's own zone, else their institution's, else `schedule_timezone`; the
    /// week's digest is built once, when that time comes at UTC+14).
    pub schedule_delivery: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ListResponse {
    pub slug: String,
    pub name: String,
    /// Its names in other languages, by language tag.
    pub names: BTreeMap<String, String>,
    pub description: String,
    pub categories: Vec<String>,
    pub opt_in: OptIn,
    pub visibility: Visibility,
    pub schedule_cron: String,
    pub schedule_timezone: String,
    pub min_items: u32,
    pub grace_minutes: u32,
    pub schedule_delivery: DeliveryZone,
    /// When the schedule next fires (for `reader_zone` delivery: when the digest is
    /// built, at UTC+14).
    pub next_digest_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Members by status on this list.
    pub counts: BTreeMap<MembershipStatus, u64>,
}

impl ListRequest {
    /// The request as the domain reads list settings.
    pub fn into_input(self) -> ListInput {
        ListInput {
            slug: self.slug,
            name: self.name,
            names: self.names,
            description: self.description,
            categories: self.categories,
            opt_in: self.opt_in,
            visibility: self.visibility,
            schedule: ScheduleInput {
                cron: self.schedule_cron,
                timezone: self.schedule_timezone,
                min_items: self.min_items,
                grace_minutes: self.grace_minutes,
                delivery: self.schedule_delivery,
            },
        }
    }
}

impl TryFrom<ListRequest> for ListDraft {
    type Error = FieldErrors;

    fn try_from(request: ListRequest) -> Result<Self, FieldErrors> {
        ListDraft::parse(&request.into_input())
    }
}

impl From<Overview> for ListResponse {
    fn from(o: Overview) -> Self {
        let l = o.list;
        ListResponse {
            schedule_cron: l.schedule.cron.as_str().to_owned(),
            schedule_timezone: l.schedule.timezone.name().to_owned(),
            min_items: l.schedule.min_items,
            grace_minutes: l.schedule.grace_minutes,
            schedule_delivery: l.schedule.delivery,
            next_digest_at: o.next_digest.map(|(at, _)| at),
            slug: l.slug,
            names: l.names.to_map(),
            name: l.name,
            description: l.description,
            categories: l.categories,
            opt_in: l.opt_in,
            visibility: l.visibility,
            created_at: l.created_at,
            updated_at: l.updated_at,
            counts: o.counts,
        }
    }
}

/// Every list with its member counts.
#[utoipa::path(get, path = "/api/v1/lists", tag = "lists", security(("bearer" = [])),
    responses((status = 200, body = Vec<ListResponse>), (status = 401, body = Problem)))]
async fn list_lists(_: AdminUser, State(app): State<App>) -> ApiResult<Json<Vec<ListResponse>>> {
    let overviews = lists::overviews(&app).await?;
    Ok(Json(
        overviews.into_iter().map(ListResponse::from).collect(),
    ))
}

/// Create a list.
#[utoipa::path(post, path = "/api/v1/lists", tag = "lists", request_body = ListRequest, security(("bearer" = [])),
    responses((status = 201, body = ListResponse), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create_list(
    _: AdminUser,
    State(app): State<App>,
    ApiJson(request): ApiJson<ListRequest>,
) -> ApiResult<(StatusCode, Json<ListResponse>)> {
    let draft = ListDraft::try_from(request)?;
    let list = lists::create(&app, &draft).await?;
    let overview = lists::overview(&app, list).await?;
    Ok((StatusCode::CREATED, Json(overview.into())))
}

/// Read a list with its counts.
#[utoipa::path(get, path = "/api/v1/lists/{slug}", tag = "lists", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ListResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_list(
    _: AdminUser,
    State(app): State<App>,
    Path(slug): Path<String>,
) -> ApiResult<Json<ListResponse>> {
    let list = lists::find(&app, &slug).await?;
    Ok(Json(lists::overview(&app, list).await?.into()))
}

/// Replace a list's settings.
#[utoipa::path(put, path = "/api/v1/lists/{slug}", tag = "lists", params(("slug" = String, Path)),
    request_body = ListRequest, security(("bearer" = [])),
    responses((status = 200, body = ListResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_list(
    _: AdminUser,
    State(app): State<App>,
    Path(slug): Path<String>,
    ApiJson(request): ApiJson<ListRequest>,
) -> ApiResult<Json<ListResponse>> {
    let draft = ListDraft::try_from(request)?;
    let list = lists::update(&app, &slug, &draft).await?;
    Ok(Json(lists::overview(&app, list).await?.into()))
}

/// Delete a list without confirmed members (409 with the reason otherwise).
#[utoipa::path(delete, path = "/api/v1/lists/{slug}", tag = "lists", params(("slug" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_list(
    _: AdminUser,
    State(app): State<App>,
    Path(slug): Path<String>,
) -> ApiResult<StatusCode> {
    lists::delete(&app, &slug).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    #[serde(deserialize_with = "whole::required")]
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
    State(app): State<App>,
    Path(slug): Path<String>,
    ApiJson(request): ApiJson<MemberRequest>,
) -> ApiResult<Json<MemberResponse>> {
    let list = lists::find(&app, &slug).await?;
    let (subscriber, status) = lists::add_member(
        &app,
        &list,
        request.subscriber_id,
        request.consent_source.as_deref(),
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
    State(app): State<App>,
    Path((slug, subscriber_id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let list = lists::find(&app, &slug).await?;
    let id = parse_id("subscriber", &subscriber_id)?;
    lists::remove_member(&app, &list, id).await?;
    Ok(StatusCode::NO_CONTENT)
}
