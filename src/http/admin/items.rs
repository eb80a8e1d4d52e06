//! Items: a list with search and filters (and each item's languages), the
//! create/edit form with a Markdown preview, event fields and the language versions
//! side by side (the original first; a version added or removed with the save),
//! publish now or at a time, unpublish, delete.

use super::page::{
    self, Choice, FormData, FormErrors, PageError, PageResult, parse_id, when_opt, zone_choices,
};
use super::session::{Session, done};
use crate::domain::{
    EventInput, EventMode, FieldError, FieldErrors, Item, ItemInput, ItemStatus,
    LOCAL_MINUTES as LOCAL, Language, Slug, VersionInput, parse_local_time as local_time,
};
use crate::http::AppState;
use crate::http::public::views::category_tree;
use crate::services::ServiceError;
use crate::services::content::{self, ItemQuery};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

const FIELDS: &[&str] = &[
    "title",
    "slug",
    "summary",
    "body",
    "author",
    "org_unit",
    "language",
    "categories",
    "tags",
    "status",
    "published_at",
    "event.starts_at",
    "event.ends_at",
    "event.timezone",
    "event.venue",
    "event.online_url",
    "event.mode",
    "event.mode_text",
    "make_original",
];

/// Numbered versions read from a posted form (`v0_…` to `v63_…`); more than the
/// domain allows, so that too many are refused by its rule, not dropped here.
const FORM_VERSIONS: usize = 64;

const PER_PAGE: u32 = 25;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    q: Option<String>,
    category: Option<String>,
    status: Option<String>,
    page: Option<String>,
}

#[derive(Serialize)]
struct Row {
    id: i64,
    title: String,
    status: &'static str,
    published: String,
    scheduled: bool,
    categories: String,
    event: String,
    languages: Vec<LanguageCell>,
}

/// One of an item's languages in the list.
#[derive(Serialize)]
struct LanguageCell {
    tag: String,
    original: bool,
}

#[derive(Serialize)]
struct ListBody {
    q: String,
    categories: Vec<Choice>,
    statuses: Vec<Choice>,
    rows: Vec<Row>,
    total: u64,
    page: u32,
    prev: Option<String>,
    next: Option<String>,
}

fn category_choices(all: &[crate::domain::Category], selected: &[&str], base: &str) -> Vec<Choice> {
    category_tree(all, base)
        .into_iter()
        .map(|c| Choice {
            selected: selected.contains(&c.slug.as_str()),
            label: format!("{}{}", "— ".repeat(c.indent), c.name),
            value: c.slug,
        })
        .collect()
}

fn row(i: &Item, now: DateTime<Utc>) -> Row {
    Row {
        id: i.id,
        title: i.title.clone(),
        status: i.status.as_str(),
        published: when_opt(i.published_at),
        scheduled: i.status == ItemStatus::Published && !i.is_visible_at(now),
        categories: i
            .categories
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        event: i
            .event
            .as_ref()
            .map(|e| {
                e.starts_at
                    .with_timezone(&e.timezone.tz())
                    .format("%-d %b %Y %H:%M %Z")
                    .to_string()
            })
            .unwrap_or_default(),
        languages: i
            .languages()
            .into_iter()
            .enumerate()
            .map(|(n, tag)| LanguageCell {
                tag: tag.to_owned(),
                original: n == 0,
            })
            .collect(),
    }
}

/// The address of a page of the list, with its filters.
fn list_link(
    search: Option<&str>,
    category: Option<&str>,
    status: Option<ItemStatus>,
    page: u32,
) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    if let Some(q) = search {
        s.append_pair("q", q);
    }
    if let Some(c) = category {
        s.append_pair("category", c);
    }
    if let Some(st) = status {
        s.append_pair("status", st.as_str());
    }
    s.append_pair("page", &page.to_string());
    format!("/admin/items?{}", s.finish())
}

