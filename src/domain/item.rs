use super::{Language, Names, Slug, Text, TimeZone};
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

    /// Words for people in `language` (Chinese for `zh…`, else English).
    pub fn label_in(self, language: &str) -> &'static str {
        if is_chinese(language) {
            match self {
                Self::InPerson => "线下",
                Self::Online => "线上",
                Self::Hybrid => "线上线下结合",
            }
        } else {
            self.label()
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
    /// The original's own words on how to take part ("Hybrid: Hall A and Tencent
    /// Meeting"); `None`: the mode's standard words in the reader's language.
    pub mode_text: Option<String>,
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
                format!("is required when event.mode is {:?}", self.mode.as_str()),
            ));
        }
        if needs_venue && self.venue.is_none() {
            errors.push((
                "event.venue",
                format!("is required when event.mode is {:?}", self.mode.as_str()),
            ));
        }
        errors
    }
}

/// A category as items and feeds refer to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CategoryRef {
    pub slug: String,
    /// The default name; [`Item::localized`] puts the reader's in its place.
    pub name: String,
    /// The category's names in other languages.
    #[serde(skip)]
    pub names: Names,
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
    /// The other language versions, by language; never the original's language (the
    /// original is the item's own fields, in `language`).
    pub translations: Vec<ItemVersion>,
}

/// One language version of an item: the words a reader reads. Times, links,
/// categories and tags are the item's, shared by every version.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemVersion {
    pub language: String,
    pub title: String,
    pub summary: String,
    pub body_markdown: String,
    pub body_html: String,
    /// For events: the venue in this language (`None`: the original's).
    pub venue: Option<String>,
    /// For events: how to take part, in this language (`None`: the mode's standard
    /// words in this language).
    pub mode_text: Option<String>,
}

/// The primary language subtag of a BCP 47 tag: `zh` of `zh-Hans`.
pub fn primary_language(tag: &str) -> &str {
    tag.split('-').next().unwrap_or_default()
}

/// Chinese (`zh`, `zh-Hans`, ...): the one language besides English whose dates and
/// standard words are written its own way in code.
pub fn is_chinese(tag: &str) -> bool {
    primary_language(tag).eq_ignore_ascii_case("zh")
}

/// Whether `tag` is a version for a reader who asked for `wanted`: the same tag, or
/// the same primary language when one of them names no more than that (`zh` and
/// `zh-Hans`, not `zh-Hans` and `zh-Hant`). Case-insensitive, as BCP 47 tags are.
pub fn language_matches(tag: &str, wanted: &str) -> bool {
    if tag.eq_ignore_ascii_case(wanted) {
        return true;
    }
    let bare = |t: &str| !t.contains('-');
    primary_language(tag).eq_ignore_ascii_case(primary_language(wanted))
        && (bare(tag) || bare(wanted))
}

impl Item {
    /// Every language the item is in, the original first.
    pub fn languages(&self) -> Vec<&str> {
        std::iter::once(self.language.as_str())
            .chain(self.translations.iter().map(|v| v.language.as_str()))
            .collect()
    }

    /// Whether the item has a version a reader of `wanted` can read (the original
    /// included).
    pub fn has_language(&self, wanted: &str) -> bool {
        self.languages()
            .into_iter()
            .any(|l| language_matches(l, wanted))
    }

