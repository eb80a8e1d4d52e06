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
}
