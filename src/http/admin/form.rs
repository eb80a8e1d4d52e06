//! The posted form of an admin page, parsed once.
//!
//! The session check reads every non-upload form body for its CSRF token; it leaves
//! the parsed [`FormData`] in the request's extensions, and [`Posted`] takes it from
//! there instead of parsing the body a second time. Where no check ran (the sign-in
//! form), the body is read here.
//!
//! `page::FormData`'s own extractor could do the same (take the extension first); until
//! it does, the handlers that want the single parse ask for `Posted`.

use super::page::FormData;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};

/// The form of a POST, as the session check parsed it.
pub struct Posted(pub FormData);

impl<S: Send + Sync> FromRequest<S> for Posted {
    type Rejection = Response;

    async fn from_request(mut req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(parsed) = req.extensions_mut().remove::<FormData>() {
            return Ok(Self(parsed));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Self(FormData::parse(&bytes)))
    }
}
