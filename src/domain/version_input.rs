//! One language version written at a time (the API's `…/versions/{language}`): the
//! stored item is read back into an [`ItemInput`], the version is put in or taken out
//! (or made the original), and the whole is checked again by [`ItemInput::parse`], so
//! the rules are those of every other item write. Errors name the fields of the
//! version as written (`title`, `venue`, `language`, `original`), not their place in
//! the whole item (`translations[2].title`, `event.venue`).
//!
//! An item always has its original: removing it, or unmarking it, is refused; another
//! version becomes the original only by being made one (the original then becomes one
//! of the other versions).

use super::{
    EventInput, FieldError, FieldErrors, Item, ItemDraft, ItemInput, Language, MAX_TRANSLATIONS,
    VersionInput,
};

/// One language version as written to its own address.
#[derive(Debug, Clone, Default)]
pub struct VersionWrite {
    pub title: String,
    pub summary: String,
    /// Markdown.
    pub body: String,
    /// For events. The original's is the event's venue (left out: none); another
    /// version's left out: the original's.
    pub venue: Option<String>,
    /// For events: how to take part in this language; left out: the mode's standard
    /// words.
    pub mode_text: Option<String>,
    /// `Some(true)`: this version becomes the original (the original until now becomes
    /// one of the other versions). `Some(false)`: not the original, refused for the
    /// original. `None`: as it is (a new version is not the original).
    pub original: Option<bool>,
}

/// What a version write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionPut {
    Created,
    Replaced,
}

/// Why a version could not be removed.
#[derive(Debug, Clone, PartialEq)]
pub enum VersionRemoval {
    /// The item has no version in that language.
    Missing,
    /// The version is the original, or the item left would not be valid.
    Invalid(FieldErrors),
}

/// A language named in an address (`…/versions/{language}`), checked; the error names
/// the field `language`.
pub fn parse_version_language(s: &str) -> Result<Language, FieldErrors> {
    Language::parse(s).map_err(|message| {
        FieldErrors::from(FieldError {
            field: "language".into(),
            message,
        })
    })
}

impl Item {
    /// The tag of the item's version in exactly `language` (case aside), the original
    /// included; `None` when it has none.
    pub fn version_tag(&self, language: &str) -> Option<&str> {
        self.languages()
            .into_iter()
            .find(|l| l.eq_ignore_ascii_case(language))
    }

    /// Whether `language` (case aside) is the original's.
    pub fn is_original(&self, language: &str) -> bool {
        self.language.eq_ignore_ascii_case(language)
    }
}

impl ItemInput {
    /// The item as it is stored, written out again: parsing it gives back the same
    /// item. The start of every write that changes only part of an item.
    pub fn from_item(item: &Item) -> Self {
        Self {
            slug: Some(item.slug.clone()),
            title: item.title.clone(),
            summary: item.summary.clone(),
            body: item.body_markdown.clone(),
            author: item.author.clone(),
            org_unit: item.org_unit.clone(),
            language: Some(item.language.clone()),
            categories: item.categories.iter().map(|c| c.slug.clone()).collect(),
            tags: item.tags.clone(),
            status: Some(item.status.as_str().to_owned()),
            published_at: item.published_at.map(|t| t.to_rfc3339()),
            // In UTC: the same instant, and one that reads back whatever the zone's
            // offset at that date (a year-1 instant in a zone's local mean time
            // would be written as year -1, which no parser takes).
            event: item.event.as_ref().map(|e| EventInput {
                starts_at: e.starts_at.to_rfc3339(),
                ends_at: e.ends_at.map(|t| t.to_rfc3339()),
                timezone: e.timezone.name().to_owned(),
                venue: e.venue.clone(),
                online_url: e.online_url.clone(),
                mode: e.mode.as_str().to_owned(),
                mode_text: e.mode_text.clone(),
            }),
            translations: item
                .translations
                .iter()
                .map(|v| VersionInput {
                    language: v.language.clone(),
                    title: v.title.clone(),
                    summary: v.summary.clone(),
                    body: v.body_markdown.clone(),
                    venue: v.venue.clone(),
                    mode_text: v.mode_text.clone(),
                })
                .collect(),
        }
    }
}