pub async fn index(
    State(state): State<AppState>,
    session: Session,
    Query(q): Query<ListQuery>,
) -> PageResult {
    let page_no = q
        .page
        .as_deref()
        .and_then(|p| p.parse::<u32>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1);
    let status = q.status.as_deref().and_then(|s| ItemStatus::parse(s).ok());
    let categories = content::list_categories(state.app()).await?;
    // An unknown category filters nothing (the list shows everything).
    let category = q
        .category
        .as_deref()
        .filter(|c| categories.iter().any(|k| k.slug == *c))
        .and_then(|c| Slug::parse(c).ok());
    let search = q.q.as_deref().and_then(content::search_terms);
    let query = ItemQuery {
        category: category.clone(),
        status,
        search: search.clone(),
        page: page_no,
        per_page: PER_PAGE,
    };
    let found = content::list_items(state.app(), query).await?;
    let now = state.clock.now();
    let category = category.as_ref().map(Slug::as_str);
    let link = |p: u32| list_link(search.as_deref(), category, status, p);
    let shown = u64::from(page_no) * u64::from(PER_PAGE);
    let body = ListBody {
        q: search.clone().unwrap_or_default(),
        categories: category_choices(
            &categories,
            &category.into_iter().collect::<Vec<_>>(),
            &state.settings.base_url,
        ),
        statuses: ["draft", "published"]
            .iter()
            .map(|s| Choice {
                value: (*s).into(),
                label: (*s).into(),
                selected: status.map(|x| x.as_str()) == Some(*s),
            })
            .collect(),
        rows: found.items.iter().map(|i| row(i, now)).collect(),
        total: found.total,
        page: page_no,
        prev: (page_no > 1).then(|| link(page_no - 1)),
        next: (shown < found.total).then(|| link(page_no + 1)),
    };
    page::render(
        &state,
        &session,
        StatusCode::OK,
        "items",
        "admin/items",
        "Items",
        &body,
    )
}

/// The form's values, as typed (so a refused form comes back as it was sent).
#[derive(Debug, Default, Serialize)]
struct ItemForm {
    title: String,
    slug: String,
    summary: String,
    body: String,
    author: String,
    org_unit: String,
    language: String,
    tags: String,
    status: String,
    publish_at: String,
    publish_tz: String,
    has_event: bool,
    event_starts_at: String,
    event_ends_at: String,
    event_timezone: String,
    event_venue: String,
    event_online_url: String,
    event_mode: String,
    event_mode_text: String,
    categories: Vec<String>,
    /// `lang` of the original's column: its language, when that is a tag.
    original_lang: Option<String>,
    /// The other versions, each in its column, and last the column to add one in
    /// (saved with the item when anything is typed in it).
    versions: Vec<VersionForm>,
    /// The key of the version chosen to become the original when saving (`v0`…), or
    /// empty: the original stays.
    make_original: String,
    /// Whether there is a version besides the original (to offer making it one).
    has_versions: bool,
}

/// One language version in the form, as typed.
#[derive(Debug, Default, Serialize)]
struct VersionForm {
    /// The prefix of its fields' names: `v0`, `v1`… or `vnew`.
    key: String,
    /// The column to add a version in.
    is_new: bool,
    language: String,
    title: String,
    summary: String,
    body: String,
    venue: String,
    mode_text: String,
    /// Ticked: left out when the item is saved.
    remove: bool,
    /// Chosen to become the original when the item is saved.
    make_original: bool,
    /// `lang` of the column: the language, when it is a tag.
    lang: Option<String>,
    /// Whether the column is shown open (the column to add a version in is folded
    /// while nothing is typed in it).
    open: bool,
    errors: VersionErrors,
}

/// The problems of one version's fields, under each field.
#[derive(Debug, Default, Serialize)]
struct VersionErrors {
    language: Option<String>,
    title: Option<String>,
    summary: Option<String>,
    body: Option<String>,
    venue: Option<String>,
    mode_text: Option<String>,
}

impl VersionErrors {
    /// The slot of `field`, when it is one of a version's.
    fn slot(&mut self, field: &str) -> Option<&mut Option<String>> {
        Some(match field {
            "language" => &mut self.language,
            "title" => &mut self.title,
            "summary" => &mut self.summary,
            "body" => &mut self.body,
            "venue" => &mut self.venue,
            "mode_text" => &mut self.mode_text,
            _ => return None,
        })
    }
}

/// The key of the column to add a version in.
const NEW: &str = "vnew";

/// `lang` for a column: the tag, when it is one.
fn lang_of(tag: &str) -> Option<String> {
    Language::parse(tag.trim())
        .ok()
        .map(|l| l.as_str().to_owned())
}

