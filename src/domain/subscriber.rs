//! Partner institutions and subscribers as stored.

use super::{JoinedVia, SubscriberStatus};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partner {
    pub id: i64,
    /// The default name, shown in a language without one in `names`.
    pub name: String,
    /// Its names in other languages.
    pub names: super::Names,
    pub country: String,
    pub website: Option<String>,
    pub timezone: String,
    pub language: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Subscriber {
    /// Their institution named in their language, from its `names` (by partner id),
    /// where it has a name in it: what a digest's intro says.
    pub fn name_partner_in_language(
        &mut self,
        names: &std::collections::HashMap<i64, super::Names>,
    ) {
        if let (Some(id), Some(default)) = (self.partner_id, self.partner_name.as_deref())
            && let Some(names) = names.get(&id)
        {
            self.partner_name = Some(names.pick(default, &self.language).to_owned());
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscriber {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub partner_id: Option<i64>,
    pub partner_name: Option<String>,
    /// The zone to show event times in: the subscriber's own, else their partner's.
    pub partner_timezone: Option<String>,
    /// The subscriber's own time zone, when they have one.
    pub timezone: Option<String>,
    pub language: String,
    pub status: SubscriberStatus,
    pub joined_via: JoinedVia,
    pub consent_at: Option<DateTime<Utc>>,
    pub consent_source: Option<String>,
    pub consent_ip: Option<String>,
    pub attributes: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Subscriber {
    /// A confirmed reader with nothing else known: what a digest is rendered for when no
    /// one in particular is named (a preview), and what a delivery's claim fills in with
    /// the few columns a digest reads.
    pub fn blank(now: DateTime<Utc>) -> Self {
        Self {
            id: 0,
            email: String::new(),
            name: String::new(),
            partner_id: None,
            partner_name: None,
            partner_timezone: None,
            timezone: None,
            language: String::new(),
            status: SubscriberStatus::Confirmed,
            joined_via: JoinedVia::Admin,
            consent_at: None,
            consent_source: None,
            consent_ip: None,
            attributes: BTreeMap::new(),
            created_at: now,
            updated_at: now,
        }
    }
}

/// One line of a subscriber's history (joined, confirmed, bounced, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberEvent {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub detail: String,
}
