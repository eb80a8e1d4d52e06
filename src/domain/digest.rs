//! Digests: what a list's subscribers are sent for a period, and how its deliveries went.

use super::Item;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestStatus {
    /// Built; deliveries under way.
    Sending,
    /// Every delivery reached an end (sent, failed or skipped).
    Sent,
    /// Nothing new (or nobody to send to): recorded, nothing sent.
    Skipped,
    /// The service was down at the time and the grace period passed.
    Missed,
    Cancelled,
}

impl DigestStatus {
    /// The name stored and shown (`sending`, `sent`, ...), as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Skipped => "skipped",
            Self::Missed => "missed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "sending" => Self::Sending,
            "sent" => Self::Sent,
            "skipped" => Self::Skipped,
            "missed" => Self::Missed,
            "cancelled" => Self::Cancelled,
            _ => return Err(format!("unknown digest status {s:?}")),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DigestTrigger {
    /// The schedule fired on time.
    Schedule,
    /// The schedule's window was caught up after a restart, within the grace period.
    Late,
    /// An admin or the command line.
    Manual,
}

impl DigestTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Schedule => "schedule",
            Self::Late => "late",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        Ok(match s {
            "schedule" => Self::Schedule,
            "late" => Self::Late,
            "manual" => Self::Manual,
            _ => return Err(format!("unknown digest trigger {s:?}")),
        })
    }
}

/// Where in a digest an item appears.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    ComingUp,
    News,
}

impl Section {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ComingUp => "coming_up",
            Self::News => "news",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digest {
    pub id: i64,
    pub list_id: i64,
    pub period: String,
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub news_since: DateTime<Utc>,
    pub status: DigestStatus,
    pub trigger: DigestTrigger,
    pub scheduled_for: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub completed_at: Option<DateTime<Utc>>,
    pub note: String,
    /// Its outbox is still being built (a chunk of readers at a time): nothing of it is
    /// sent until the build ends.
    pub building: bool,
    /// Its per-recipient rows were pruned after the retention period; its totals stay.
    pub pruned: bool,
    /// A reader-local digest: the local date and time each reader's delivery is due
    /// at in their own zone. `None`: every delivery was due when it was built.
    pub send_local: Option<chrono::NaiveDateTime>,
}

/// The window a digest covers.
impl Digest {
    /// Whether it is in its list's archive: it went out (or is going out). Only these
    /// have a page of their own there, and only when the list has a public archive.
    pub fn is_published(&self) -> bool {
        matches!(self.status, DigestStatus::Sent | DigestStatus::Sending)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestWindow {
    pub period_start: DateTime<Utc>,
    pub period_end: DateTime<Utc>,
    pub news_since: DateTime<Utc>,
}

/// What a digest holds, before it is stored.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub coming_up: Vec<Item>,
    pub news: Vec<Item>,
}

impl Selection {
    pub fn len(&self) -> usize {
        self.coming_up.len() + self.news.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Deliveries of a digest by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeliveryCounts {
    pub pending: u64,
    /// Claimed by a worker right now.
    pub sending: u64,
    pub sent: u64,
    pub failed: u64,
    /// Nothing new for the reader: no message.
    pub skipped: u64,
    /// Not sent: first taken more than the list's grace period after the reader's
    /// local send time (reader-local digests).
    pub missed: u64,
    pub cancelled: u64,
}

/// The deliveries of a reader-local digest that are not due yet: each waits for its
/// reader's local send time. Times are the database's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalWait {
    /// How many wait.
    pub count: u64,
    /// When the first of them is due.
    pub next_due: DateTime<Utc>,
    /// The database's clock when this was read.
    pub now: DateTime<Utc>,
}

/// A delivery of a digest that gave up, with the reader it was for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedDelivery {
    pub subscriber_id: i64,
    pub email: String,
    pub attempts: u32,
    pub error: String,
    pub permanent: bool,
}

/// One digest delivery to one subscriber, as a subscriber's history shows it.
#[derive(Debug, Clone)]
pub struct DeliveryRecord {
    pub digest_id: i64,
    pub list_name: String,
    pub period: String,
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub permanent_failure: bool,
}