impl VersionForm {
    fn posted(f: &FormData, key: &str) -> Self {
        let get = |name: &str| f.get(&format!("{key}_{name}")).to_owned();
        let language = get("language");
        let mut v = Self {
            key: key.to_owned(),
            is_new: false,
            lang: lang_of(&language),
            language,
            title: get("title"),
            summary: get("summary"),
            body: get("body"),
            venue: get("venue"),
            mode_text: get("mode_text"),
            remove: f.has(&format!("{key}_remove")),
            make_original: f.get("make_original") == key,
            open: true,
            errors: VersionErrors::default(),
        };
        v.is_new = key == NEW;
        v.open = !v.is_new || !v.is_blank();
        v
    }

    fn blank_new() -> Self {
        Self {
            key: NEW.into(),
            is_new: true,
            ..Default::default()
        }
    }

    /// Saved with the item: not marked to be removed, or, the new one, typed in.
    fn is_kept(&self) -> bool {
        if self.is_new {
            !self.is_blank()
        } else {
            !self.remove
        }
    }

    /// Nothing typed in it.
    fn is_blank(&self) -> bool {
        [
            &self.language,
            &self.title,
            &self.summary,
            &self.body,
            &self.venue,
            &self.mode_text,
        ]
        .iter()
        .all(|s| s.trim().is_empty())
    }

    fn to_input(&self, has_event: bool) -> VersionInput {
        // Event words of an item that is no event are not kept (the fields are
        // hidden then).
        let event_words = |s: &str| has_event.then(|| s.to_owned());
        VersionInput {
            language: self.language.trim().to_owned(),
            title: self.title.clone(),
            summary: self.summary.clone(),
            body: self.body.clone(),
            venue: event_words(&self.venue),
            mode_text: event_words(&self.mode_text),
        }
    }
}

/// A time as a `datetime-local` value in `tz`: to the minute, or to the second when
/// it has seconds (so saving a form unchanged does not move the time).
fn local_value<Z: chrono::TimeZone>(t: DateTime<Utc>, tz: &Z) -> String
where
    Z::Offset: std::fmt::Display,
{
    use chrono::Timelike;
    let local = t.with_timezone(tz);
    if local.second() == 0 {
        local.format(LOCAL).to_string()
    } else {
        local.format("%Y-%m-%dT%H:%M:%S").to_string()
    }
}

impl ItemForm {
    fn from_item(item: &Item) -> Self {
        let publish_tz = item
            .event
            .as_ref()
            .map(|e| e.timezone.name().to_owned())
            .unwrap_or_else(|| "UTC".into());
        let ptz: chrono_tz::Tz = publish_tz.parse().unwrap_or(chrono_tz::UTC);
        let mut form = Self {
            title: item.title.clone(),
            slug: item.slug.clone(),
            summary: item.summary.clone(),
            body: item.body_markdown.clone(),
            author: item.author.clone(),
            org_unit: item.org_unit.clone(),
            language: item.language.clone(),
            tags: item.tags.join(", "),
            status: item.status.as_str().into(),
            publish_at: item
                .published_at
                .map(|t| local_value(t, &ptz))
                .unwrap_or_default(),
            publish_tz,
            categories: item.categories.iter().map(|c| c.slug.clone()).collect(),
            event_timezone: "UTC".into(),
            event_mode: "in_person".into(),
            original_lang: lang_of(&item.language),
            versions: item
                .translations
                .iter()
                .enumerate()
                .map(|(n, v)| VersionForm {
                    key: format!("v{n}"),
                    is_new: false,
                    language: v.language.clone(),
                    title: v.title.clone(),
                    summary: v.summary.clone(),
                    body: v.body_markdown.clone(),
                    venue: v.venue.clone().unwrap_or_default(),
                    mode_text: v.mode_text.clone().unwrap_or_default(),
                    remove: false,
                    make_original: false,
                    lang: lang_of(&v.language),
                    open: true,
                    errors: VersionErrors::default(),
                })
                .chain([VersionForm::blank_new()])
                .collect(),
            ..Default::default()
        };
        if let Some(e) = &item.event {
            let tz = e.timezone.tz();
            form.has_event = true;
            form.event_starts_at = local_value(e.starts_at, &tz);
            form.event_ends_at = e.ends_at.map(|t| local_value(t, &tz)).unwrap_or_default();
            form.event_timezone = e.timezone.name().into();
            form.event_venue = e.venue.clone().unwrap_or_default();
            form.event_online_url = e.online_url.clone().unwrap_or_default();
            form.event_mode = e.mode.as_str().into();
            form.event_mode_text = e.mode_text.clone().unwrap_or_default();
        }
        form.has_versions = !item.translations.is_empty();
        form
    }

