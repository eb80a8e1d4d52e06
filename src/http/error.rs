//! One error type for the API, rendered as RFC 9457 `application/problem+json`.

use crate::domain::{FieldError, FieldErrors};
use crate::services::ServiceError;
use crate::store::StoreError;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid input: {0}")]
    Validation(FieldErrors),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("request body larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("too many requests; try again later")]
    TooManyRequests,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The body of every API error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem (`about:blank` for plain HTTP meanings).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// For 422: each bad field and what is wrong with it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// A store error reads as the service error it becomes: one mapping, in services.
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        ServiceError::from(e).into()
    }
}

impl From<ServiceError> for AppError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound(what) => Self::NotFound(what),
            ServiceError::Conflict { field, message } => Self::Conflict { field, message },
            ServiceError::Invalid(errors) => Self::Validation(errors),
            ServiceError::Forbidden(why) => Self::Forbidden(why),
            ServiceError::Unavailable(why) => Self::Unavailable(why),
            ServiceError::Internal(e) => Self::Internal(e),
        }
    }
}

impl From<FieldErrors> for AppError {
    fn from(e: FieldErrors) -> Self {
        Self::Validation(e)
    }
}

impl AppError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (detail, errors) = match self {
            Self::Validation(errors) => (
                "the request has invalid fields; see errors".to_owned(),
                errors.0,
            ),
            Self::Conflict { field, message } => (
                format!("{field}: {message}"),
                vec![FieldError { field, message }],
            ),
            Self::Internal(e) => {
                // Logged here, once, with its chain; the client learns nothing of it.
                tracing::error!(error = format!("{e:#}"), "internal error");
                (
                    "internal error; the server log has the details".to_owned(),
                    Vec::new(),
                )
            }
            other => (other.to_string(), Vec::new()),
        };
        let problem = Problem {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail,
            errors,
        };
        let mut response = (status, Json(problem)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"newsdesk\""),
            );
        }
        response
    }
}

pub type ApiResult<T> = Result<T, AppError>;
