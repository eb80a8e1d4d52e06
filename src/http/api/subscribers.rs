//! `/api/v1/subscribers`: contacts, their history, CSV import and export.

use super::partners::parse_id;
use crate::domain::{
    Consent, FieldErrors, JoinedVia, MailingList, MembershipStatus, Slug, StatusChange, Subscriber,
    SubscriberDraft, SubscriberInput, SubscriberStatus, Text,
};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::download::csv_download;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::{ApiJson, ApiQuery, whole};
use crate::services::import::{
    ImportMode, ImportOptions, ImportReport, export_spooled, import_csv,
};
use crate::services::people;
use crate::services::subscriptions::{self, add_subscriber};
use crate::store::SubscriberFilter;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_subscribers, create_subscriber))
        .routes(routes!(
            get_subscriber,
            update_subscriber,
            delete_subscriber
        ))
        .routes(routes!(set_status))
        .routes(routes!(import_subscribers))
        .routes(routes!(export_subscribers))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubscriberRequest {
    pub email: String,
    #[serde(default)]
    pub name: String,
    #[serde(default, deserialize_with = "whole::optional")]
    pub partner_id: Option<i64>,
    /// `en` (or the partner's language) when left out.
    pub language: Option<String>,
    /// IANA zone for event times in digests and, on lists delivered in each reader's
    /// zone, for the send time; the partner's when left out.
    pub timezone: Option<String>,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// Put the new subscriber on this list (create only; on update it must be a slug
    /// and is otherwise ignored).
    pub list: Option<String>,
    /// How consent was given (e.g. "signed partner agreement"). With it the contact is
    /// confirmed at once; without it, a double opt-in list sends a confirmation mail
    /// and the contact stays pending until they follow it.
    pub consent_source: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MembershipResponse {
    pub list: String,
    pub status: MembershipStatus,
    pub joined_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryEntry {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberResponse {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub partner_id: Option<i64>,
    pub partner: Option<String>,
    pub language: String,
    /// Their own zone, if set (else their partner's is used).
    pub timezone: Option<String>,
    pub status: SubscriberStatus,
    pub joined_via: JoinedVia,
    pub consent_at: Option<DateTime<Utc>>,
    pub consent_source: Option<String>,
    pub consent_ip: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Only on single reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memberships: Option<Vec<MembershipResponse>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<HistoryEntry>>,
}

impl From<Subscriber> for SubscriberResponse {
    fn from(s: Subscriber) -> Self {
        Self {
            id: s.id,
            email: s.email,
            name: s.name,
            partner_id: s.partner_id,
            partner: s.partner_name,
            language: s.language,
            timezone: s.timezone,
            status: s.status,
            joined_via: s.joined_via,
            consent_at: s.consent_at,
            consent_source: s.consent_source,
            consent_ip: s.consent_ip,
            attributes: s.attributes,
            created_at: s.created_at,
            updated_at: s.updated_at,
            memberships: None,
            history: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriberList {
    pub subscribers: Vec<SubscriberResponse>,
    pub total: u64,
    pub page: u32,
    pub per_page: u32,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SubscriberQuery {
    /// A list slug.
    pub list: Option<String>,
    pub status: Option<String>,
    pub partner_id: Option<String>,
    /// Part of an address or name.
    pub q: Option<String>,
    pub page: Option<String>,
    pub per_page: Option<String>,
}

impl SubscriberRequest {
    fn input(&self) -> SubscriberInput {
        SubscriberInput {
            email: self.email.clone(),
            name: self.name.clone(),
            partner_id: self.partner_id,
            language: self.language.clone(),
            timezone: self.timezone.clone(),
            attributes: self.attributes.clone(),
            consent_source: self.consent_source.clone(),
        }
    }

    /// The checked subscriber and the consent stated with them.
    pub(crate) fn to_draft(&self) -> Result<(SubscriberDraft, Option<Consent>), FieldErrors> {
        SubscriberDraft::parse(&self.input())
    }
}

/// The list with this slug (404 otherwise).
pub(crate) async fn find_list(state: &AppState, slug: &str) -> ApiResult<MailingList> {
    Ok(subscriptions::find_list(state.app(), slug).await?)
}

/// Search and filter subscribers.
#[utoipa::path(get, path = "/api/v1/subscribers", tag = "subscribers", params(SubscriberQuery),
    security(("bearer" = [])),
    responses((status = 200, body = SubscriberList), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn list_subscribers(
    _: AdminUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<SubscriberQuery>,
) -> ApiResult<Json<SubscriberList>> {
    let mut errors = FieldErrors::new();
    let (page, per_page) =
        super::items::parse_page(q.page.as_deref(), q.per_page.as_deref(), &mut errors);
    let status = q
        .status
        .as_deref()
        .and_then(|s| errors.check("status", SubscriberStatus::parse(s)));
    let partner = q.partner_id.as_deref().and_then(|p| {
        errors.check(
            "partner_id",
            p.parse::<i64>()
                .map_err(|_| format!("must be a partner id (got {p:?})")),
        )
    });
    let search = q.q.as_deref().map(str::trim).filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > 200) {
        errors.add("q", "must be at most 200 characters");
    }
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let list = match q.list.as_deref() {
        Some(slug) => Some(find_list(&state, slug).await?.id),
        None => None,
    };
    let (subscribers, total) = people::search_subscribers(
        state.app(),
        &SubscriberFilter {
            list,
            status,
            partner,
            search: search.map(str::to_owned),
            limit: per_page,
            offset: u64::from(page - 1) * u64::from(per_page),
        },
    )
    .await?;
    Ok(Json(SubscriberList {
        subscribers: subscribers.into_iter().map(Into::into).collect(),
        total,
        page,
        per_page,
    }))
}

/// Add a subscriber, optionally to a list.
#[utoipa::path(post, path = "/api/v1/subscribers", tag = "subscribers", request_body = SubscriberRequest,
    security(("bearer" = [])),
    responses((status = 201, body = SubscriberResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn create_subscriber(
    _: AdminUser,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<SubscriberRequest>,
) -> ApiResult<(StatusCode, Json<SubscriberResponse>)> {
    let (draft, consent) = request.to_draft()?;
    let list = match request.list.as_deref() {
        Some(slug) => Some(find_list(&state, slug).await?),
        None => None,
    };
    let (subscriber, _) =
        add_subscriber(state.app(), &draft, consent, list, state.clock.now()).await?;
    Ok((StatusCode::CREATED, Json(subscriber.into())))
}

/// Read a subscriber with their lists and history.
#[utoipa::path(get, path = "/api/v1/subscribers/{id}", tag = "subscribers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = SubscriberResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_subscriber(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<SubscriberResponse>> {
    let id = parse_id("subscriber", &id)?;
    let record = people::subscriber_record(state.app(), id).await?;
    let mut response = SubscriberResponse::from(record.subscriber);
    response.memberships = Some(
        record
            .memberships
            .into_iter()
            .map(|m| MembershipResponse {
                list: m.list_slug,
                status: m.status,
                joined_at: m.created_at,
                confirmed_at: m.confirmed_at,
                unsubscribed_at: m.unsubscribed_at,
            })
            .collect(),
    );
    response.history = Some(
        record
            .history
            .into_iter()
            .map(|h| HistoryEntry {
                at: h.at,
                kind: h.kind,
                detail: h.detail,
            })
            .collect(),
    );
    Ok(Json(response))
}

/// Replace a subscriber's details (not their status or lists).
#[utoipa::path(put, path = "/api/v1/subscribers/{id}", tag = "subscribers", params(("id" = i64, Path)),
    request_body = SubscriberRequest, security(("bearer" = [])),
    responses((status = 200, body = SubscriberResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_subscriber(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SubscriberRequest>,
) -> ApiResult<Json<SubscriberResponse>> {
    let id = parse_id("subscriber", &id)?;
    let (draft, _) = request.to_draft()?;
    // `list` counts on create only; here it is checked like any field and left alone.
    if let Some(Err(message)) = request.list.as_deref().map(Slug::parse) {
        let mut errors = FieldErrors::new();
        errors.add("list", message);
        return Err(errors.into());
    }
    Ok(Json(
        people::update_subscriber(state.app(), id, &draft)
            .await?
            .into(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusRequest {
    pub status: String,
    /// Why, for the history.
    #[serde(default)]
    pub reason: String,
}

/// Change a subscriber's status (block, mark bounced, unsubscribe, confirm).
#[utoipa::path(post, path = "/api/v1/subscribers/{id}/status", tag = "subscribers", params(("id" = i64, Path)),
    request_body = StatusRequest, security(("bearer" = [])),
    responses((status = 200, body = SubscriberResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)))]
async fn set_status(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<StatusRequest>,
) -> ApiResult<Json<SubscriberResponse>> {
    let id = parse_id("subscriber", &id)?;
    let change = StatusChange::parse(&request.status, &request.reason)?;
    Ok(Json(
        people::set_status(state.app(), id, &change, None)
            .await?
            .into(),
    ))
}

/// Delete a subscriber and everything about them.
#[utoipa::path(delete, path = "/api/v1/subscribers/{id}", tag = "subscribers", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn delete_subscriber(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id("subscriber", &id)?;
    people::delete_subscriber(state.app(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Put every imported contact on this list.
    pub list: Option<String>,
    /// `good_rows` (default: apply the good rows, report the bad) or `all_or_nothing`.
    pub mode: Option<String>,
    /// `true` to report what would change and change nothing.
    pub dry_run: Option<String>,
    /// Stated consent: contacts join a double opt-in list confirmed.
    pub consent_source: Option<String>,
}

/// Import subscribers from a CSV body (columns: email, name, partner, language, and
/// any others kept as attributes). Re-importing the same file changes nothing.
#[utoipa::path(post, path = "/api/v1/subscribers/import", tag = "subscribers", params(ImportQuery),
    request_body(content = String, content_type = "text/csv"), security(("bearer" = [])),
    responses((status = 200, body = ImportReport), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
async fn import_subscribers(
    _: AdminUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<ImportReport>> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with("text/csv") {
        return Err(AppError::UnsupportedMediaType(format!(
            "expected Content-Type: text/csv (got {content_type:?})"
        )));
    }
    let mut errors = FieldErrors::new();
    let mode = match q.mode.as_deref() {
        Some(m) => errors.check("mode", ImportMode::parse(m)),
        None => Some(ImportMode::GoodRows),
    };
    let dry_run = match q.dry_run.as_deref() {
        None | Some("false") => Some(false),
        Some("true") => Some(true),
        Some(other) => {
            errors.add("dry_run", format!("must be true or false (got {other:?})"));
            None
        }
    };
    let consent_source = match q.consent_source.as_deref() {
        Some(c) => errors
            .check("consent_source", Text::parse(c, 300, true, false))
            .map(|t| Some(t.into_string())),
        None => Some(None),
    };
    let (mode, dry_run, consent_source) =
        errors.finish(|| Some((mode?, dry_run?, consent_source?)))?;
    let list = match q.list.as_deref() {
        Some(slug) => Some(find_list(&state, slug).await?),
        None => None,
    };
    // Spooled to a temporary file so an upload of any size costs disk, not memory.
    let limit = state.settings.max_import_bytes;
    let spool = tempfile::tempfile().map_err(|e| AppError::Internal(e.into()))?;
    let mut file = tokio::fs::File::from_std(
        spool
            .try_clone()
            .map_err(|e| AppError::Internal(e.into()))?,
    );
    let mut stream = body.into_data_stream();
    let mut written = 0usize;
    while let Some(chunk) = stream
        .try_next()
        .await
        .map_err(|e| AppError::BadRequest(format!("could not read the upload: {e}")))?
    {
        written += chunk.len();
        if written > limit {
            return Err(AppError::PayloadTooLarge(limit));
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| AppError::Internal(e.into()))?;
    }
    file.flush()
        .await
        .map_err(|e| AppError::Internal(e.into()))?;
    let mut spool = spool;
    std::io::Seek::rewind(&mut spool).map_err(|e| AppError::Internal(e.into()))?;
    let options = ImportOptions {
        list,
        mode,
        dry_run,
        consent_source,
        via: JoinedVia::Import,
    };
    let report = import_csv(
        &state.store,
        std::io::BufReader::new(spool),
        &options,
        state.clock.now(),
        |_| {},
    )
    .await?;
    state.metrics.import_rows(&report);
    Ok(Json(report))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Only the members of this list.
    pub list: Option<String>,
}

/// Export subscribers (everyone, or a list's members) as CSV.
#[utoipa::path(get, path = "/api/v1/subscribers/export", tag = "subscribers", params(ExportQuery),
    security(("bearer" = [])),
    responses((status = 200, content_type = "text/csv", body = String), (status = 401, body = Problem),
        (status = 404, body = Problem)))]
async fn export_subscribers(
    _: AdminUser,
    State(state): State<AppState>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> ApiResult<Response> {
    let list = match q.list.as_deref() {
        Some(slug) => Some(find_list(&state, slug).await?),
        None => None,
    };
    let spool = export_spooled(&state.store, list.as_ref().map(|l| l.id)).await?;
    Ok(csv_download(
        &list.map_or_else(|| "subscribers".to_owned(), |l| l.slug),
        spool,
    ))
}
