//! People who sign in to the admin pages.

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a signed-in person may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Content: items and categories.
    Editor,
    /// Everything: content, people, lists, digests and users.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Editor => "editor",
            Self::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s.trim() {
            "editor" => Ok(Self::Editor),
            "admin" => Ok(Self::Admin),
            other => Err(format!("must be \"admin\" or \"editor\" (got {other:?})")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct User {
    pub id: i64,
    pub name: String,
    pub password_hash: String,
    pub role: Role,
    pub disabled: bool,
    pub failed_sign_ins: i64,
    pub locked_until: Option<DateTime<Utc>>,
    pub last_sign_in_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}
