//! The rules of the application, once. The API, the admin pages, the command line and
//! the workers are adapters over these functions: they parse input into domain types,
//! call a service, and turn its answer (or its [`ServiceError`]) into their own.

pub mod content;
pub mod digests;
pub mod import;
pub mod lists;
pub mod people;
pub mod retention;
pub mod subscriptions;
pub mod users;

use crate::domain::{FieldError, FieldErrors};
use crate::store::StoreError;

/// Why a service said no, told apart so each adapter can answer in its own terms
/// (problem+json, a form with errors, an exit code with a message).
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// The thing named does not exist (or may not be seen).
    #[error("{0} not found")]
    NotFound(String),
    /// The request clashes with what is stored (a taken slug, a non-empty category).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// The input is not valid; each bad field with what is wrong with it.
    #[error("invalid input: {0}")]
    Invalid(FieldErrors),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Something the service needs is not there now (the database, the mail server);
    /// trying again later may work.
    #[error("{0}")]
    Unavailable(String),
    /// A failure the caller cannot act on; logged by the adapter, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

impl ServiceError {
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn conflict(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Conflict {
            field: field.into(),
            message: message.into(),
        }
    }

    /// One bad field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(
            FieldError {
                field: field.into(),
                message: message.into(),
            }
            .into(),
        )
    }

    /// The exit code the command line gives this error: 2 for input the user can
    /// correct, 3 when something named is missing, 4 for a conflict, 1 otherwise.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Invalid(_) => 2,
            Self::NotFound(_) => 3,
            Self::Conflict { .. } | Self::Forbidden(_) => 4,
            Self::Unavailable(_) | Self::Internal(_) => 1,
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict { field, message } => Self::Conflict { field, message },
            StoreError::Invalid { field, message } => {
                Self::Invalid(FieldError { field, message }.into())
            }
            StoreError::Other(e) => Self::Internal(e),
        }
    }
}

impl From<FieldErrors> for ServiceError {
    fn from(e: FieldErrors) -> Self {
        Self::Invalid(e)
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(anyhow::Error::new(e))
    }
}
