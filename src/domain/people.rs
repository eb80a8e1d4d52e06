//! Partner institutions, subscribers, lists and memberships.

use super::{Email, Language, Slug, Text, TimeZone};
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "must be one of {} (got {s:?})",
                        [$(concat!("\"", $text, "\"")),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// Where a subscriber's address stands.
    SubscriberStatus {
        Pending => "pending",
        Confirmed => "confirmed",
        Unsubscribed => "unsubscribed",
        Bounced => "bounced",
        Blocked => "blocked",
    }
);

string_enum!(
    /// How a subscriber came in.
    JoinedVia { Form => "form", Import => "import", Admin => "admin" }
);

string_enum!(
    /// A subscriber's standing on one list.
    MembershipStatus { Pending => "pending", Confirmed => "confirmed", Unsubscribed => "unsubscribed" }
);

string_enum!(
    /// Whether joining a list needs a confirmed address first.
    OptIn { Double => "double", Single => "single" }
);

string_enum!(
    /// Whether a list can be joined from the public form.
    Visibility { Public => "public", Private => "private" }
);

/// A checked partner institution.
#[derive(Debug, Clone)]
pub struct PartnerDraft {
    pub name: Text,
    pub country: Text,
    pub website: Option<String>,
    pub timezone: TimeZone,
    pub language: Language,
}

/// Who gave consent, when and how; recorded with the subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub source: String,
    pub ip: Option<String>,
}

/// A checked subscriber, as an admin writes it.
#[derive(Debug, Clone)]
pub struct SubscriberDraft {
    pub email: Email,
    pub name: Text,
    /// A partner id.
    pub partner: Option<i64>,
    pub language: Language,
    /// The subscriber's own zone; their partner's is used when this is empty.
    pub timezone: Option<TimeZone>,
    pub attributes: std::collections::BTreeMap<String, String>,
}

/// A checked list.
#[derive(Debug, Clone)]
pub struct ListDraft {
    pub slug: Slug,
    pub name: Text,
    pub description: Text,
    pub categories: Vec<Slug>,
    pub opt_in: OptIn,
    pub visibility: Visibility,
    pub schedule: Schedule,
}

/// When a list's digest goes out: a cron expression with seconds
/// (`sec min hour day-of-month month day-of-week`) read in an IANA time zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub cron: CronExpr,
    pub timezone: TimeZone,
    /// Fewer items than this and the digest is skipped.
    pub min_items: u32,
    /// How late a missed window may still be sent.
    pub grace_minutes: u32,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            cron: CronExpr::parse(CronExpr::DEFAULT).expect("the default schedule parses"),
            timezone: TimeZone::default(),
            min_items: 1,
            grace_minutes: 24 * 60,
        }
    }
}

/// A cron expression the scheduler accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpr(String);

impl CronExpr {
    /// Mondays at 08:00.
    pub const DEFAULT: &'static str = "0 0 8 * * Mon";

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        Self::parser()
            .parse(s)
            .map(|_| Self(s.to_owned()))
            .map_err(|e| {
                format!("must be a cron expression with seconds such as \"0 0 8 * * Mon\" ({e})")
            })
    }

    /// The same parser settings as tokio-cron-scheduler's, so what passes here runs there.
    pub fn parser() -> croner::parser::CronParser {
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .dom_and_dow(true)
            .build()
    }

    pub fn cron(&self) -> croner::Cron {
        Self::parser().parse(&self.0).expect("checked when built")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last time the schedule fired at or before `at`, in the zone.
    pub fn last_fire_before(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron()
            .find_previous_occurrence(&at.with_timezone(&tz), true)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }

    /// The next time the schedule fires after `at`.
    pub fn next_fire_after(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        tz: chrono_tz::Tz,
    ) -> Option<chrono::DateTime<chrono::Utc>> {
        self.cron()
            .find_next_occurrence(&at.with_timezone(&tz), false)
            .ok()
            .map(|t| t.with_timezone(&chrono::Utc))
    }
}
