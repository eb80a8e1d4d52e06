//! `/api/v1/digests`: every digest with its items and delivery counts; send now,
//! retry failed deliveries, cancel; previews.

use super::partners::parse_id;
use crate::app::App;
use crate::domain::{
    DeliveryCounts, Digest, DigestStatus, DigestTrigger, Email, FailedDelivery, FieldErrors,
    IsoWeek, Item, Language, MailingList,
};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::{ApiQuery, parse_json};
use crate::services::digests::{self, DigestDetail, DryRun, HistoryEntry};
use crate::services::lists;
use crate::store::Created;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_digests))
        .routes(routes!(get_digest))
        .routes(routes!(send_now))
        .routes(routes!(retry_failed))
        .routes(routes!(cancel))
        .routes(routes!(preview))
        .routes(routes!(dry_run))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DigestItem {
    pub id: i64,
    pub title: String,
    pub url: String,
    pub published_at: Option<DateTime<Utc>>,
    pub event_starts_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailedDeliveryResponse {
    pub subscriber_id: i64,
    pub email: String,
    pub attempts: u32,
    pub error: String,
    pub permanent: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DigestResponse {
    pub id: i64,
    pub list: String,
    pub period: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub news_since: DateTime<Utc>,
    pub status: DigestStatus,
    pub trigger: DigestTrigger,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub note: String,
    /// Its deliveries are still being made (a large list is built in the background,
    /// a chunk of readers at a time); `counts` grows until this is false, and nothing
    /// is sent before.
    pub building: bool,
    /// Its per-recipient rows were pruned after the retention period
    /// (`NEWSDESK_DELIVERY_RETENTION_DAYS`): `counts` are the totals kept, `failed`
    /// is empty.
    pub pruned: bool,
    /// A digest delivered in each reader's zone: the local date and time
    /// (`2023-11-06T08:00:00`) each reader's delivery was due at where they are.
    /// `null`: every delivery was due when the digest was built.
    pub send_local: Option<String>,
    pub counts: DeliveryCounts,
    /// On single reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coming_up: Option<Vec<DigestItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub news: Option<Vec<DigestItem>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed: Option<Vec<FailedDeliveryResponse>>,
}

impl DigestResponse {
    /// A digest without its items and failures, as lists of digests show it.
    fn summary(d: Digest, list_slug: &str, counts: DeliveryCounts) -> Self {
        DigestResponse {
            id: d.id,
            list: list_slug.to_owned(),
            period: d.period,
            period_start: d.period_start,
            period_end: d.period_end,
            news_since: d.news_since,
            status: d.status,
            trigger: d.trigger,
            scheduled_for: d.scheduled_for,
            created_at: d.created_at,
            completed_at: d.completed_at,
            note: d.note,
            building: d.building,
            pruned: d.pruned,
            send_local: d
                .send_local
                .map(|t| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
            counts,
            coming_up: None,
            news: None,
            failed: None,
        }
    }

    /// A digest with its items and failed deliveries.
    fn detail(d: DigestDetail, base_url: &str) -> Self {
        let view = |i: &Item| DigestItem {
            id: i.id,
            title: i.title.clone(),
            url: format!("{base_url}/items/{}", i.slug),
            published_at: i.published_at,
            event_starts_at: i.event.as_ref().map(|e| e.starts_at),
        };
        DigestResponse {
            coming_up: Some(d.items.coming_up.iter().map(view).collect()),
            news: Some(d.items.news.iter().map(view).collect()),
            failed: Some(d.failed.into_iter().map(Into::into).collect()),
            ..Self::summary(d.digest, &d.list.slug, d.counts)
        }
    }
}

impl From<FailedDelivery> for FailedDeliveryResponse {
    fn from(f: FailedDelivery) -> Self {
        FailedDeliveryResponse {
            subscriber_id: f.subscriber_id,
            email: f.email,
            attempts: f.attempts,
            error: f.error,
            permanent: f.permanent,
        }
    }
}

/// How many failed deliveries a single read names.
const FAILED_SHOWN: u32 = 1000;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DigestQuery {
    /// A list slug.
    pub list: Option<String>,
}

/// Every digest (or a list's), newest first, with delivery counts.
#[utoipa::path(get, path = "/api/v1/digests", tag = "digests", params(DigestQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<DigestResponse>), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn list_digests(
    _: AdminUser,
    State(app): State<App>,
    ApiQuery(q): ApiQuery<DigestQuery>,
) -> ApiResult<Json<Vec<DigestResponse>>> {
    let history = digests::history(&app, q.list.as_deref(), 500).await?;
    Ok(Json(
        history
            .into_iter()
            .map(
                |HistoryEntry {
                     digest,
                     list,
                     counts,
                 }| {
                    let slug = list.map(|l| l.slug).unwrap_or_default();
                    DigestResponse::summary(digest, &slug, counts)
                },
            )
            .collect(),
    ))
}

/// A digest with its items, delivery counts and failed deliveries with reasons.
#[utoipa::path(get, path = "/api/v1/digests/{id}", tag = "digests", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = DigestResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_digest(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
) -> ApiResult<Json<DigestResponse>> {
    let detail = digests::detail(&app, parse_id("digest", &id)?, FAILED_SHOWN).await?;
    Ok(Json(DigestResponse::detail(detail, &app.settings.base_url)))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// ISO week such as `2023-W45`; the current week in the list's zone when left out.
    pub period: Option<String>,
}

fn parse_period(
    s: Option<&str>,
    list: &MailingList,
    now: DateTime<Utc>,
    field: &str,
) -> Result<IsoWeek, AppError> {
    match s {
        Some(p) => IsoWeek::parse(p).map_err(|m| {
            let mut e = FieldErrors::new();
            e.add(field, m);
            AppError::Validation(e)
        }),
        None => Ok(digests::current_period(list, now)),
    }
}

/// Build a list's digest for a period now and send it. A period that has a digest
/// already is refused (409): use retry for its failed deliveries.
#[utoipa::path(post, path = "/api/v1/lists/{slug}/digests", tag = "digests", params(("slug" = String, Path)),
    request_body(content = SendRequest, description = "optional"), security(("bearer" = [])),
    responses((status = 201, body = DigestResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn send_now(
    _: AdminUser,
    State(app): State<App>,
    Path(slug): Path<String>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<DigestResponse>)> {
    let list = lists::find(&app, &slug).await?;
    let request: SendRequest = if body.iter().all(u8::is_ascii_whitespace) {
        SendRequest::default()
    } else {
        parse_json(&body)?
    };
    let period = parse_period(request.period.as_deref(), &list, app.clock.now(), "period")?;
    match digests::send_now(&app, &list, period).await? {
        Created::New(d) => {
            let detail = digests::detail(&app, d.id, FAILED_SHOWN).await?;
            Ok((
                StatusCode::CREATED,
                Json(DigestResponse::detail(detail, &app.settings.base_url)),
            ))
        }
        Created::Existing(d) => Err(AppError::Conflict {
            field: "period".into(),
            message: format!(
                "list {} has a digest for {} already (id {}, {:?})",
                list.slug, d.period, d.id, d.status
            ),
        }),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionResult {
    /// Deliveries affected.
    pub deliveries: u64,
}

/// Put a digest's failed deliveries back in the outbox: those to readers still confirmed
/// and on the list. 409 for a cancelled digest.
#[utoipa::path(post, path = "/api/v1/digests/{id}/retry", tag = "digests", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = ActionResult), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn retry_failed(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
) -> ApiResult<Json<ActionResult>> {
    let deliveries = digests::retry(&app, parse_id("digest", &id)?).await?;
    Ok(Json(ActionResult { deliveries }))
}

/// Cancel a digest being sent: its pending deliveries are dropped.
#[utoipa::path(post, path = "/api/v1/digests/{id}/cancel", tag = "digests", params(("id" = i64, Path)), security(("bearer" = [])),
    responses((status = 200, body = ActionResult), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem)))]
async fn cancel(
    _: AdminUser,
    State(app): State<App>,
    Path(id): Path<String>,
) -> ApiResult<Json<ActionResult>> {
    let deliveries = digests::cancel(&app, parse_id("digest", &id)?).await?;
    Ok(Json(ActionResult { deliveries }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// Render for this subscriber (their name, zone, language, what they had before).
    pub subscriber: Option<String>,
    /// Render in this language (a BCP 47 tag such as `zh`): each item's version in it
    /// where there is one, the message's words in it where there are labels for it.
    /// With `subscriber`, instead of theirs; without, for a sample reader of it
    /// (default `en`).
    pub language: Option<String>,
    /// `html` (default) or `text`.
    pub format: Option<String>,
}

/// Render a list's digest for a period without sending anything.
#[utoipa::path(get, path = "/api/v1/lists/{slug}/digests/{period}/preview", tag = "digests",
    params(("slug" = String, Path), ("period" = String, Path), PreviewQuery), security(("bearer" = [])),
    responses((status = 200, description = "the message as HTML or text; a line of text when the reader would get nothing",
            content((String = "text/html"), (String = "text/plain"))), (status = 401, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)))]
async fn preview(
    _: AdminUser,
    State(app): State<App>,
    Path((slug, period)): Path<(String, String)>,
    ApiQuery(q): ApiQuery<PreviewQuery>,
) -> ApiResult<Response> {
    let list = lists::find(&app, &slug).await?;
    let mut errors = FieldErrors::new();
    let period = errors.check("period", IsoWeek::parse(&period));
    let html = match q.format.as_deref() {
        None | Some("html") => Some(true),
        Some("text") => Some(false),
        Some(other) => {
            errors.add(
                "format",
                format!("must be \"html\" or \"text\" (got {other:?})"),
            );
            None
        }
    };
    let email = q
        .subscriber
        .as_deref()
        .map(|e| errors.check("subscriber", Email::parse(e)));
    let language = q
        .language
        .as_deref()
        .map(|l| errors.check("language", Language::parse(l)));
    let (period, html) = errors.finish(|| Some((period?, html?)))?;
    let reader = email.flatten();
    let language = language.flatten();
    let rendered =
        digests::preview_in(&app, &list, period, reader.as_ref(), language.as_ref()).await?;
    let text = |body: String| {
        ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    };
    Ok(match rendered {
        None => text("Nothing new for this reader in this period.\n".into()),
        Some(r) if html => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], r.html).into_response()
        }
        Some(r) => text(r.text),
    })
}

/// Who would get what for a period, without sending or writing anything.
#[utoipa::path(get, path = "/api/v1/lists/{slug}/digests/{period}/dry-run", tag = "digests",
    params(("slug" = String, Path), ("period" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = DryRun), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn dry_run(
    _: AdminUser,
    State(app): State<App>,
    Path((slug, period)): Path<(String, String)>,
) -> ApiResult<Json<DryRun>> {
    let list = lists::find(&app, &slug).await?;
    let period = parse_period(Some(&period), &list, app.clock.now(), "period")?;
    Ok(Json(digests::dry_run(&app, &list, period).await?))
}
