//! Domain values and entities. A value (an address, a slug, a draft) can only be
//! built through a `parse` that checks it, so it is valid wherever it travels. The
//! entities (a subscriber, a list, a digest, a user...) are what the store reads back;
//! services and adapters use them without knowing the store's rows.

mod category;
mod content_input;
mod digest;
mod email;
mod ids;
mod item;
mod list;
mod list_draft;
mod local_time;
mod names;
mod people;
mod period;
mod subscriber;
mod subscription;
mod text;
mod user;
mod version_input;

pub use category::Category;
pub use digest::{
    DeliveryCounts, DeliveryRecord, Digest, DigestStatus, DigestTrigger, DigestWindow,
    FailedDelivery, LocalWait, Section, Selection,
};

pub use content_input::{
    CategoryInput, EventInput, ItemInput, LOCAL_MINUTES, MAX_TRANSLATIONS, VersionInput,
    parse_event_time, parse_instant, parse_local_time,
};
pub use email::Email;
pub use ids::IdAuthority;
pub use item::{
    CategoryRef, Event, EventMode, Item, ItemDraft, ItemStatus, ItemVersion, NewCategory,
    VersionDraft, is_chinese, language_matches, primary_language,
};
pub use list::{MailingList, Membership};
pub use list_draft::{ListFields, ListInput, ScheduleInput};
pub use local_time::{
    FIRST_ZONE, READER_ZONES_SPAN, ZoneSend, local_instant, parse_time_of_day, parse_weekday,
    weekday_key, weekday_name, zone_sends,
};
pub use names::{NAME_CHARS, Names};
pub use people::{
    Admission, Consent, CronExpr, DeliveryZone, JoinedVia, Joining, ListDraft, MembershipStatus,
    OptIn, PartnerDraft, PartnerInput, Schedule, StatusChange, SubscriberDraft, SubscriberInput,
    SubscriberStatus, SubscriptionRequest, Visibility,
};
pub use period::IsoWeek;
pub use subscriber::{Partner, Subscriber, SubscriberEvent};
pub use subscription::{SubscriptionOutcome, TokenGrant, TokenPurpose};
pub use text::{Language, Slug, Text, TimeZone, WebUrl};
pub use user::{Role, User};
pub use version_input::{
    VersionPut, VersionRemoval, VersionWrite, parse_version_language, put_version, remove_version,
};

use serde::Serialize;
use std::fmt;

/// One problem with one input field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field, as named in the request (`event.starts_at`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// All the problems found in one input, so a client can fix them in one go.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(pub Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Keeps the value when it parsed, records the error under `field` when not.
    pub fn check<T>(&mut self, field: &str, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.add(field, message);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok(value)` when nothing was recorded.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, FieldErrors> {
        if self.is_empty() {
            value().ok_or(self)
        } else {
            Err(self)
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect();
        f.write_str(&parts.join("; "))
    }
}

impl std::error::Error for FieldErrors {}

impl From<FieldError> for FieldErrors {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}
