//! Mailing lists and who is on them.

use super::{MembershipStatus, Names, OptIn, Schedule, Visibility};
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailingList {
    pub id: i64,
    pub slug: String,
    /// The default name: shown in a language without a name in `names`.
    pub name: String,
    /// Its names in other languages.
    pub names: Names,
    pub description: String,
    /// Slugs of the categories the list covers (with their descendants).
    pub categories: Vec<String>,
    pub opt_in: OptIn,
    pub visibility: Visibility,
    pub schedule: Schedule,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl MailingList {
    /// The list's name for a reader of `language` (see [`Names::pick`]).
    pub fn name_in(&self, language: &str) -> &str {
        self.names.pick(&self.name, language)
    }

    /// Whether its digests have a public archive (`/digests/{slug}`): only a public
    /// list's do; a private list's archive is "not found" like a missing one.
    pub fn has_public_archive(&self) -> bool {
        self.visibility == Visibility::Public
    }
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
