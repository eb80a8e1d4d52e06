//! Categories and items as written by someone (the API's JSON, an admin form), before
//! they are checked: each parses into a draft the store accepts, reporting every bad
//! field at once. The API and the admin pages both fill these, so the rules are the
//! same whichever way content comes in.

use super::{
    Event, EventMode, FieldErrors, ItemDraft, ItemStatus, Language, NAME_CHARS, Names, NewCategory,
    Slug, Text, TimeZone, VersionDraft, WebUrl,
};
use chrono::{DateTime, NaiveDateTime, TimeZone as _, Utc};
use std::collections::BTreeMap;

/// A category as written.
#[derive(Debug, Clone, Default)]
pub struct CategoryInput {
    /// `None`: made from the name.
    pub slug: Option<String>,
    pub name: String,
    /// Names in other languages by language tag.
    pub names: BTreeMap<String, String>,
    pub description: String,
    /// Slug of the parent category; a top-level category when `None`.
    pub parent: Option<String>,
}

impl CategoryInput {
    pub fn parse(self) -> Result<NewCategory, FieldErrors> {
        let mut errors = FieldErrors::new();
        let slug = match &self.slug {
            Some(s) => errors.check("slug", Slug::parse(s)),
            None => Some(Slug::from_title(&self.name)),
        };
        let name = errors.check("name", Text::parse(&self.name, NAME_CHARS, true, false));
        let names = Names::parse(&self.names, &mut errors);
        let description = errors.check(
            "description",
            Text::parse(&self.description, 2000, false, true),
        );
        let parent = match self.parent.as_deref() {
            Some(p) => errors.check("parent", Slug::parse(p)).map(Some),
            None => Some(None),
        };
        errors.finish(|| {
            Some(NewCategory {
                slug: slug?,
                name: name?,
                names: names?,
                description: description?,
                parent: parent?,
            })
        })
    }
}

/// An item as written (create, or full replacement on update).
#[derive(Debug, Clone, Default)]
pub struct ItemInput {
    /// `None`: made from the title.
    pub slug: Option<String>,
    pub title: String,
    pub summary: String,
    /// Markdown.
    pub body: String,
    pub author: String,
    pub org_unit: String,
    /// `None`: English.
    pub language: Option<String>,
    pub categories: Vec<String>,
    pub tags: Vec<String>,
    /// `None`: a draft.
    pub status: Option<String>,
    /// RFC 3339.
    pub published_at: Option<String>,
    pub event: Option<EventInput>,
    /// The other language versions.
    pub translations: Vec<VersionInput>,
}

/// One language version as written.
#[derive(Debug, Clone, Default)]
pub struct VersionInput {
    pub language: String,
    pub title: String,
    pub summary: String,
    /// Markdown.
    pub body: String,
    pub venue: Option<String>,
    pub mode_text: Option<String>,
}

/// At most this many versions besides the original.
pub const MAX_TRANSLATIONS: usize = 20;

/// The event block as written.
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    /// RFC 3339 with an offset, or a local date-time read in `timezone`.
    pub starts_at: String,
    pub ends_at: Option<String>,
    pub timezone: String,
    pub venue: Option<String>,
    pub online_url: Option<String>,
    pub mode: String,
    /// The original's own words on how to take part; blank: the mode's standard words.
    pub mode_text: Option<String>,
}

impl ItemInput {
    /// Checks every field and reports all problems at once.
    pub fn parse(self) -> Result<ItemDraft, FieldErrors> {
        let mut errors = FieldErrors::new();
        let title = errors.check("title", Text::parse(&self.title, 300, true, false));
        let slug = match &self.slug {
            Some(s) => errors.check("slug", Slug::parse(s)),
            None => title.as_ref().map(|t| Slug::from_title(t.as_str())),
        };
        let summary = errors.check("summary", Text::parse(&self.summary, 2000, false, true));
        let body = errors.check("body", Text::parse(&self.body, 200_000, false, true));
        let author = errors.check("author", Text::parse(&self.author, 200, false, false));
        let org_unit = errors.check("org_unit", Text::parse(&self.org_unit, 200, false, false));
        let language = match &self.language {
            Some(l) => errors.check("language", Language::parse(l)),
            None => Some(Language::default()),
        };
        let categories = parse_categories(&self.categories, &mut errors);
        let tags = parse_tags(&self.tags, &mut errors);
        let status = match &self.status {
            Some(s) => errors.check("status", ItemStatus::parse(s)),
            None => Some(ItemStatus::Draft),
        };
        let published_at = match &self.published_at {
            Some(p) => errors.check("published_at", parse_instant(p)).map(Some),
            None => Some(None),
        };
        let has_event = self.event.is_some();
        let event = match self.event {
            None => Some(None),
            Some(e) => e.parse(&mut errors).map(Some),
        };
        let translations =
            parse_translations(self.translations, language.as_ref(), has_event, &mut errors);
        errors.finish(|| {
            Some(ItemDraft {
                slug: slug?,
                slug_from_title: self.slug.is_none(),
                title: title?,
                summary: summary?,
                body_markdown: body?,
                author: author?,
                org_unit: org_unit?,
                language: language?,
                categories,
                tags,
                status: status?,
                published_at: published_at?,
                event: event?,
                translations,
            })
        })
    }
}