/// Where the version written ends up in the whole item, to name its errors.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Original,
    Translation(usize),
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// `item` with its version in `language` created or replaced by `write` (and made
/// the original when asked): the draft to store, and what was done.
pub fn put_version(
    item: &Item,
    language: &Language,
    write: VersionWrite,
) -> Result<(ItemDraft, VersionPut), FieldErrors> {
    let mut input = ItemInput::from_item(item);
    // A version there already keeps its tag as stored (`zh-Hans` written to `zh-hans`).
    let stored_tag = item.version_tag(language.as_str()).map(str::to_owned);
    let existed = stored_tag.is_some();
    let tag = stored_tag.as_deref().unwrap_or(language.as_str());
    let put = if existed {
        VersionPut::Replaced
    } else {
        VersionPut::Created
    };
    let mut errors = FieldErrors::new();
    if !existed && item.translations.len() >= MAX_TRANSLATIONS {
        errors.add(
            "language",
            format!(
                "the item has {MAX_TRANSLATIONS} versions besides the original already; \
                 remove one before adding {tag}"
            ),
        );
    }
    let slot = if item.is_original(tag) {
        if write.original == Some(false) {
            errors.add(
                "original",
                format!(
                    "{tag} is the item's original and an item always has one: make another \
                     version the original instead (\"original\": true on its version)"
                ),
            );
        }
        set_original(&mut input, tag, write, &mut errors);
        Slot::Original
    } else if write.original == Some(true) {
        // The original until now becomes one of the other versions.
        let previous = VersionInput {
            language: item.language.clone(),
            title: input.title.clone(),
            summary: input.summary.clone(),
            body: input.body.clone(),
            venue: None,
            mode_text: input.event.as_ref().and_then(|e| e.mode_text.clone()),
        };
        let previous_venue = input.event.as_ref().and_then(|e| e.venue.clone());
        input
            .translations
            .retain(|v| !v.language.eq_ignore_ascii_case(tag));
        // A venue left out keeps the event's: it is what this version showed.
        let write = VersionWrite {
            venue: if blank(&write.venue) {
                previous_venue.clone()
            } else {
                write.venue
            },
            ..write
        };
        set_original(&mut input, tag, write, &mut errors);
        let venue_now = input.event.as_ref().and_then(|e| e.venue.clone());
        input.translations.push(VersionInput {
            venue: previous_venue.filter(|v| Some(v) != venue_now.as_ref()),
            ..previous
        });
        Slot::Original
    } else {
        let version = VersionInput {
            language: tag.to_owned(),
            title: write.title,
            summary: write.summary,
            body: write.body,
            venue: write.venue,
            mode_text: write.mode_text,
        };
        let at = input
            .translations
            .iter()
            .position(|v| v.language.eq_ignore_ascii_case(tag));
        match at {
            Some(n) => {
                input.translations[n] = version;
                Slot::Translation(n)
            }
            None => {
                input.translations.push(version);
                Slot::Translation(input.translations.len() - 1)
            }
        }
    };
    let parsed = input.parse().map_err(|e| rename(e, slot));
    match parsed {
        Ok(draft) if errors.is_empty() => Ok((draft, put)),
        Ok(_) => Err(errors),
        Err(mut more) => {
            // The limit was named above, under `language`.
            more.0.retain(|e| e.field != "translations");
            errors.0.extend(more.0);
            Err(errors)
        }
    }
}

