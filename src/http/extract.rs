//! Extractors that turn bad input into problem responses naming the field.

use super::AppState;
use super::error::AppError;
use crate::domain::FieldErrors;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde::de::DeserializeOwned;

/// A JSON body. Wrong media type: 415; too large: 413; not JSON: 400; JSON of the
/// wrong shape: 422 naming the field (`event.starts_at`) and what was expected.
pub struct ApiJson<T>(pub T);

impl<T> FromRequest<AppState> for ApiJson<T>
where
    T: DeserializeOwned,
{
    type Rejection = AppError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !(essence == "application/json" || essence.ends_with("+json")) {
            return Err(AppError::UnsupportedMediaType(format!(
                "expected Content-Type: application/json (got {:?})",
                content_type
            )));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                AppError::PayloadTooLarge(state.settings.max_body_bytes)
            } else {
                AppError::BadRequest(format!("could not read the request body: {rejection}"))
            }
        })?;
        parse_json(&bytes).map(ApiJson)
    }
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            AppError::BadRequest(format!("the body is not valid JSON: {inner}"))
        } else {
            let mut errors = FieldErrors::new();
            // serde's message ends with the position; the field name says more.
            let message = inner.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_owned();
            // A field left out is named itself, not the object around it (which is
            // `body` at the top: the request's body).
            let missing = message
                .strip_prefix("missing field `")
                .and_then(|m| m.split('`').next());
            let field = match (missing, path.as_str()) {
                (Some(name), ".") => name.to_owned(),
                (Some(name), around) => format!("{around}.{name}"),
                (None, ".") => "body".to_owned(),
                (None, _) => path,
            };
            errors.add(field, message);
            AppError::Validation(errors)
        }
    })
}

/// A query string. One that cannot be read (a parameter given twice, bytes that are
/// not UTF-8): 400 as problem+json, like every other API error. The values are checked
/// by the handler, which answers 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| AppError::BadRequest(format!("the query string could not be read: {e}")))
    }
}

/// Serde helpers for numbers in request bodies.
pub mod whole {
    use serde::{Deserialize, Deserializer, de::Error};

    /// A whole number, written as JSON reads it: `12` or `12.0` (both are the same
    /// number in JSON, and JSON Schema's `integer` takes both), not `12.5`.
    fn read<'de, D: Deserializer<'de>, N: TryFrom<i64> + TryFrom<u64>>(
        number: serde_json::Number,
    ) -> Result<N, D::Error> {
        let out_of_range = || D::Error::custom(format!("{number} is out of range"));
        if let Some(n) = number.as_i64() {
            return N::try_from(n).map_err(|_| out_of_range());
        }
        if let Some(n) = number.as_u64() {
            return N::try_from(n).map_err(|_| out_of_range());
        }
        match number.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9.007_199_254_740_992e15 => {
                N::try_from(f as i64).map_err(|_| out_of_range())
            }
            _ => Err(D::Error::custom(format!(
                "invalid type: {number}, expected a whole number"
            ))),
        }
    }

    pub fn required<'de, D, N>(d: D) -> Result<N, D::Error>
    where
        D: Deserializer<'de>,
        N: TryFrom<i64> + TryFrom<u64>,
    {
        read::<D, N>(serde_json::Number::deserialize(d)?)
    }

    pub fn optional<'de, D, N>(d: D) -> Result<Option<N>, D::Error>
    where
        D: Deserializer<'de>,
        N: TryFrom<i64> + TryFrom<u64>,
    {
        match Option::<serde_json::Number>::deserialize(d)? {
            Some(n) => read::<D, N>(n).map(Some),
            None => Ok(None),
        }
    }
}