/// Checks the versions besides the original: each field, no language twice, none in
/// the original's language, venue and mode text only for events.
fn parse_translations(
    inputs: Vec<VersionInput>,
    original: Option<&Language>,
    has_event: bool,
    errors: &mut FieldErrors,
) -> Vec<VersionDraft> {
    if inputs.len() > MAX_TRANSLATIONS {
        errors.add(
            "translations",
            format!("must hold at most {MAX_TRANSLATIONS} versions"),
        );
    }
    let mut seen: Vec<String> = original
        .map(|l| l.as_str().to_ascii_lowercase())
        .into_iter()
        .collect();
    let mut drafts = Vec::new();
    for (n, v) in inputs.into_iter().enumerate() {
        let field = |name: &str| format!("translations[{n}].{name}");
        let language = errors.check(&field("language"), Language::parse(v.language.trim()));
        if let Some(l) = &language {
            let key = l.as_str().to_ascii_lowercase();
            if original.is_some_and(|o| o.as_str().eq_ignore_ascii_case(&key)) {
                errors.add(
                    field("language"),
                    format!(
                        "is the original's language ({key}, the item's `language`, which is en \
                         when left out): the original's words are the item's own title, \
                         summary and body, and an item has one original"
                    ),
                );
            } else if seen.contains(&key) {
                errors.add(field("language"), format!("{key} is given twice"));
            }
            seen.push(key);
        }
        let title = errors.check(&field("title"), Text::parse(&v.title, 300, true, false));
        let summary = errors.check(
            &field("summary"),
            Text::parse(&v.summary, 2000, false, true),
        );
        let body = errors.check(&field("body"), Text::parse(&v.body, 200_000, false, true));
        let mut optional = |name: &str, value: &Option<String>| match present(value) {
            None => Some(None),
            Some(_) if !has_event => {
                errors.add(field(name), "is only for events (the item has no event)");
                None
            }
            Some(t) => errors
                .check(&field(name), Text::parse(t, 300, true, false))
                .map(Some),
        };
        let venue = optional("venue", &v.venue);
        let mode_text = optional("mode_text", &v.mode_text);
        if let (
            Some(language),
            Some(title),
            Some(summary),
            Some(body_markdown),
            Some(venue),
            Some(mode_text),
        ) = (language, title, summary, body, venue, mode_text)
        {
            drafts.push(VersionDraft {
                language,
                title,
                summary,
                body_markdown,
                venue,
                mode_text,
            });
        }
    }
    drafts
}

fn parse_categories(categories: &[String], errors: &mut FieldErrors) -> Vec<Slug> {
    if categories.is_empty() {
        errors.add("categories", "must name at least one category");
    }
    if categories.len() > 20 {
        errors.add("categories", "must name at most 20 categories");
    }
    categories
        .iter()
        .enumerate()
        .filter_map(|(n, c)| errors.check(&format!("categories[{n}]"), Slug::parse(c)))
        .collect()
}

fn parse_tags(tags: &[String], errors: &mut FieldErrors) -> Vec<Text> {
    if tags.len() > 50 {
        errors.add("tags", "must hold at most 50 tags");
    }
    tags.iter()
        .enumerate()
        .filter_map(|(n, t)| errors.check(&format!("tags[{n}]"), Text::parse(t, 100, true, false)))
        .collect()
}

/// A blank optional text is no value.
fn present(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|v| !v.is_empty())
}

