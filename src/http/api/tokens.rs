//! `/api/v1/tokens`: more bearer tokens, shown once and stored hashed.

use crate::domain::{FieldErrors, Text};
use crate::http::AppState;
use crate::http::auth::{AdminUser, generate_token, hash_token};
use crate::http::error::{ApiResult, Problem};
use crate::http::extract::ApiJson;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_token))
        .routes(routes!(revoke_token))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// What the token is for, e.g. "CMS import job".
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub name: String,
    /// The token. It is shown only now; the server keeps only its hash.
    pub token: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    pub token: String,
}

/// Create a new admin token.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenRequest,
    security(("bearer" = [])),
    responses((status = 201, body = TokenResponse), (status = 401, body = Problem), (status = 422, body = Problem)))]
async fn create_token(
    _: AdminUser,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<TokenRequest>,
) -> ApiResult<(StatusCode, Json<TokenResponse>)> {
    let mut errors = FieldErrors::new();
    let name = errors.check("name", Text::parse(&request.name, 200, true, false));
    let name = errors.finish(|| name)?;
    let token = generate_token();
    state
        .store
        .users()
        .ensure_api_token(name.as_str(), &hash_token(&token), state.clock.now())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            name: name.into_string(),
            token,
        }),
    ))
}

/// Revoke a token (any token, including the one making the call).
#[utoipa::path(post, path = "/api/v1/tokens/revoke", tag = "tokens", request_body = RevokeRequest,
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = Problem), (status = 404, body = Problem)))]
async fn revoke_token(
    _: AdminUser,
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RevokeRequest>,
) -> ApiResult<StatusCode> {
    if state
        .store
        .users()
        .revoke_api_token(&hash_token(&request.token))
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(crate::http::error::AppError::NotFound("token".into()))
    }
}
