//! Partner institutions, subscribers, lists and memberships.

use super::{Email, FieldErrors, Language, Names, Slug, Text, TimeZone, WebUrl};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

string_enum!(
    /// Whose clock a list's schedule is read on: the list's zone (one moment for every
    /// reader), or each reader's (their own zone, else their institution's, else the
    /// list's), the digest still built once per week (see `domain::local_time`).
    DeliveryZone { ListZone => "list_zone", ReaderZone => "reader_zone" }
);

/// A checked partner institution.
#[derive(Debug, Clone)]
pub struct PartnerDraft {
    pub name: Text,
    /// Its names in other languages (`names.zh`).
    pub names: Names,
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
    /// Names in other languages, replacing the stored set.
    pub names: Names,
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
    /// How late a missed window may still be sent; with reader-local delivery, how
    /// late each reader's delivery may still go.
    pub grace_minutes: u32,
    /// The list's zone, or each reader's.
    pub delivery: DeliveryZone,
}

impl Default for Schedule {
    fn default() -> Self {
        Self {
            cron: CronExpr::parse(CronExpr::DEFAULT).expect("the default schedule parses"),
            timezone: TimeZone::default(),
            min_items: 1,
            grace_minutes: 24 * 60,
            delivery: DeliveryZone::ListZone,
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
        // Whole seconds: croner carries the fraction of `at` into its answer, and the
        // next fire time would differ on every read.
        self.cron()
            .find_next_occurrence(&at.with_timezone(&tz), false)
            .ok()
            .map(|t| chrono::SubsecRound::trunc_subsecs(t.with_timezone(&chrono::Utc), 0))
    }
}

/// How someone comes to a list. The opt-in rule
/// (`services::subscriptions::admission`) answers differently for each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joining {
    /// The public form: the reader asks for themselves.
    Form,
    /// The preference page, reached through a mailed link.
    Preferences,
    /// An admin puts them on the list (API or admin pages).
    Admin,
    /// A CSV import.
    Import,
}

/// What the opt-in rule decided for one person and one list; the store carries it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The standing on the list to write; `None` leaves it as it is.
    pub membership: Option<MembershipStatus>,
    /// Whether a confirmation link is mailed now.
    pub confirm_by_mail: bool,
}

impl Admission {
    /// Nothing changes and nothing is sent.
    pub const UNCHANGED: Self = Self {
        membership: None,
        confirm_by_mail: false,
    };
    /// On the list, confirmed, at once.
    pub const CONFIRMED: Self = Self {
        membership: Some(MembershipStatus::Confirmed),
        confirm_by_mail: false,
    };
    /// Pending on the list, and a confirmation link goes out.
    pub const PENDING_MAILED: Self = Self {
        membership: Some(MembershipStatus::Pending),
        confirm_by_mail: true,
    };
    /// Pending on the list, nothing sent (imports send no mail).
    pub const PENDING_SILENT: Self = Self {
        membership: Some(MembershipStatus::Pending),
        confirm_by_mail: false,
    };
    /// The standing stays, and a confirmation link goes out again.
    pub const REMINDED: Self = Self {
        membership: None,
        confirm_by_mail: true,
    };
}

/// A partner as typed in (an API body, an admin form), before it is checked.
#[derive(Debug, Clone, Default)]
pub struct PartnerInput {
    pub name: String,
    /// Names in other languages by tag; blank ones are errors (`names.TAG`).
    pub names: std::collections::BTreeMap<String, String>,
    pub country: String,
    pub website: Option<String>,
    /// IANA time zone; `UTC` when left out.
    pub timezone: Option<String>,
    /// `en` when left out.
    pub language: Option<String>,
}

impl PartnerDraft {
    /// Checks every field, reporting all the problems at once.
    pub fn parse(input: &PartnerInput) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = errors.check("name", Text::parse(&input.name, 200, true, false));
        let names = Names::parse(&input.names, &mut errors);
        let country = errors.check("country", Text::parse(&input.country, 100, false, false));
        let website = match input.website.as_deref().filter(|w| !w.trim().is_empty()) {
            Some(w) => errors
                .check("website", WebUrl::parse(w))
                .map(|u| Some(u.as_str().to_owned())),
            None => Some(None),
        };
        let timezone = match input.timezone.as_deref() {
            Some(t) => errors.check("timezone", TimeZone::parse(t)),
            None => Some(TimeZone::default()),
        };
        let language = match input.language.as_deref() {
            Some(l) => errors.check("language", Language::parse(l)),
            None => Some(Language::default()),
        };
        errors.finish(|| {
            Some(Self {
                name: name?,
                names: names?,
                country: country?,
                website: website?,
                timezone: timezone?,
                language: language?,
            })
        })
    }
}

