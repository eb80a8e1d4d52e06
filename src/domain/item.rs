use super::{Language, Slug, Text, TimeZone};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether readers can see an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Draft,
    Published,
}

impl ItemStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Published => "published",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "draft" => Ok(Self::Draft),
            "published" => Ok(Self::Published),
            _ => Err(format!("must be \"draft\" or \"published\" (got {s:?})")),
        }
    }
}

/// How people take part in an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventMode {
    InPerson,
    Online,
    Hybrid,
}

impl EventMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InPerson => "in_person",
            Self::Online => "online",
            Self::Hybrid => "hybrid",
        }
    }

    /// Words for people, in pages and feeds.
    pub fn label(self) -> &'static str {
        match self {
            Self::InPerson => "In person",
            Self::Online => "Online",
            Self::Hybrid => "Hybrid (in person and online)",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "in_person" => Ok(Self::InPerson),
            "online" => Ok(Self::Online),
            "hybrid" => Ok(Self::Hybrid),
            _ => Err(format!(
                "must be \"in_person\", \"online\" or \"hybrid\" (got {s:?})"
            )),
        }
    }
}

/// The event block of an item. Times are instants; `timezone` says where they are
/// shown by default.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub timezone: TimeZone,
    pub venue: Option<String>,
    pub online_url: Option<String>,
    pub mode: EventMode,
}

impl Event {
    /// Checks what holds between the fields; each field was parsed on its own before.
    pub fn validate(&self) -> Vec<(&'static str, String)> {
        let mut errors = Vec::new();
        if let Some(end) = self.ends_at
            && end < self.starts_at
        {
            errors.push(("event.ends_at", "must not be before event.starts_at".into()));
        }
        let needs_url = matches!(self.mode, EventMode::Online | EventMode::Hybrid);
        let needs_venue = matches!(self.mode, EventMode::InPerson | EventMode::Hybrid);
        if needs_url && self.online_url.is_none() {
            errors.push((
                "event.online_url",
                format!("is required for a {} event", self.mode.as_str()),
            ));
        }
        if needs_venue && self.venue.is_none() {
            errors.push((
                "event.venue",
                format!("is required for a {} event", self.mode.as_str()),
            ));
        }
        errors
    }
}

/// A category as items and feeds refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CategoryRef {
    pub slug: String,
    pub name: String,
}

/// A stored news item, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub body_markdown: String,
    pub body_html: String,
    pub author: String,
    pub org_unit: String,
    pub language: String,
    pub status: ItemStatus,
    pub published_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub categories: Vec<CategoryRef>,
    pub tags: Vec<String>,
    pub event: Option<Event>,
}

impl Item {
    /// Published and its time has come.
    pub fn is_visible_at(&self, now: DateTime<Utc>) -> bool {
        self.status == ItemStatus::Published && self.published_at.is_some_and(|p| p <= now)
    }
}

/// A checked item, ready to be stored (create or full update).
#[derive(Debug, Clone)]
pub struct ItemDraft {
    pub slug: Slug,
    pub title: Text,
    pub summary: Text,
    pub body_markdown: Text,
    pub author: Text,
    pub org_unit: Text,
    pub language: Language,
    pub categories: Vec<Slug>,
    pub tags: Vec<Text>,
    pub status: ItemStatus,
    /// When `status` is published and this is empty, the store uses "now".
    pub published_at: Option<DateTime<Utc>>,
    pub event: Option<Event>,
}

/// A checked category.
#[derive(Debug, Clone)]
pub struct NewCategory {
    pub slug: Slug,
    pub name: Text,
    pub description: Text,
    pub parent: Option<Slug>,
}