    /// The item as a reader of `wanted` reads it: that version's words in place of the
    /// original's and `language` set to it; the original when there is no such version
    /// (then `language` still says the original's, so a page can note it). The exact tag
    /// wins over a tag of the same primary language; the original wins a tie. Its
    /// categories are named in `wanted` where they have a name in it, whichever version
    /// it is read in.
    pub fn localized(&self, wanted: &str) -> std::borrow::Cow<'_, Item> {
        let mut item = self.localized_words(wanted);
        if self
            .categories
            .iter()
            .any(|c| c.names.pick(&c.name, wanted) != c.name)
        {
            for c in &mut item.to_mut().categories {
                let name = c.names.pick(&c.name, wanted).to_owned();
                c.name = name;
            }
        }
        item
    }

    /// [`Item::localized`] but for the category names.
    fn localized_words(&self, wanted: &str) -> std::borrow::Cow<'_, Item> {
        use std::borrow::Cow;
        if self.language.eq_ignore_ascii_case(wanted) {
            return Cow::Borrowed(self);
        }
        let exact = self
            .translations
            .iter()
            .find(|v| v.language.eq_ignore_ascii_case(wanted));
        let version = match exact {
            Some(v) => v,
            None if language_matches(&self.language, wanted) => return Cow::Borrowed(self),
            None => match self
                .translations
                .iter()
                .find(|v| language_matches(&v.language, wanted))
            {
                Some(v) => v,
                None => return Cow::Borrowed(self),
            },
        };
        let mut item = self.clone();
        item.language = version.language.clone();
        item.title = version.title.clone();
        item.summary = version.summary.clone();
        item.body_markdown = version.body_markdown.clone();
        item.body_html = version.body_html.clone();
        if let Some(event) = &mut item.event {
            if let Some(venue) = &version.venue {
                event.venue = Some(venue.clone());
            }
            event.mode_text = version.mode_text.clone();
        }
        Cow::Owned(item)
    }

    /// Published and its time has come.
    pub fn is_visible_at(&self, now: DateTime<Utc>) -> bool {
        self.status == ItemStatus::Published && self.published_at.is_some_and(|p| p <= now)
    }
}

/// A checked item, ready to be stored (create or full update).
#[derive(Debug, Clone)]
pub struct ItemDraft {
    pub slug: Slug,
    /// The slug was made from the title, not given: a new item whose made slug is taken
    /// gets the first free `slug-2`, `slug-3`, ... (two Chinese titles both make `item`).
    pub slug_from_title: bool,
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
    /// The other language versions; none in the original's language, no language
    /// twice (checked where the draft is made).
    pub translations: Vec<VersionDraft>,
}

/// A checked language version, ready to be stored with its item.
#[derive(Debug, Clone)]
pub struct VersionDraft {
    pub language: Language,
    pub title: Text,
    pub summary: Text,
    pub body_markdown: Text,
    pub venue: Option<Text>,
    pub mode_text: Option<Text>,
}

/// A checked category.
#[derive(Debug, Clone)]
pub struct NewCategory {
    pub slug: Slug,
    pub name: Text,
    /// Names in other languages, replacing the stored set.
    pub names: Names,
    pub description: Text,
    pub parent: Option<Slug>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags_match_by_tag_or_bare_primary_language() {
        assert!(language_matches("zh", "zh"));
        assert!(language_matches("zh", "ZH-hans"));
        assert!(language_matches("zh-Hans", "zh"));
        assert!(!language_matches("zh-Hans", "zh-Hant"));
        assert!(!language_matches("en", "zh"));
        assert!(!language_matches("en", ""));
    }

    fn item(language: &str, versions: &[&str]) -> Item {
        let now = Utc::now();
        Item {
            id: 1,
            slug: "x".into(),
            title: format!("title {language}"),
            summary: String::new(),
            body_markdown: String::new(),
            body_html: String::new(),
            author: String::new(),
            org_unit: String::new(),
            language: language.into(),
            status: ItemStatus::Published,
            published_at: Some(now),
            created_at: now,
            updated_at: now,
            categories: Vec::new(),
            tags: Vec::new(),
            event: None,
            translations: versions
                .iter()
                .map(|l| ItemVersion {
                    language: (*l).into(),
                    title: format!("title {l}"),
                    summary: String::new(),
                    body_markdown: String::new(),
                    body_html: String::new(),
                    venue: None,
                    mode_text: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_reader_gets_the_exact_version_then_the_same_language_then_the_original() {
        let i = item("en", &["zh", "zh-Hant"]);
        assert_eq!(i.languages(), ["en", "zh", "zh-Hant"]);
        assert_eq!(i.localized("zh-Hant").title, "title zh-Hant");
        assert_eq!(i.localized("zh").title, "title zh");
        assert_eq!(i.localized("zh-Hans").title, "title zh");
        assert_eq!(i.localized("en-GB").title, "title en");
        let fr = i.localized("fr");
        assert_eq!(
            (fr.title.as_str(), fr.language.as_str()),
            ("title en", "en")
        );
        assert!(i.has_language("zh-CN") && !i.has_language("fr"));
        // The original wins over a version of the same language that is not exact.
        let j = item("zh-Hans", &["zh-Hant"]);
        assert_eq!(j.localized("zh").title, "title zh-Hans");
    }
}
