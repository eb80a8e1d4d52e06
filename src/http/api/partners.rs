//! `/api/v1/partners`: partner institutions.

use crate::domain::{FieldErrors, Partner, PartnerDraft, PartnerInput};
use crate::http::AppState;
use crate::http::auth::AdminUser;
use crate::http::error::{ApiResult, AppError, Problem};
use crate::http::extract::ApiJson;
use crate::services::people;
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
        .routes(routes!(list_partners, create_partner))
        .routes(routes!(get_partner, update_partner, delete_partner))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PartnerRequest {
    /// The default name, shown in a language without one in `names`.
    pub name: String,
    /// Its names in other languages, by language tag (`{"zh": "浙江经济职业技术学院"}`):
    /// a contact reading a language with a name here (the exact tag, else one of the
    /// same primary language) reads it in place of `name` (a digest's intro). The set
    /// given replaces the stored one; left out, the partner has none.
    #[serde(default)]
    #[schema(example = json!({"zh": "浙江经济职业技术学院"}))]
    pub names: BTreeMap<String, String>,
    #[serde(default)]
    pub country: String,
    pub website: Option<String>,
    /// IANA time zone; `UTC` when left out.
    pub timezone: Option<String>,
    /// Preferred language of its contacts; `en` when left out.
    pub language: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PartnerResponse {
    pub id: i64,
    pub name: String,
    /// Its names in other languages, by language tag.
    pub names: BTreeMap<String, String>,
    pub country: String,
    pub website: Option<String>,
    pub timezone: String,
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<Partner> for PartnerResponse {
    fn from(p: Partner) -> Self {
        Self {
            id: p.id,
            names: p.names.to_map(),
            name: p.name,
            country: p.country,
            website: p.website,
            timezone: p.timezone,
            language: p.language,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

impl TryFrom<PartnerRequest> for PartnerDraft {
    type Error = FieldErrors;

    fn try_from(r: PartnerRequest) -> Result<Self, FieldErrors> {
        PartnerDraft::parse(&PartnerInput {
            name: r.name,
            names: r.names,
            country: r.country,
            website: r.website,
            timezone: r.timezone,
            language: r.language,
        })
    }
}

pub(crate) fn parse_id(what: &str, s: &str) -> Result<i64, AppError> {
    s.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| AppError::NotFound(format!("{what} {s:?}")))
}

/// List partner institutions by name.
#[utoipa::path(get, path = "/api/v1/partners", tag = "partners", security(("bearer" = [])),
    responses((status = 200, body = Vec<PartnerResponse>), (status = 401, body = Problem)))]
async fn list_partners(
    _: AdminUser,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<PartnerResponse>>> {
    let partners = people::partners(state.app()).await?;
    Ok(Json(partners.into_iter().map(Into::into).collect()))
}

/// Add a partner institution.
#[utoipa::path(post, path = "/api/v1/partners", tag = "partners", request_body = PartnerRequest,
    security(("bearer" = [])),
    responses((status = 201, body = PartnerResponse), (status = 401, body = Problem), (status = 409, body = Problem),
        (status = 422, body = Problem)))]
async fn create_partner(
    _: AdminUser,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<PartnerRequest>,
) -> ApiResult<(StatusCode, Json<PartnerResponse>)> {
    let draft = PartnerDraft::try_from(request)?;
    let partner = people::create_partner(state.app(), &draft).await?;
    Ok((StatusCode::CREATED, Json(partner.into())))
}

/// Read a partner.
#[utoipa::path(get, path = "/api/v1/partners/{id}", tag = "partners", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = PartnerResponse), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn get_partner(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<PartnerResponse>> {
    let id = parse_id("partner", &id)?;
    Ok(Json(people::partner(state.app(), id).await?.into()))
}

/// Replace a partner's details.
#[utoipa::path(put, path = "/api/v1/partners/{id}", tag = "partners", params(("id" = i64, Path)),
    request_body = PartnerRequest, security(("bearer" = [])),
    responses((status = 200, body = PartnerResponse), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 409, body = Problem), (status = 422, body = Problem)))]
async fn update_partner(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<PartnerRequest>,
) -> ApiResult<Json<PartnerResponse>> {
    let id = parse_id("partner", &id)?;
    let draft = PartnerDraft::try_from(request)?;
    Ok(Json(
        people::update_partner(state.app(), id, &draft)
            .await?
            .into(),
    ))
}

/// Delete a partner no subscriber belongs to (409 with the reason otherwise).
#[utoipa::path(delete, path = "/api/v1/partners/{id}", tag = "partners", params(("id" = i64, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
async fn delete_partner(
    _: AdminUser,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = parse_id("partner", &id)?;
    people::delete_partner(state.app(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}
