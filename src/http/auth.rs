//! Bearer-token authentication for the admin API.

use super::AppState;
use super::error::AppError;
use crate::services::users;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

/// Kept here for the entry point, which stores the configured token at start-up.
pub use crate::services::users::hash_token;

/// Proof that the request carried a valid admin token.
#[derive(Debug, Clone, Copy)]
pub struct AdminUser;

impl FromRequestParts<AppState> for AdminUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AppError::Unauthorized)?;
        if users::bearer_is_valid(&state.store, token, state.clock.now()).await? {
            Ok(AdminUser)
        } else {
            Err(AppError::Unauthorized)
        }
    }
}
