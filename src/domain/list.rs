//! Mailing lists and who is on them.

use super::{MembershipStatus, OptIn, Schedule, Visibility};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailingList {
    pub id: i64,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Slugs of the categories the list covers (with their descendants).
    pub categories: Vec<String>,
    pub opt_in: OptIn,
    pub visibility: Visibility,
    pub schedule: Schedule,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A subscriber's place on one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub list_id: i64,
    pub list_slug: String,
    pub list_name: String,
    pub status: MembershipStatus,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub unsubscribed_at: Option<DateTime<Utc>>,
}