    fn blank() -> Self {
        Self {
            language: "en".into(),
            status: "draft".into(),
            publish_tz: "UTC".into(),
            event_timezone: "UTC".into(),
            event_mode: "in_person".into(),
            original_lang: Some("en".into()),
            versions: vec![VersionForm::blank_new()],
            ..Default::default()
        }
    }

    fn from_posted(f: &FormData) -> Self {
        let versions = (0..FORM_VERSIONS)
            .filter(|n| f.has(&format!("v{n}_language")))
            .enumerate()
            .map(|(k, n)| {
                let mut v = VersionForm::posted(f, &format!("v{n}"));
                // Numbered afresh, so the form comes back with v0, v1…
                v.key = format!("v{k}");
                v
            })
            .chain([VersionForm::posted(f, NEW)])
            .collect::<Vec<_>>();
        let make_original = versions
            .iter()
            .find(|v| v.make_original && !v.is_new)
            .map(|v| v.key.clone())
            .unwrap_or_default();
        Self {
            make_original,
            has_versions: versions.iter().any(|v| !v.is_new),
            original_lang: lang_of(f.get("language")),
            versions,
            title: f.get("title").into(),
            slug: f.get("slug").into(),
            summary: f.get("summary").into(),
            body: f.get("body").into(),
            author: f.get("author").into(),
            org_unit: f.get("org_unit").into(),
            language: f.get("language").into(),
            tags: f.get("tags").into(),
            status: f.get("status").into(),
            publish_at: f.get("publish_at").into(),
            publish_tz: f.get("publish_tz").into(),
            has_event: f.has("has_event"),
            event_starts_at: f.get("event_starts_at").into(),
            event_ends_at: f.get("event_ends_at").into(),
            event_timezone: f.get("event_timezone").into(),
            event_venue: f.get("event_venue").into(),
            event_online_url: f.get("event_online_url").into(),
            event_mode: f.get("event_mode").into(),
            event_mode_text: f.get("event_mode_text").into(),
            categories: f.all("categories").into_iter().map(str::to_owned).collect(),
        }
    }

    /// The versions saved with the item, in the order of its `translations`: those
    /// not marked to be removed, then the new one when anything is typed in it.
    fn kept_versions(&self) -> Vec<&VersionForm> {
        self.versions.iter().filter(|v| v.is_kept()).collect()
    }

    /// Puts the errors of `translations[n].field` under the fields of their column,
    /// and names them after the column's language in the list on top; returns every
    /// error so renamed.
    fn claim_version_errors(&mut self, errors: FieldErrors) -> FieldErrors {
        let keys: Vec<String> = self.kept_versions().iter().map(|v| v.key.clone()).collect();
        let mut out = FieldErrors::new();
        for e in errors.0 {
            let place = e
                .field
                .strip_prefix("translations[")
                .and_then(|rest| rest.split_once("]."))
                .and_then(|(n, field)| Some((keys.get(n.parse::<usize>().ok()?)?, field)));
            let Some((key, field)) = place else {
                out.0.push(e);
                continue;
            };
            let Some(version) = self.versions.iter_mut().find(|v| v.key == *key) else {
                out.0.push(e);
                continue;
            };
            if let Some(slot) = version.errors.slot(field) {
                match slot {
                    Some(m) => {
                        m.push_str("; ");
                        m.push_str(&e.message);
                    }
                    None => *slot = Some(e.message.clone()),
                }
            }
            let language = match version.language.trim() {
                "" => "new",
                l => l,
            };
            out.0.push(FieldError {
                field: format!("{language} version: {}", field.replace('_', " ")),
                message: e.message,
            });
        }
        out
    }