/// A subscriber as typed in (an API body, an admin form), before it is checked.
#[derive(Debug, Clone, Default)]
pub struct SubscriberInput {
    pub email: String,
    pub name: String,
    pub partner_id: Option<i64>,
    /// `en` when left out.
    pub language: Option<String>,
    /// The partner's zone is used when left out.
    pub timezone: Option<String>,
    pub attributes: BTreeMap<String, String>,
    /// How consent was given, when it was.
    pub consent_source: Option<String>,
}

impl SubscriberDraft {
    /// Checks every field, reporting all the problems at once; with the stated
    /// consent, when there is one.
    pub fn parse(input: &SubscriberInput) -> Result<(Self, Option<Consent>), FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = errors.check("email", Email::parse(&input.email));
        let name = errors.check("name", Text::parse(&input.name, 200, false, false));
        let language = match input.language.as_deref() {
            Some(l) => errors.check("language", Language::parse(l)),
            None => Some(Language::default()),
        };
        check_attributes(&input.attributes, &mut errors);
        let timezone = match input.timezone.as_deref() {
            Some(t) => errors.check("timezone", TimeZone::parse(t)).map(Some),
            None => Some(None),
        };
        let consent = match input.consent_source.as_deref() {
            Some(c) => errors
                .check("consent_source", Consent::parse_source(c))
                .map(Some),
            None => Some(None),
        };
        errors.finish(|| {
            Some((
                Self {
                    email: email?,
                    name: name?,
                    partner: input.partner_id,
                    language: language?,
                    timezone: timezone?,
                    attributes: input.attributes.clone(),
                },
                consent?,
            ))
        })
    }
}

impl Consent {
    /// A consent an admin states ("signed partner agreement 2023"): required text of
    /// at most 300 characters.
    pub fn parse_source(source: &str) -> Result<Self, String> {
        Text::parse(source, 300, true, false).map(|t| Self {
            source: t.into_string(),
            ip: None,
        })
    }
}

/// Extra attributes of a subscriber: at most 50, names of 1 to 100 characters and
/// values of at most 1000, without control characters.
fn check_attributes(attributes: &BTreeMap<String, String>, errors: &mut FieldErrors) {
    if attributes.len() > 50 {
        errors.add("attributes", "must hold at most 50 entries");
    }
    for (k, v) in attributes {
        if k.is_empty() || k.len() > 100 || k.chars().any(char::is_control) {
            errors.add(
                format!("attributes.{k}"),
                "names must be 1 to 100 characters without control characters",
            );
        }
        if v.chars().count() > 1000 || v.chars().any(char::is_control) {
            errors.add(
                format!("attributes.{k}"),
                "must be at most 1000 characters without control characters",
            );
        }
    }
}

/// A subscriber's status set by an admin, with why.
#[derive(Debug, Clone)]
pub struct StatusChange {
    pub status: SubscriberStatus,
    /// Empty when none was given.
    pub reason: Text,
}

impl StatusChange {
    pub fn parse(status: &str, reason: &str) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let status = errors.check("status", SubscriberStatus::parse(status));
        let reason = errors.check("reason", Text::parse(reason, 300, false, false));
        errors.finish(|| {
            Some(Self {
                status: status?,
                reason: reason?,
            })
        })
    }
}

/// A checked request from the public form to join a list.
#[derive(Debug, Clone)]
pub struct SubscriptionRequest {
    pub email: Email,
    pub name: Text,
    pub language: Language,
    /// The address the request came from, kept with the consent.
    pub ip: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn the_next_fire_time_is_in_whole_seconds_whatever_the_time_asked() {
        let cron = CronExpr::parse("0 0 8 * * Mon").unwrap();
        let at = chrono::Utc
            .with_ymd_and_hms(2023, 11, 1, 9, 30, 15)
            .unwrap()
            + chrono::Duration::nanoseconds(366_313_095);
        let next = cron.next_fire_after(at, chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(
            next,
            chrono::Utc.with_ymd_and_hms(2023, 11, 6, 0, 0, 0).unwrap()
        );
        assert_eq!(
            next,
            cron.next_fire_after(
                at + chrono::Duration::milliseconds(20),
                chrono_tz::Asia::Shanghai
            )
            .unwrap()
        );
    }
}