impl EventInput {
    fn parse(self, errors: &mut FieldErrors) -> Option<Event> {
        let timezone = errors.check("event.timezone", TimeZone::parse(&self.timezone));
        let starts_at = errors.check(
            "event.starts_at",
            parse_event_time(&self.starts_at, timezone),
        );
        let ends_at = match &self.ends_at {
            Some(s) => errors
                .check("event.ends_at", parse_event_time(s, timezone))
                .map(Some),
            None => Some(None),
        };
        let venue = match present(&self.venue) {
            Some(v) => errors
                .check("event.venue", Text::parse(v, 300, true, false))
                .map(|t| Some(t.into_string())),
            None => Some(None),
        };
        let online_url = match present(&self.online_url) {
            Some(u) => errors
                .check("event.online_url", WebUrl::parse(u))
                .map(|u| Some(u.as_str().to_owned())),
            None => Some(None),
        };
        let mode = errors.check("event.mode", EventMode::parse(&self.mode));
        let mode_text = match present(&self.mode_text) {
            Some(t) => errors
                .check("event.mode_text", Text::parse(t, 300, true, false))
                .map(|t| Some(t.into_string())),
            None => Some(None),
        };
        let event = Event {
            starts_at: starts_at?,
            ends_at: ends_at?,
            timezone: timezone?,
            venue: venue?,
            online_url: online_url?,
            mode: mode?,
            mode_text: mode_text?,
        };
        let problems = event.validate();
        for (field, message) in &problems {
            errors.add(*field, message.clone());
        }
        problems.is_empty().then_some(event)
    }
}

/// An instant written in RFC 3339.
pub fn parse_instant(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            format!("must be an RFC 3339 date-time such as 2023-11-09T14:00:00+08:00 (got {s:?})")
        })
}

/// An event time: with an offset it is taken as it is; without, it is a wall-clock
/// time in the event's zone.
pub fn parse_event_time(s: &str, tz: Option<TimeZone>) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let naive = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M"))
        .map_err(|_| {
            format!("must be a date-time such as 2023-11-09T14:00 or 2023-11-09T14:00:00+08:00 (got {s:?})")
        })?;
    let tz = tz.ok_or("cannot be read without a valid event.timezone")?;
    tz.tz()
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{s} does not exist in {} (a clock change)", tz.name()))
}

/// The minute-precision form of a `datetime-local` value.
pub const LOCAL_MINUTES: &str = "%Y-%m-%dT%H:%M";