    /// `input` with `chosen`'s words as the original and the original's as one of the
    /// other versions, in `chosen`'s place: one write, so the item never has two
    /// originals or none. A venue left empty in `chosen` ("the original's") keeps
    /// the original's venue; the original's own venue and mode words go with it.
    fn swap_original(&self, mut input: ItemInput, chosen: &VersionForm) -> ItemInput {
        let position = self
            .kept_versions()
            .iter()
            .position(|v| v.key == chosen.key)
            .expect("a version not removed is kept");
        let mut promoted = chosen.to_input(self.has_event);
        let demoted = VersionInput {
            language: input
                .language
                .clone()
                .unwrap_or_else(|| Language::default().as_str().to_owned()),
            title: std::mem::take(&mut input.title),
            summary: std::mem::take(&mut input.summary),
            body: std::mem::take(&mut input.body),
            venue: input.event.as_mut().and_then(|e| e.venue.take()),
            mode_text: input.event.as_mut().and_then(|e| e.mode_text.take()),
        };
        input.language = Some(promoted.language.clone()).filter(|l| !l.is_empty());
        input.title = std::mem::take(&mut promoted.title);
        input.summary = std::mem::take(&mut promoted.summary);
        input.body = std::mem::take(&mut promoted.body);
        if let Some(event) = input.event.as_mut() {
            let venue = promoted.venue.take().filter(|v| !v.trim().is_empty());
            event.venue = venue.or_else(|| demoted.venue.clone());
            event.mode_text = promoted.mode_text.take();
        }
        input.translations[position] = demoted;
        input
    }

    /// What was typed, for the same checks as the API's, with the publication time
    /// read in its zone.
    fn to_input(&self) -> Result<ItemInput, FieldErrors> {
        let mut errors = FieldErrors::new();
        let published_at = match self.publish_at.trim() {
            "" => None,
            local => errors
                .check(
                    "published_at",
                    local_time(local, &self.publish_tz).map(|t| t.to_rfc3339()),
                )
                .map(Some)
                .unwrap_or(None),
        };
        let input = ItemInput {
            slug: Some(self.slug.trim())
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            title: self.title.clone(),
            summary: self.summary.clone(),
            body: self.body.clone(),
            author: self.author.clone(),
            org_unit: self.org_unit.clone(),
            language: Some(self.language.trim())
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
            categories: self.categories.clone(),
            tags: self
                .tags
                .split(',')
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .collect(),
            status: Some(self.status.clone()).filter(|s| !s.is_empty()),
            published_at,
            event: self.has_event.then(|| EventInput {
                starts_at: self.event_starts_at.clone(),
                ends_at: Some(self.event_ends_at.trim())
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                timezone: self.event_timezone.clone(),
                venue: Some(self.event_venue.clone()),
                online_url: Some(self.event_online_url.clone()),
                mode: self.event_mode.clone(),
                mode_text: Some(self.event_mode_text.clone()),
            }),
            translations: self
                .kept_versions()
                .into_iter()
                .map(|v| v.to_input(self.has_event))
                .collect(),
        };
        let input = match self.versions.iter().find(|v| v.make_original) {
            None => input,
            Some(v) if v.remove => {
                errors.add(
                    "make_original",
                    format!(
                        "the {} version cannot be both removed and made the original; choose one",
                        v.language.trim()
                    ),
                );
                input
            }
            Some(v) => self.swap_original(input, v),
        };
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(errors)
        }
    }
}

#[derive(Serialize)]
struct FormBody {
    id: Option<i64>,
    heading: String,
    action: String,
    form: ItemForm,
    errors: FormErrors,
    categories: Vec<Choice>,
    zones: Vec<Choice>,
    publish_zones: Vec<Choice>,
    modes: Vec<Choice>,
    preview_html: Option<String>,
    public_url: Option<String>,
    visible: bool,
    status_now: String,
    published_now: String,
}