/// The original's words replaced by `write`, in `language`.
fn set_original(
    input: &mut ItemInput,
    language: &str,
    write: VersionWrite,
    errors: &mut FieldErrors,
) {
    input.language = Some(language.to_owned());
    input.title = write.title;
    input.summary = write.summary;
    input.body = write.body;
    match &mut input.event {
        Some(event) => {
            event.venue = write.venue;
            event.mode_text = write.mode_text;
        }
        None => {
            for (field, value) in [("venue", &write.venue), ("mode_text", &write.mode_text)] {
                if !blank(value) {
                    errors.add(field, "is only for events (the item has no event)");
                }
            }
        }
    }
}

/// `item` without its version in `language`: the draft to store.
pub fn remove_version(item: &Item, language: &Language) -> Result<ItemDraft, VersionRemoval> {
    let tag = language.as_str();
    if item.is_original(tag) {
        let mut errors = FieldErrors::new();
        errors.add(
            "language",
            format!(
                "{tag} is the item's original and an item always has one: make another \
                 version the original first (\"original\": true on its version), then \
                 remove {tag}"
            ),
        );
        return Err(VersionRemoval::Invalid(errors));
    }
    let mut input = ItemInput::from_item(item);
    let before = input.translations.len();
    input
        .translations
        .retain(|v| !v.language.eq_ignore_ascii_case(tag));
    if input.translations.len() == before {
        return Err(VersionRemoval::Missing);
    }
    input.parse().map_err(VersionRemoval::Invalid)
}