/// A `datetime-local` value (to the minute or the second) read as a wall-clock time
/// in `zone`.
pub fn parse_local_time(local: &str, zone: &str) -> Result<DateTime<Utc>, String> {
    let tz: chrono_tz::Tz = zone
        .parse()
        .map_err(|_| format!("the time zone {zone:?} is not an IANA zone name"))?;
    let naive = NaiveDateTime::parse_from_str(local.trim(), LOCAL_MINUTES)
        .or_else(|_| NaiveDateTime::parse_from_str(local.trim(), "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("must be a date and time such as 2023-11-09T14:00 (got {local:?})"))?;
    tz.from_local_datetime(&naive)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{local} does not exist in {zone} (a clock change)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(errors: &FieldErrors) -> Vec<&str> {
        errors.0.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_local_event_time_is_read_in_the_event_zone() {
        let tz = TimeZone::parse("Asia/Shanghai").ok();
        let t = parse_event_time("2023-11-09T14:00", tz).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-09T06:00:00+00:00");
        let t = parse_event_time("2023-11-09T14:00:00+01:00", tz).unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-09T13:00:00+00:00");
    }

    #[test]
    fn a_local_publication_time_is_read_in_its_zone() {
        let t = parse_local_time("2023-11-09T14:00", "Asia/Shanghai").unwrap();
        assert_eq!(t.to_rfc3339(), "2023-11-09T06:00:00+00:00");
        assert!(parse_local_time("9 Nov", "UTC").is_err());
        assert!(parse_local_time("2023-11-09T14:00", "Mars/Base").is_err());
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let errors = ItemInput {
            slug: Some("Bad Slug".into()),
            language: Some("english".into()),
            categories: vec!["Not A Slug".into()],
            status: Some("live".into()),
            published_at: Some("yesterday".into()),
            event: Some(EventInput {
                starts_at: "soon".into(),
                timezone: "Mars/Base".into(),
                mode: "telepathy".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        let fields = fields(&errors);
        for expected in [
            "slug",
            "title",
            "language",
            "categories[0]",
            "status",
            "published_at",
            "event.timezone",
            "event.starts_at",
            "event.mode",
        ] {
            assert!(
                fields.contains(&expected),
                "{expected} missing from {fields:?}"
            );
        }
    }

    #[test]
    fn event_rules_between_fields_are_checked() {
        let errors = ItemInput {
            title: "x".into(),
            categories: vec!["events".into()],
            event: Some(EventInput {
                starts_at: "2023-11-09T14:00".into(),
                ends_at: Some("2023-11-09T13:00".into()),
                timezone: "Asia/Shanghai".into(),
                venue: Some("  ".into()),
                mode: "hybrid".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            ["event.ends_at", "event.online_url", "event.venue"]
        );
    }

    #[test]
    fn translations_are_checked_field_by_field() {
        let version = |language: &str, title: &str| VersionInput {
            language: language.into(),
            title: title.into(),
            ..Default::default()
        };
        let draft = ItemInput {
            title: "Final session".into(),
            categories: vec!["events".into()],
            translations: vec![version("zh", "闭幕式"), version("fr", "Séance finale")],
            ..Default::default()
        }
        .parse()
        .unwrap();
        let languages: Vec<&str> = draft
            .translations
            .iter()
            .map(|v| v.language.as_str())
            .collect();
        assert_eq!(languages, ["zh", "fr"]);
        assert_eq!(draft.translations[0].title.as_str(), "闭幕式");

        let errors = ItemInput {
            title: "Final session".into(),
            language: Some("zh".into()),
            categories: vec!["events".into()],
            translations: vec![
                version("ZH", "again the original"),
                version("en", ""),
                version("EN", "twice"),
                version("not a tag", "x"),
                VersionInput {
                    venue: Some("Hall A".into()),
                    ..version("fr", "x")
                },
            ],
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(
            fields(&errors),
            [
                "translations[0].language",
                "translations[1].title",
                "translations[2].language",
                "translations[3].language",
                "translations[4].venue",
            ]
        );
        let too_many = ItemInput {
            title: "x".into(),
            categories: vec!["events".into()],
            translations: (0..=MAX_TRANSLATIONS)
                .map(|n| version(&format!("x{n:02}"), "t"))
                .collect(),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert!(fields(&too_many).contains(&"translations"));
    }

    #[test]
    fn slugs_are_made_from_titles_and_names_when_left_out() {
        let draft = ItemInput {
            title: "Final session: the closing ceremony!".into(),
            categories: vec!["events".into()],
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert_eq!(draft.slug.as_str(), "final-session-the-closing-ceremony");
        assert_eq!(draft.status, ItemStatus::Draft);
        assert_eq!(draft.language, Language::default());
        let category = CategoryInput {
            name: "News & Events".into(),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert_eq!(category.slug.as_str(), "news-events");
        // A slug given (even a blank one) is checked, not replaced.
        let errors = CategoryInput {
            slug: Some(String::new()),
            name: "News".into(),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(fields(&errors), ["slug"]);
    }

    #[test]
    fn line_ends_in_items_and_categories_become_lf() {
        let draft = ItemInput {
            title: "x".into(),
            summary: "a\r\nb\rc".into(),
            body: "a\r\nb\rc".into(),
            categories: vec!["events".into()],
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert_eq!(draft.summary.as_str(), "a\nb\nc");
        assert_eq!(draft.body_markdown.as_str(), "a\nb\nc");
        let category = CategoryInput {
            name: "Events".into(),
            description: "a\r\nb\rc".into(),
            ..Default::default()
        }
        .parse()
        .unwrap();
        assert_eq!(category.description.as_str(), "a\nb\nc");
        // A one-line field takes no line end of any kind.
        let errors = ItemInput {
            title: "a\rb".into(),
            categories: vec!["events".into()],
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(fields(&errors), ["title"]);
    }

    #[test]
    fn an_item_names_one_to_twenty_categories() {
        let errors = ItemInput {
            title: "x".into(),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(fields(&errors), ["categories"]);
        let errors = ItemInput {
            title: "x".into(),
            categories: (0..21).map(|n| format!("c{n}")).collect(),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(fields(&errors), ["categories"]);
    }
}