async fn form_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    item: Option<&Item>,
    form: ItemForm,
    errors: FormErrors,
    preview_html: Option<String>,
) -> PageResult {
    let categories = content::list_categories(state.app()).await?;
    let selected: Vec<&str> = form.categories.iter().map(String::as_str).collect();
    let now = state.clock.now();
    let body = FormBody {
        id: item.map(|i| i.id),
        heading: match item {
            Some(i) => format!("Edit “{}”", i.title),
            None => "New item".into(),
        },
        action: match item {
            Some(i) => format!("/admin/items/{}", i.id),
            None => "/admin/items".into(),
        },
        categories: category_choices(&categories, &selected, &state.settings.base_url),
        zones: zone_choices(&form.event_timezone),
        publish_zones: zone_choices(&form.publish_tz),
        modes: [EventMode::InPerson, EventMode::Online, EventMode::Hybrid]
            .iter()
            .map(|m| Choice {
                value: m.as_str().into(),
                label: m.label().into(),
                selected: m.as_str() == form.event_mode,
            })
            .collect(),
        form,
        errors,
        preview_html,
        public_url: item.map(|i| format!("{}/items/{}", state.settings.base_url, i.slug)),
        visible: item.is_some_and(|i| i.is_visible_at(now)),
        status_now: item
            .map(|i| i.status.as_str().to_owned())
            .unwrap_or_default(),
        published_now: item.map(|i| when_opt(i.published_at)).unwrap_or_default(),
    };
    let title = body.heading.clone();
    page::render(
        state,
        session,
        status,
        "items",
        "admin/item_form",
        &title,
        &body,
    )
}

pub async fn new_form(State(state): State<AppState>, session: Session) -> PageResult {
    form_page(
        &state,
        &session,
        StatusCode::OK,
        None,
        ItemForm::blank(),
        FormErrors::none(FIELDS),
        None,
    )
    .await
}

async fn find(state: &AppState, id: &str) -> Result<Item, PageError> {
    let id = parse_id("item", id)?;
    Ok(content::item(state.app(), id).await?)
}

pub async fn edit(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let item = find(&state, &id).await?;
    let form = ItemForm::from_item(&item);
    form_page(
        &state,
        &session,
        StatusCode::OK,
        Some(&item),
        form,
        FormErrors::none(FIELDS),
        None,
    )
    .await
}

fn saved_message(item: &Item, now: DateTime<Utc>, verb: &str) -> String {
    match (item.status, item.published_at) {
        (ItemStatus::Published, Some(at)) if at > now => format!(
            "“{}” {verb}; it is scheduled to appear on {}.",
            item.title,
            page::when(at)
        ),
        (ItemStatus::Published, _) => {
            format!(
                "“{}” {verb}; it is published in the feeds and pages.",
                item.title
            )
        }
        (ItemStatus::Draft, _) => {
            format!("“{}” {verb} as a draft; readers do not see it.", item.title)
        }
    }
}

/// Create and update share this: check, preview or store.
async fn save(
    state: &AppState,
    session: &Session,
    existing: Option<Item>,
    posted: FormData,
) -> PageResult {
    let mut form = ItemForm::from_posted(&posted);
    let (status, errors, preview) = if posted.get("action") == "preview" {
        let html = content::preview(&form.body);
        (StatusCode::OK, FormErrors::none(FIELDS), Some(html))
    } else {
        let app = state.app();
        let saved = match (form.to_input().and_then(ItemInput::parse), &existing) {
            (Err(e), _) => Err(e.into()),
            (Ok(draft), Some(item)) => content::update_item(app, item.id, draft).await,
            (Ok(draft), None) => content::create_item(app, draft).await,
        };
        let saved = saved.map_err(|e| match e {
            ServiceError::Invalid(errors) => {
                ServiceError::Invalid(form.claim_version_errors(errors))
            }
            other => other,
        });
        match page::submitted(saved, FIELDS)? {
            Ok(item) => {
                let verb = if existing.is_some() {
                    "was saved"
                } else {
                    "was created"
                };
                let message = saved_message(&item, state.clock.now(), verb);
                let to = format!("/admin/items/{}", item.id);
                return done(state, session, true, &message, &to).await;
            }
            Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, errors, None),
        }
    };
    form_page(
        state,
        session,
        status,
        existing.as_ref(),
        form,
        errors,
        preview,
    )
    .await
}

pub async fn create(State(state): State<AppState>, session: Session, form: FormData) -> PageResult {
    save(&state, &session, None, form).await
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let item = find(&state, &id).await?;
    save(&state, &session, Some(item), form).await
}