/// Errors of the whole item named as the version's fields were written.
fn rename(errors: FieldErrors, slot: Slot) -> FieldErrors {
    let prefix = match slot {
        Slot::Translation(n) => Some(format!("translations[{n}].")),
        Slot::Original => None,
    };
    FieldErrors(
        errors
            .0
            .into_iter()
            .map(|e| {
                let renamed = match (&prefix, e.field.as_str()) {
                    (Some(p), f) => f.strip_prefix(p.as_str()).map(|f| (f.to_owned(), None)),
                    (None, "event.venue") => Some((
                        "venue".to_owned(),
                        Some(" (the original's venue is the event's venue)"),
                    )),
                    (None, "event.mode_text") => Some(("mode_text".to_owned(), None)),
                    _ => None,
                };
                match renamed {
                    Some((field, note)) => FieldError {
                        field,
                        message: format!("{}{}", e.message, note.unwrap_or_default()),
                    },
                    None => e,
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ItemStatus, ItemVersion};
    use chrono::{TimeZone as _, Utc};

    fn event_item() -> Item {
        let draft = ItemInput {
            title: "Final session".into(),
            body: "The *end*.".into(),
            categories: vec!["events".into()],
            status: Some("published".into()),
            published_at: Some("2023-11-01T08:00:00Z".into()),
            event: Some(EventInput {
                starts_at: "2023-11-09T14:00".into(),
                timezone: "Asia/Shanghai".into(),
                venue: Some("Hall A".into()),
                mode: "in_person".into(),
                mode_text: Some("In Hall A".into()),
                ..Default::default()
            }),
            translations: vec![VersionInput {
                language: "zh".into(),
                title: "闭幕式".into(),
                venue: Some("A厅".into()),
                ..Default::default()
            }],
            ..Default::default()
        }
        .parse()
        .unwrap();
        stored(draft)
    }

    /// The item the store would read back for `draft`.
    fn stored(d: ItemDraft) -> Item {
        let now = Utc.with_ymd_and_hms(2023, 11, 20, 9, 0, 0).unwrap();
        Item {
            id: 7,
            slug: d.slug.as_str().into(),
            title: d.title.as_str().into(),
            summary: d.summary.as_str().into(),
            body_markdown: d.body_markdown.as_str().into(),
            body_html: String::new(),
            author: d.author.as_str().into(),
            org_unit: d.org_unit.as_str().into(),
            language: d.language.as_str().into(),
            status: d.status,
            published_at: d.published_at,
            created_at: now,
            updated_at: now,
            categories: d
                .categories
                .iter()
                .map(|s| crate::domain::CategoryRef {
                    slug: s.as_str().into(),
                    name: s.as_str().into(),
                    names: Default::default(),
                })
                .collect(),
            tags: d.tags.iter().map(|t| t.as_str().into()).collect(),
            event: d.event,
            translations: d
                .translations
                .iter()
                .map(|v| ItemVersion {
                    language: v.language.as_str().into(),
                    title: v.title.as_str().into(),
                    summary: v.summary.as_str().into(),
                    body_markdown: v.body_markdown.as_str().into(),
                    body_html: String::new(),
                    venue: v.venue.as_ref().map(|t| t.as_str().into()),
                    mode_text: v.mode_text.as_ref().map(|t| t.as_str().into()),
                })
                .collect(),
        }
    }

    fn lang(s: &str) -> Language {
        Language::parse(s).unwrap()
    }

    fn fields(e: &FieldErrors) -> Vec<&str> {
        e.0.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn a_stored_item_written_out_again_parses_to_itself() {
        let item = event_item();
        let again = stored(ItemInput::from_item(&item).parse().unwrap());
        assert_eq!(format!("{again:?}"), format!("{item:?}"));
        assert_eq!(item.status, ItemStatus::Published);
        // An instant of the year 1 in a zone whose offset then was its local mean time
        // (Chicago, -05:50:36) reads back too (the contract check's find).
        let mut early = event_item();
        if let Some(e) = early.event.as_mut() {
            e.starts_at = Utc.with_ymd_and_hms(0, 1, 1, 0, 0, 16).unwrap();
            e.timezone = crate::domain::TimeZone::parse("America/Chicago").unwrap();
        }
        let again = stored(ItemInput::from_item(&early).parse().unwrap());
        assert_eq!(format!("{again:?}"), format!("{early:?}"));
    }

    #[test]
    fn a_version_is_created_then_replaced_and_its_errors_are_named_as_written() {
        let item = event_item();
        let write = |title: &str| VersionWrite {
            title: title.into(),
            body: "Texte".into(),
            ..Default::default()
        };
        let (draft, put) = put_version(&item, &lang("fr"), write("Séance finale")).unwrap();
        assert_eq!(put, VersionPut::Created);
        let item = stored(draft);
        assert_eq!(item.languages(), ["en", "zh", "fr"]);
        let (draft, put) = put_version(&item, &lang("FR"), write("Dernière séance")).unwrap();
        assert_eq!(put, VersionPut::Replaced);
        let item = stored(draft);
        assert_eq!(
            item.languages(),
            ["en", "zh", "fr"],
            "the primary language in lowercase"
        );
        assert_eq!(item.translations[1].title, "Dernière séance");
        let (draft, _) = put_version(&item, &lang("zh-Hant"), write("閉幕式")).unwrap();
        let item = stored(draft);
        let (draft, put) = put_version(&item, &lang("zh-hant"), write("閉幕")).unwrap();
        assert_eq!(put, VersionPut::Replaced);
        let item = stored(draft);
        assert_eq!(
            item.languages(),
            ["en", "zh", "fr", "zh-Hant"],
            "a tag as first written"
        );

        let too_long = "x".repeat(301);
        let errors = put_version(
            &item,
            &lang("zh"),
            VersionWrite {
                title: too_long,
                summary: "a\u{0}b".into(),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(fields(&errors), ["title", "summary"]);
        let errors = put_version(
            &item,
            &lang("en"),
            VersionWrite {
                title: "".into(),
                original: Some(false),
                ..Default::default()
            },
        )
        .unwrap_err();
        // The original's venue is the event's, which an in-person event needs.
        assert_eq!(fields(&errors), ["original", "title", "venue"]);
        assert!(errors.0[2].message.contains("the event's venue"));
    }

    #[test]
    fn the_original_is_replaced_swapped_but_never_removed() {
        let item = event_item();
        let (draft, put) = put_version(
            &item,
            &lang("en"),
            VersionWrite {
                title: "Closing session".into(),
                venue: Some("Hall B".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(put, VersionPut::Replaced);
        let item = stored(draft);
        assert_eq!(item.title, "Closing session");
        let event = item.event.as_ref().unwrap();
        assert_eq!(event.venue.as_deref(), Some("Hall B"));
        assert_eq!(event.mode_text, None, "left out: the standard words");

        // zh becomes the original; en becomes a version with its words and venue.
        let (draft, put) = put_version(
            &item,
            &lang("zh"),
            VersionWrite {
                title: "闭幕式".into(),
                summary: String::new(),
                body: "结束".into(),
                venue: Some("B厅".into()),
                mode_text: Some("线下，B厅".into()),
                original: Some(true),
            },
        )
        .unwrap();
        assert_eq!(put, VersionPut::Replaced);
        let item = stored(draft);
        assert_eq!(item.languages(), ["zh", "en"]);
        assert_eq!(item.title, "闭幕式");
        let event = item.event.as_ref().unwrap();
        assert_eq!(event.venue.as_deref(), Some("B厅"));
        assert_eq!(event.mode_text.as_deref(), Some("线下，B厅"));
        let en = &item.translations[0];
        assert_eq!(en.title, "Closing session");
        assert_eq!(en.venue.as_deref(), Some("Hall B"));

        // A new language made the original at once; the venue left out is kept.
        let (draft, put) = put_version(
            &item,
            &lang("fr"),
            VersionWrite {
                title: "Séance".into(),
                original: Some(true),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(put, VersionPut::Created);
        let item = stored(draft);
        assert_eq!(item.languages(), ["fr", "en", "zh"]);
        assert_eq!(item.event.as_ref().unwrap().venue.as_deref(), Some("B厅"));
        assert_eq!(item.translations[1].venue, None, "the same as the event's");

        assert_eq!(
            remove_version(&item, &lang("FR")).map(|_| ()),
            Err(VersionRemoval::Invalid(FieldErrors(vec![FieldError {
                field: "language".into(),
                message: "fr is the item's original and an item always has one: make another \
                          version the original first (\"original\": true on its version), \
                          then remove fr"
                    .into(),
            }])))
        );
        assert_eq!(
            remove_version(&item, &lang("de")).map(|_| ()),
            Err(VersionRemoval::Missing)
        );
        let item = stored(remove_version(&item, &lang("ZH")).unwrap());
        assert_eq!(item.languages(), ["fr", "en"]);
    }

    #[test]
    fn event_words_are_refused_for_an_item_without_an_event() {
        let mut item = event_item();
        item.event = None;
        item.translations.clear();
        let words = VersionWrite {
            title: "x".into(),
            venue: Some("Hall".into()),
            mode_text: Some("  ".into()),
            ..Default::default()
        };
        let errors = put_version(&item, &lang("en"), words.clone()).unwrap_err();
        assert_eq!(fields(&errors), ["venue"]);
        let errors = put_version(&item, &lang("zh"), words).unwrap_err();
        assert_eq!(fields(&errors), ["venue"]);
        assert!(parse_version_language("not a tag").is_err());
    }

    #[test]
    fn no_more_versions_than_the_limit() {
        let mut item = event_item();
        item.translations = (0..MAX_TRANSLATIONS)
            .map(|n| ItemVersion {
                language: format!("q{}", char::from(b'a' + n as u8)),
                title: "t".into(),
                summary: String::new(),
                body_markdown: String::new(),
                body_html: String::new(),
                venue: None,
                mode_text: None,
            })
            .collect();
        let write = VersionWrite {
            title: "t".into(),
            ..Default::default()
        };
        let errors = put_version(&item, &lang("fr"), write.clone()).unwrap_err();
        assert_eq!(fields(&errors)[0], "language");
        assert!(put_version(&item, &lang("qd"), write).is_ok());
    }
}