/// The rendered, sanitised Markdown of the form's body (for the live preview).
pub async fn preview(form: FormData) -> impl IntoResponse {
    Html(content::preview(form.get("body")))
}

pub async fn publish(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    form: FormData,
) -> PageResult {
    let item = find(&state, &id).await?;
    let to = format!("/admin/items/{}", item.id);
    let at = match form.non_blank("at") {
        None => None,
        Some(local) => match local_time(local, form.non_blank("at_tz").unwrap_or("UTC")) {
            Ok(t) => Some(t),
            Err(m) => {
                let message = format!("Not published: the time {m}.");
                return done(&state, &session, false, &message, &to).await;
            }
        },
    };
    let published = content::publish_item(state.app(), item.id, at).await?;
    let message = saved_message(&published, state.clock.now(), "was published");
    done(&state, &session, true, &message, &to).await
}

pub async fn unpublish(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let item = find(&state, &id).await?;
    content::unpublish_item(state.app(), item.id).await?;
    let message = format!(
        "“{}” was unpublished: it left the feeds and pages.",
        item.title
    );
    done(
        &state,
        &session,
        true,
        &message,
        &format!("/admin/items/{}", item.id),
    )
    .await
}

pub async fn delete(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let item = find(&state, &id).await?;
    content::delete_item(state.app(), item.id).await?;
    let message = format!("“{}” was deleted.", item.title);
    done(&state, &session, true, &message, "/admin/items").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_posted_form_is_checked_by_the_same_rules_as_the_api() {
        let posted = FormData::parse_str(
            "title=Final+session&categories=events&categories=news&tags=a%2C+b&status=published\
             &publish_at=&publish_tz=UTC&has_event=on&event_starts_at=2023-11-09T14%3A00\
             &event_timezone=Asia%2FShanghai&event_mode=hybrid&event_venue=&event_online_url=",
        );
        let form = ItemForm::from_posted(&posted);
        assert_eq!(form.categories, ["events", "news"]);
        let errors = form.to_input().and_then(ItemInput::parse).unwrap_err();
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["event.online_url", "event.venue"]);
        let shown = FormErrors::new(errors, FIELDS);
        assert!(shown.by_field["event_venue"].is_some());
        assert!(shown.by_field["title"].is_none());
    }

    #[test]
    fn the_form_carries_the_versions_and_names_their_errors_by_language() {
        let posted = FormData::parse_str(
            "title=Final+session&language=en&categories=events\
             &v0_language=zh&v0_title=%E9%97%AD%E5%B9%95&v0_venue=A\
             &v1_language=fr&v1_title=S%C3%A9ance&v1_remove=on\
             &v2_language=de&v2_title=\
             &vnew_language=&vnew_title=&vnew_body=",
        );
        let mut form = ItemForm::from_posted(&posted);
        let keys: Vec<&str> = form.versions.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["v0", "v1", "v2", "vnew"]);
        let input = form.to_input().unwrap();
        let languages: Vec<&str> = input
            .translations
            .iter()
            .map(|v| v.language.as_str())
            .collect();
        assert_eq!(
            languages,
            ["zh", "de"],
            "fr removed, the blank new one left out"
        );
        assert_eq!(input.translations[0].venue, None, "no event: no venue");
        let errors = input.parse().unwrap_err();
        assert_eq!(
            errors
                .0
                .iter()
                .map(|e| e.field.as_str())
                .collect::<Vec<_>>(),
            ["translations[1].title"]
        );
        let named = form.claim_version_errors(errors);
        assert_eq!(named.0[0].field, "de version: title");
        assert!(form.versions[2].errors.title.is_some());
        assert!(form.versions[0].errors.title.is_none());
    }

    #[test]
    fn a_publication_time_is_read_in_the_zone_chosen() {
        let posted = FormData::parse_str(
            "title=x&categories=news&status=published&publish_at=2023-11-09T14%3A00\
             &publish_tz=Asia%2FShanghai",
        );
        let draft = ItemForm::from_posted(&posted)
            .to_input()
            .and_then(ItemInput::parse)
            .unwrap();
        assert_eq!(
            draft.published_at.map(|t| t.to_rfc3339()).as_deref(),
            Some("2023-11-09T06:00:00+00:00")
        );
    }
}
