//! One subscriber's digest: which items they get (nothing sent before, unless edited
//! since), in their language and time zone, rendered to text and HTML. Pure: values
//! in, strings out.
//!
//! Languages: each item comes in the reader's version ([`Item::localized`]), else in
//! its original, which is then marked with its language (`lang` in HTML) and, when it
//! is not in the language of the message's own words, said to be untranslated. The
//! message's own words (subject, greeting, intro, section titles, dates, the event's
//! mode, the footer) come from the label file of the reader's language
//! (`templates/email/digest.labels.LANG.json`, English for a language without one).
//! A label is a whole sentence: a value in it is a placeholder (`{institution}`),
//! never a fragment the template glues on. Placeholders for what a template shows
//! (the reader's name, institution, zone, the list's name) reach it as the text
//! before and after the value ([`Around`]), so the template puts the value in; the
//! others (the subject's, the event time's) are filled here. The list's name is its
//! name in the labels' language ([`MailingList::name_in`]), so the message's own
//! words are all in one language.

use crate::domain::is_chinese;
use crate::domain::{Item, MailingList, Selection, Subscriber, language_matches};
use crate::templates::Templates;
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use std::collections::HashMap;

/// What is the same for every subscriber of a digest.
#[derive(Debug, Clone)]
pub struct DigestContext<'a> {
    pub list: &'a MailingList,
    pub period: crate::domain::IsoWeek,
    pub selection: &'a Selection,
    pub site_name: &'a str,
    pub base_url: &'a str,
    /// The site's languages: a reader of one (`zh`, `zh-Hans`) is linked to the pages
    /// under it (`/zh/items/…`), others to the originals' (`/items/…`).
    pub languages: &'a crate::i18n::SiteLanguages,
}

impl DigestContext<'_> {
    /// Where a reader of `language` reads the site's pages: `BASE/zh` for a site
    /// language (or one of its variants), else `BASE`.
    pub fn pages_base(&self, language: &str) -> String {
        match self.languages.for_content(language) {
            Some(l) => format!("{}/{}", self.base_url, l.as_str()),
            None => self.base_url.to_owned(),
        }
    }
}

/// The links only this subscriber may follow.
#[derive(Debug, Clone)]
pub struct PersonalLinks {
    pub unsubscribe_url: String,
    pub preferences_url: String,
}

/// A rendered digest and what it carries (to record as sent).
#[derive(Debug, Clone)]
pub struct RenderedDigest {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// (item id, the item's `updated_at`) of every item in this message.
    pub items: Vec<(i64, DateTime<Utc>)>,
}

/// A sentence of the labels with one value for the template to put in: the words
/// before it and after it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Around {
    pub before: String,
    pub after: String,
}

#[derive(Serialize)]
struct EventView {
    /// The date and time (the label `event_time`'s `{when}`).
    when: String,
    /// The rest of the label `event_time` around `when`: the zone and its offset.
    time: Around,
    /// The version's own words on how to take part, or the mode's standard words in
    /// the language of the labels.
    mode: String,
    /// The language of `mode` when it is the item's own words in another language.
    mode_lang: Option<String>,
    venue: Option<String>,
    /// The language of `venue` when it is not the labels' (a venue the version did
    /// not translate is the original's).
    venue_lang: Option<String>,
    online_url: Option<String>,
    ics_url: String,
}

#[derive(Serialize)]
struct ItemView {
    title: String,
    url: String,
    summary: String,
    org_unit: String,
    /// The language of `org_unit` when it is not the labels' (it is the original's:
    /// versions do not translate it).
    org_unit_lang: Option<String>,
    published: String,
    updated: bool,
    /// The language of the title and summary when they are not in the reader's
    /// language or not in the labels' (an original the reader has no version of).
    lang: Option<String>,
    /// The item is not in the labels' language: the message says so.
    not_translated: bool,
    event: Option<EventView>,
}

/// The label sentences whose value the template puts in.
#[derive(Serialize)]
struct Phrases {
    /// `{name}`.
    greeting: Around,
    /// `{institution}`.
    intro_institution: Around,
    /// `{zone}`.
    times_in: Around,
    /// `{list}`.
    why: Around,
}

#[derive(Serialize)]
struct DigestData<'a> {
    /// The language of the labels, and so of the message's own words.
    lang: &'a str,
    subject: &'a str,
    labels: &'a serde_json::Value,
    phrases: Phrases,
    site_name: &'a str,
    list_name: &'a str,
    period: String,
    week_label: String,
    name: &'a str,
    institution: Option<&'a str>,
    timezone: String,
    coming_up: Vec<ItemView>,
    news: Vec<ItemView>,
    unsubscribe_url: &'a str,
    preferences_url: &'a str,
    /// The list's public archive in the reader's language; `None` for a list without
    /// one (a private list), whose mail links to no archive.
    archive_url: Option<String>,
}

/// The labels of a reader's language, with what they say of themselves.
pub struct Labels<'a> {
    values: &'a serde_json::Value,
    /// The language they are in: `lang` in the file, else English.
    pub language: &'a str,
}

impl<'a> Labels<'a> {
    pub fn new(values: &'a serde_json::Value) -> Self {
        Self {
            values,
            language: values["lang"].as_str().unwrap_or("en"),
        }
    }

    /// A label's text; an error names the label and the language.
    pub fn get(&self, key: &str) -> anyhow::Result<&'a str> {
        self.values[key].as_str().ok_or_else(|| {
            anyhow::anyhow!(
                "the digest label {key:?} of language {:?} is missing",
                self.language
            )
        })
    }

    /// A label with one placeholder, cut around it.
    pub fn around(&self, key: &str, placeholder: &str) -> anyhow::Result<Around> {
        let label = self.get(key)?;
        let mark = format!("{{{placeholder}}}");
        let (before, after) = label.split_once(&mark).ok_or_else(|| {
            anyhow::anyhow!(
                "the digest label {key:?} of language {:?} must hold {mark}",
                self.language
            )
        })?;
        Ok(Around {
            before: before.to_owned(),
            after: after.to_owned(),
        })
    }

    /// A label with its placeholders filled in one pass (a value is never read for
    /// placeholders); an unknown placeholder is an error.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> anyhow::Result<String> {
        fill(self.get(key)?, values).map_err(|p| {
            anyhow::anyhow!(
                "the digest label {key:?} of language {:?} has an unknown placeholder {{{p}}}",
                self.language
            )
        })
    }
}

/// `template` with each `{name}` replaced by its value; `Err(name)` for a name
/// without one. Braces that enclose no name (`{}`, `{ x`) are kept as they are.
fn fill(template: &str, values: &[(&str, &str)]) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        if name_len > 0 && after[name_len..].starts_with('}') {
            let name = &after[..name_len];
            let value = values
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| name.to_owned())?;
            out.push_str(value.1);
            rest = &after[name_len + 1..];
        } else {
            out.push('{');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

const WEEKDAYS_ZH: [&str; 7] = ["一", "二", "三", "四", "五", "六", "日"];

/// A local date, with its weekday and time when `with_time`, in the labels' language:
/// "2023年11月9日（星期四）14:00", "Thu 9 November 2023, 14:00".
fn local(t: DateTime<Utc>, tz: chrono_tz::Tz, language: &str, with_time: bool) -> String {
    let t = t.with_timezone(&tz);
    match (is_chinese(language), with_time) {
        (true, true) => format!(
            "{}（星期{}）{}",
            t.format("%Y年%-m月%-d日"),
            WEEKDAYS_ZH[t.weekday().num_days_from_monday() as usize],
            t.format("%H:%M")
        ),
        (true, false) => t.format("%Y年%-m月%-d日").to_string(),
        (false, true) => t.format("%a %-d %B %Y, %H:%M").to_string(),
        (false, false) => t.format("%-d %B %Y").to_string(),
    }
}

/// From one time to another: "…14:00 – 17:30" (the end's date left out on the same
/// day), "…14:00至17:30".
fn span(
    start: DateTime<Utc>,
    end: Option<DateTime<Utc>>,
    tz: chrono_tz::Tz,
    language: &str,
) -> String {
    let mut when = local(start, tz, language, true);
    if let Some(end) = end {
        let same_day = end.with_timezone(&tz).date_naive() == start.with_timezone(&tz).date_naive();
        when.push_str(if is_chinese(language) { "至" } else { " – " });
        when.push_str(&if same_day {
            end.with_timezone(&tz).format("%H:%M").to_string()
        } else {
            local(end, tz, language, true)
        });
    }
    when
}

/// When an event is, in the labels' language and in `tz`: the date and time, and the
/// label `event_time` around them (the zone and its offset filled in).
fn event_time(
    e: &crate::domain::Event,
    tz: chrono_tz::Tz,
    labels: &Labels<'_>,
) -> anyhow::Result<(String, Around)> {
    let time = labels.around("event_time", "when")?;
    let offset = e.starts_at.with_timezone(&tz).format("%:z").to_string();
    let zone = crate::i18n::zone_name(tz.name(), labels.language);
    let zone_values = [("zone", zone.as_str()), ("offset", offset.as_str())];
    let fill_zone = |s: &str| {
        fill(s, &zone_values).map_err(|p| {
            anyhow::anyhow!(
                "the digest label \"event_time\" of language {:?} has an unknown placeholder {{{p}}}",
                labels.language
            )
        })
    };
    let around = Around {
        before: fill_zone(&time.before)?,
        after: fill_zone(&time.after)?,
    };
    Ok((span(e.starts_at, e.ends_at, tz, labels.language), around))
}

/// How to take part: the version's own words, or the mode's standard words in
/// `language`.
fn mode_words(e: &crate::domain::Event, language: &str) -> String {
    match &e.mode_text {
        Some(own) => own.clone(),
        None => e.mode.label_in(language).to_owned(),
    }
}

/// An item as a reader of `wanted` reads it, in a message whose own words are in
/// `labels.language`.
fn item_view(
    item: &Item,
    updated: bool,
    base: &str,
    tz: chrono_tz::Tz,
    wanted: &str,
    labels: &Labels<'_>,
) -> anyhow::Result<ItemView> {
    let chrome = labels.language;
    let url = format!("{base}/items/{}", item.slug);
    let read = item.localized(wanted);
    let words = read.language.as_str();
    let own_lang = |language: &str| {
        (!language_matches(language, wanted) || !language_matches(language, chrome))
            .then(|| language.to_owned())
    };
    let event = match (&read.event, &item.event) {
        (Some(e), Some(original)) => {
            // A version without a venue of its own shows the original's.
            let venue_in = if e.venue == original.venue && words != item.language {
                item.language.as_str()
            } else {
                words
            };
            let (when, time) = event_time(e, tz, labels)?;
            Some(EventView {
                when,
                time,
                mode: mode_words(e, chrome),
                mode_lang: e.mode_text.as_ref().and_then(|_| own_lang(words)),
                venue_lang: e.venue.as_ref().and_then(|_| own_lang(venue_in)),
                venue: e.venue.clone(),
                online_url: e.online_url.clone(),
                ics_url: format!("{url}.ics"),
            })
        }
        _ => None,
    };
    Ok(ItemView {
        title: read.title.clone(),
        summary: read.summary.clone(),
        org_unit: read.org_unit.clone(),
        org_unit_lang: (!read.org_unit.is_empty())
            .then(|| own_lang(&item.language))
            .flatten(),
        published: read
            .published_at
            .map(|p| local(p, tz, chrome, false))
            .unwrap_or_default(),
        updated,
        lang: own_lang(words),
        not_translated: !language_matches(words, chrome),
        event,
        url,
    })
}

/// The zone a subscriber reads times in: their own or their institution's (the store
/// fills `partner_timezone` with whichever is set), else the list's.
pub fn subscriber_zone(subscriber: &Subscriber, list: &MailingList) -> chrono_tz::Tz {
    subscriber
        .partner_timezone
        .as_deref()
        .and_then(|z| z.parse().ok())
        .unwrap_or(list.schedule.timezone.tz())
}

/// The subject in the labels' language, with the list's name in it: see [`heading`].
pub fn subject(ctx: &DigestContext<'_>, labels: &Labels<'_>) -> anyhow::Result<String> {
    heading(ctx.list.name_in(labels.language), ctx.period, labels)
}

/// A digest's title in the labels' language, as its subject says it: the label
/// `subject` with the list's name (`{list}`), the week's dates (`{period}`, or
/// `{dates}` without the year) and the ISO year and week number (`{year}`, `{week}`).
pub fn heading(
    list_name: &str,
    period: crate::domain::IsoWeek,
    labels: &Labels<'_>,
) -> anyhow::Result<String> {
    let (year, week) = (period.year().to_string(), period.week().to_string());
    labels.fill(
        "subject",
        &[
            ("list", list_name),
            ("period", &period.label_in(labels.language)),
            ("dates", &period.dates_in(labels.language)),
            ("year", &year),
            ("week", &week),
        ],
    )
}

/// Which items a subscriber gets: (index in `coming_up` then `news`, updated since sent).
fn picks(selection: &Selection, sent_before: &HashMap<i64, DateTime<Utc>>) -> Vec<(usize, bool)> {
    selection
        .coming_up
        .iter()
        .chain(&selection.news)
        .enumerate()
        .filter_map(|(n, item)| match sent_before.get(&item.id) {
            None => Some((n, false)),
            Some(then) if item.updated_at > *then => Some((n, true)),
            Some(_) => None,
        })
        .collect()
}

/// What makes two subscribers' digests the same but for their name and links.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct GroupKey {
    language: String,
    zone: chrono_tz::Tz,
    institution: Option<String>,
    /// `{{#if name}}` tells these apart.
    named: bool,
    picks: Vec<(usize, bool)>,
}

/// One piece of a rendered part.
#[derive(Debug)]
enum Piece {
    Literal(String),
    Name,
    Unsubscribe,
    Preferences,
}

/// A digest rendered once for a group of readers, with holes for what is theirs.
#[derive(Debug)]
struct GroupRender {
    /// The same for the whole group: it holds nothing personal.
    subject: String,
    text: Vec<Piece>,
    html: Vec<Piece>,
    items: Vec<(i64, DateTime<Utc>)>,
}

/// Renders the digests of one batch: the templates run once per group of readers who
/// get the same digest but for their name and personal links (same language, zone,
/// institution and items), and each reader's copy is that rendering with their name and
/// links put in, escaped as the templates escape them. The result is the same, byte for
/// byte, as [`render_for`].
#[derive(Debug, Default)]
pub struct GroupRenderer {
    groups: std::sync::Mutex<HashMap<GroupKey, Option<std::sync::Arc<GroupRender>>>>,
}

/// Stands for a personal value while a group's digest is rendered: control characters
/// (never in a name, refused by the mailer) around a random tag, so no content can
/// look like it, and no escaping changes it.
struct Markers {
    name: String,
    unsubscribe: String,
    preferences: String,
}

impl Markers {
    fn new() -> Self {
        let tag = uuid::Uuid::new_v4().simple().to_string();
        Self {
            name: format!("\u{1}{tag}n\u{2}"),
            unsubscribe: format!("\u{1}{tag}u\u{2}"),
            preferences: format!("\u{1}{tag}p\u{2}"),
        }
    }

    /// `rendered` cut at each marker.
    fn split(&self, rendered: &str) -> Vec<Piece> {
        let mut pieces = Vec::new();
        let mut rest = rendered;
        loop {
            let next = [
                (&self.name, 0),
                (&self.unsubscribe, 1),
                (&self.preferences, 2),
            ]
            .into_iter()
            .filter_map(|(m, p)| rest.find(m.as_str()).map(|at| (at, m.len(), p)))
            .min_by_key(|(at, _, _)| *at);
            match next {
                Some((at, len, which)) => {
                    if at > 0 {
                        pieces.push(Piece::Literal(rest[..at].to_owned()));
                    }
                    pieces.push(match which {
                        0 => Piece::Name,
                        1 => Piece::Unsubscribe,
                        _ => Piece::Preferences,
                    });
                    rest = &rest[at + len..];
                }
                None => {
                    if !rest.is_empty() {
                        pieces.push(Piece::Literal(rest.to_owned()));
                    }
                    return pieces;
                }
            }
        }
    }
}

fn fill_in(pieces: &[Piece], name: &str, unsubscribe: &str, preferences: &str) -> String {
    let len = pieces
        .iter()
        .map(|p| match p {
            Piece::Literal(s) => s.len(),
            Piece::Name => name.len(),
            Piece::Unsubscribe => unsubscribe.len(),
            Piece::Preferences => preferences.len(),
        })
        .sum();
    let mut out = String::with_capacity(len);
    for p in pieces {
        out.push_str(match p {
            Piece::Literal(s) => s,
            Piece::Name => name,
            Piece::Unsubscribe => unsubscribe,
            Piece::Preferences => preferences,
        });
    }
    out
}

impl GroupRenderer {
    pub fn new() -> Self {
        Self::default()
    }

    /// As [`render_for`], for one subscriber of a batch.
    pub fn render_for(
        &self,
        templates: &Templates,
        ctx: &DigestContext<'_>,
        subscriber: &Subscriber,
        sent_before: &HashMap<i64, DateTime<Utc>>,
        links: &PersonalLinks,
    ) -> anyhow::Result<Option<RenderedDigest>> {
        let picks = picks(ctx.selection, sent_before);
        if picks.is_empty() {
            return Ok(None);
        }
        // Empty links would test false in the templates; they never are, but then the
        // plain way is the right one.
        if links.unsubscribe_url.is_empty() || links.preferences_url.is_empty() {
            return render_for(templates, ctx, subscriber, sent_before, links);
        }
        let key = GroupKey {
            language: subscriber.language.clone(),
            zone: subscriber_zone(subscriber, ctx.list),
            institution: subscriber.partner_name.clone(),
            named: !subscriber.name.is_empty(),
            picks,
        };
        let cached = lock(&self.groups).get(&key).cloned();
        let group = match cached {
            Some(Some(group)) => group,
            // The markers did not survive: this group is rendered reader by reader.
            Some(None) => return render_for(templates, ctx, subscriber, sent_before, links),
            None => {
                let group = Self::render_group(templates, ctx, subscriber, sent_before)?
                    .map(std::sync::Arc::new);
                lock(&self.groups).insert(key, group.clone());
                match group {
                    Some(group) => group,
                    None => return render_for(templates, ctx, subscriber, sent_before, links),
                }
            }
        };
        let html_name = html_escape(&subscriber.name);
        let html_unsubscribe = html_escape(&links.unsubscribe_url);
        let html_preferences = html_escape(&links.preferences_url);
        Ok(Some(RenderedDigest {
            subject: group.subject.clone(),
            text: fill_in(
                &group.text,
                &subscriber.name,
                &links.unsubscribe_url,
                &links.preferences_url,
            ),
            html: fill_in(
                &group.html,
                &html_name,
                &html_unsubscribe,
                &html_preferences,
            ),
            items: group.items.clone(),
        }))
    }

    /// The group's digest with markers for the personal values; `None` when the templates
    /// did more to a marker than copy it.
    fn render_group(
        templates: &Templates,
        ctx: &DigestContext<'_>,
        subscriber: &Subscriber,
        sent_before: &HashMap<i64, DateTime<Utc>>,
    ) -> anyhow::Result<Option<GroupRender>> {
        let markers = Markers::new();
        let mut stand_in = subscriber.clone();
        if !stand_in.name.is_empty() {
            stand_in.name = markers.name.clone();
        }
        let links = PersonalLinks {
            unsubscribe_url: markers.unsubscribe.clone(),
            preferences_url: markers.preferences.clone(),
        };
        let Some(rendered) = render_for(templates, ctx, &stand_in, sent_before, &links)? else {
            return Ok(None);
        };
        // Anything the templates did to a marker other than copy it (cut it, change its
        // case) leaves a stray control character.
        let clean = |pieces: &[Piece]| {
            pieces.iter().all(|p| match p {
                Piece::Literal(s) => !s.contains(['\u{1}', '\u{2}']),
                _ => true,
            })
        };
        let text = markers.split(&rendered.text);
        let html = markers.split(&rendered.html);
        if !clean(&text) || !clean(&html) {
            return Ok(None);
        }
        Ok(Some(GroupRender {
            subject: rendered.subject,
            text,
            html,
            items: rendered.items,
        }))
    }
}

/// `handlebars::html_escape`, without its character-by-character copy when there is
/// nothing to escape: personal links (a base URL and a hex token) never have anything,
/// and three values are escaped for every message of a digest.
fn html_escape(s: &str) -> std::borrow::Cow<'_, str> {
    // The characters handlebars escapes, all ASCII: a byte never looks like one
    // inside a multi-byte character.
    if s.bytes()
        .any(|b| matches!(b, b'<' | b'>' | b'"' | b'&' | b'\'' | b'`' | b'='))
    {
        std::borrow::Cow::Owned(handlebars::html_escape(s))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Renders a subscriber's digest. `None` when every item was sent to them before and
/// has not changed since: they get no mail.
pub fn render_for(
    templates: &Templates,
    ctx: &DigestContext<'_>,
    subscriber: &Subscriber,
    sent_before: &HashMap<i64, DateTime<Utc>>,
    links: &PersonalLinks,
) -> anyhow::Result<Option<RenderedDigest>> {
    let tz = subscriber_zone(subscriber, ctx.list);
    let language = subscriber.language.as_str();
    let label_values = templates.digest_labels(language);
    let labels = Labels::new(label_values);
    let pages = ctx.pages_base(language);
    let mut carried = Vec::new();
    let mut pick = |items: &[Item]| -> anyhow::Result<Vec<ItemView>> {
        let mut views = Vec::new();
        for item in items {
            let updated = match sent_before.get(&item.id) {
                None => false,
                Some(then) if item.updated_at > *then => true,
                Some(_) => continue,
            };
            carried.push((item.id, item.updated_at));
            views.push(item_view(item, updated, &pages, tz, language, &labels)?);
        }
        Ok(views)
    };
    let coming_up = pick(&ctx.selection.coming_up)?;
    let news = pick(&ctx.selection.news)?;
    if carried.is_empty() {
        return Ok(None);
    }
    let subject = subject(ctx, &labels)?;
    let data = DigestData {
        lang: labels.language,
        subject: &subject,
        labels: label_values,
        phrases: Phrases {
            greeting: labels.around("greeting", "name")?,
            intro_institution: labels.around("intro_institution", "institution")?,
            times_in: labels.around("times_in", "zone")?,
            why: labels.around("why", "list")?,
        },
        site_name: ctx.site_name,
        list_name: ctx.list.name_in(labels.language),
        period: ctx.period.to_string(),
        week_label: ctx.period.label_in(labels.language),
        name: &subscriber.name,
        institution: subscriber.partner_name.as_deref(),
        timezone: crate::i18n::zone_name(tz.name(), labels.language),
        coming_up,
        news,
        unsubscribe_url: &links.unsubscribe_url,
        preferences_url: &links.preferences_url,
        archive_url: ctx
            .list
            .has_public_archive()
            .then(|| format!("{pages}/digests/{}", ctx.list.slug)),
    };
    let rendered = templates.render_email("digest", language, &data)?;
    Ok(Some(RenderedDigest {
        subject,
        text: rendered.text,
        html: rendered.html,
        items: carried,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{
        EventMode, ItemStatus, JoinedVia, OptIn, Schedule, SubscriberStatus, TimeZone, Visibility,
    };
    use chrono::TimeZone as _;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2023, 11, day, hour, 0, 0).unwrap()
    }

    fn item(id: i64, title: &str, event: bool) -> Item {
        Item {
            id,
            slug: format!("item-{id}"),
            title: title.into(),
            summary: format!("About {title} & <more>"),
            body_markdown: String::new(),
            body_html: String::new(),
            author: "Desk".into(),
            org_unit: "International Office".into(),
            language: "en".into(),
            status: ItemStatus::Published,
            published_at: Some(at(6, 9)),
            created_at: at(6, 9),
            updated_at: at(7, 9),
            categories: Vec::new(),
            tags: Vec::new(),
            event: event.then(|| crate::domain::Event {
                starts_at: at(9, 6),
                ends_at: Some(at(9, 8)),
                timezone: TimeZone::parse("Asia/Shanghai").unwrap(),
                venue: Some("Hall \"A\"".into()),
                online_url: Some("https://meet.example.edu/x?a=1&b=2".into()),
                mode: EventMode::Hybrid,
                mode_text: None,
            }),
            translations: Vec::new(),
        }
    }

    /// `item` with a Chinese version: its title, and a venue of its own for an event.
    fn with_zh(mut item: Item, title: &str) -> Item {
        item.translations.push(crate::domain::ItemVersion {
            language: "zh".into(),
            title: title.into(),
            summary: format!("关于{title}"),
            body_markdown: String::new(),
            body_html: String::new(),
            venue: item.event.as_ref().map(|_| "甲厅".to_owned()),
            mode_text: None,
        });
        item
    }

    /// An item in Chinese only.
    fn chinese_only(id: i64, title: &str) -> Item {
        let mut item = item(id, title, false);
        item.language = "zh".into();
        item.summary = format!("关于{title}");
        item
    }

    fn partners_list() -> MailingList {
        MailingList {
            id: 1,
            slug: "partners".into(),
            name: "Partner News".into(),
            names: Default::default(),
            description: String::new(),
            categories: Vec::new(),
            opt_in: OptIn::Double,
            visibility: Visibility::Public,
            schedule: Schedule::default(),
            created_at: at(1, 0),
            updated_at: at(1, 0),
        }
    }

    /// The week 45 digest of `selection` for one reader, as sent.
    fn render_one(selection: &Selection, reader: &Subscriber) -> RenderedDigest {
        render_list(&partners_list(), selection, reader)
    }

    fn render_list(
        list: &MailingList,
        selection: &Selection,
        reader: &Subscriber,
    ) -> RenderedDigest {
        let templates = Templates::load().unwrap();
        let ctx = DigestContext {
            list,
            period: crate::domain::IsoWeek::parse("2023-W45").unwrap(),
            selection,
            site_name: "SZPU News",
            base_url: "https://news.example.edu",
            languages: &crate::i18n::SiteLanguages::default(),
        };
        let links = PersonalLinks {
            unsubscribe_url: "https://news.example.edu/unsubscribe/t".into(),
            preferences_url: "https://news.example.edu/preferences/t".into(),
        };
        render_for(&templates, &ctx, reader, &HashMap::new(), &links)
            .unwrap()
            .unwrap()
    }

    fn has_cjk(s: &str) -> bool {
        s.chars().any(|c| {
            matches!(c, '\u{3000}'..='\u{303f}' | '\u{3400}'..='\u{9fff}' | '\u{ff00}'..='\u{ffef}')
        })
    }

    /// An open day (hybrid, in English and Chinese) coming up, and two news items:
    /// one in English only, one in Chinese only.
    fn bilingual_selection() -> Selection {
        Selection {
            coming_up: vec![with_zh(item(1, "Open day", true), "开放日")],
            news: vec![item(2, "New lab", false), chinese_only(3, "新实验室")],
        }
    }

    #[test]
    fn the_list_is_named_in_the_readers_language_where_it_has_a_name_in_it() {
        let mut list = partners_list();
        list.names = crate::domain::Names::from_stored([("zh".into(), "合作院校通讯".into())]);
        let zh = render_list(
            &list,
            &bilingual_selection(),
            &subscriber(1, "李伟", None, "zh-Hans"),
        );
        assert_eq!(
            zh.subject,
            "合作院校通讯：2023年第45周摘要（11月6日至12日）"
        );
        for part in [&zh.text, &zh.html] {
            assert!(part.contains("您订阅了“合作院校通讯”"), "{part}");
            assert!(!part.contains("Partner News"), "{part}");
        }
        let en = render_list(
            &list,
            &bilingual_selection(),
            &subscriber(2, "Ann", None, "en"),
        );
        assert_eq!(en.subject, "Partner News: 6–12 November 2023");
        assert!(!en.text.contains("合作院校通讯") && !en.html.contains("合作院校通讯"));
    }

    #[test]
    fn a_chinese_reader_reads_the_chinese_versions_in_whole_chinese_sentences() {
        let zhejiang = Some(("Zhejiang Institute", "Asia/Shanghai"));
        let r = render_one(
            &bilingual_selection(),
            &subscriber(1, "李伟", zhejiang, "zh"),
        );
        assert_eq!(r.subject, "Partner News：2023年第45周摘要（11月6日至12日）");
        for part in [&r.text, &r.html] {
            for expected in [
                "2023年11月6日至12日",
                "李伟，您好！",
                "以下是为Zhejiang Institute各位同事整理的近期活动与最新动态。",
                "近期活动",
                "开放日",
                "关于开放日",
                "2023年11月9日（星期四）14:00至16:00",
                "（北京时间，UTC+08:00）",
                "线上线下结合",
                "甲厅",
                "在线参加：",
                "新闻",
                "2023年11月6日",
                "新实验室",
                "（暂无中文版本，以下为原文）",
                "文中时间均为北京时间。",
                "您收到此邮件，是因为您订阅了“Partner News”。",
                "退订",
            ] {
                assert!(part.contains(expected), "{expected:?} in {part}");
            }
            for english in [
                "Open day",
                "Hybrid",
                "Hello",
                "Coming up",
                "November",
                "Thu",
            ] {
                assert!(!part.contains(english), "{english:?} in {part}");
            }
        }
        // The English-only item is said to be untranslated, once, and marked English.
        assert_eq!(r.text.matches("（暂无中文版本，以下为原文）").count(), 1);
        assert!(
            r.text.contains("* New lab （暂无中文版本，以下为原文）"),
            "{}",
            r.text
        );
        assert!(r.html.contains("<html lang=\"zh\">"));
        assert!(r.html.contains(">开放日</a>") && !r.html.contains("lang=\"zh\" style"));
        assert!(
            r.html
                .contains("lang=\"en\" style=\"color:#0b5394;text-decoration:none;\">New lab</a>")
        );
        assert!(r.html.contains(
            "<p style=\"margin:0 0 4px;\" lang=\"en\">About New lab &amp; &lt;more&gt;</p>"
        ));
        // Its title, summary and institution; nothing else.
        assert!(
            r.html
                .contains("· <span lang=\"en\">International Office</span>")
        );
        assert_eq!(r.html.matches("lang=\"en\"").count(), 3, "{}", r.html);
    }

    #[test]
    fn an_english_reader_reads_english_only_and_the_chinese_only_item_is_marked() {
        let temasek = Some(("Temasek Polytechnic", "Asia/Singapore"));
        let r = render_one(&bilingual_selection(), &subscriber(1, "Ada", temasek, "en"));
        assert_eq!(r.subject, "Partner News: 6–12 November 2023");
        for part in [&r.text, &r.html] {
            for expected in [
                "Hello Ada,",
                "Here is what is coming up and what happened, for colleagues at Temasek Polytechnic.",
                "Open day",
                "Thu 9 November 2023, 14:00 – 16:00",
                " (Asia/Singapore, UTC+08:00)",
                "Hybrid (in person and online)",
                "Hall",
                "New lab",
                "(not available in English)",
                "Times are shown in the time zone Asia/Singapore.",
                "You receive this because you subscribed to Partner News.",
            ] {
                assert!(part.contains(expected), "{expected:?} in {part}");
            }
        }
        // The Chinese-only item is the one Chinese text, marked as such.
        let without = |s: &str| s.replace("新实验室", "").replace("关于", "");
        assert!(!has_cjk(&without(&r.text)), "{}", r.text);
        assert!(!has_cjk(&without(&r.html)), "{}", r.html);
        assert!(
            r.text.contains("* 新实验室 (not available in English)"),
            "{}",
            r.text
        );
        assert!(
            r.html
                .contains("lang=\"zh\" style=\"color:#0b5394;text-decoration:none;\">新实验室</a>")
        );
        assert!(r.html.contains("<html lang=\"en\">"));
        assert_eq!(
            r.html.matches("lang=\"").count(),
            4,
            "the page, and the Chinese item's title, summary and institution"
        );
        // Without the Chinese-only item, no Chinese at all.
        let mut english = bilingual_selection();
        english.news.pop();
        let r = render_one(&english, &subscriber(1, "", None, "en"));
        assert!(!has_cjk(&r.subject) && !has_cjk(&r.text) && !has_cjk(&r.html));
        assert!(
            r.text
                .contains("\nHello,\nHere is what is coming up and what happened.\n"),
            "{}",
            r.text
        );
    }

    #[test]
    fn a_reader_of_a_language_no_item_has_gets_the_originals_with_english_words() {
        let r = render_one(&bilingual_selection(), &subscriber(1, "Zoé", None, "fr"));
        assert_eq!(r.subject, "Partner News: 6–12 November 2023");
        assert!(r.html.contains("<html lang=\"en\">"));
        assert!(
            r.text.contains("Hello Zoé,") && r.text.contains("* Open day\n"),
            "{}",
            r.text
        );
        // Each original is marked with its language, as none is in French; only the
        // Chinese one is said not to be in English.
        assert!(
            r.html
                .contains("lang=\"en\" style=\"color:#0b5394;text-decoration:none;\">Open day</a>")
        );
        assert!(
            r.html
                .contains("lang=\"en\" style=\"color:#0b5394;text-decoration:none;\">New lab</a>")
        );
        assert!(
            r.html
                .contains("lang=\"zh\" style=\"color:#0b5394;text-decoration:none;\">新实验室</a>")
        );
        assert!(
            r.html
                .contains("<span lang=\"en\">Hall &quot;A&quot;</span>"),
            "the original's venue"
        );
        assert_eq!(r.text.matches("(not available in English)").count(), 1);
        // A Chinese reader of a region reads the Chinese version.
        let r = render_one(&bilingual_selection(), &subscriber(1, "", None, "zh-Hans"));
        assert!(
            r.text.starts_with("Partner News - 2023年11月6日至12日\n"),
            "{}",
            r.text
        );
        assert!(
            r.text.contains("\n您好！\n以下是近期活动与最新动态。\n"),
            "{}",
            r.text
        );
        assert!(r.text.contains("* 开放日\n"), "{}", r.text);
    }

    #[test]
    fn a_version_without_a_venue_shows_the_original_venue_marked_and_its_own_mode_words() {
        let mut open_day = with_zh(item(1, "Open day", true), "开放日");
        open_day.translations[0].venue = None;
        open_day.translations[0].mode_text = Some("现场与腾讯会议".into());
        let selection = Selection {
            coming_up: vec![open_day],
            news: Vec::new(),
        };
        let r = render_one(&selection, &subscriber(1, "", None, "zh"));
        assert!(
            r.html
                .contains("现场与腾讯会议 · <span lang=\"en\">Hall &quot;A&quot;</span>"),
            "{}",
            r.html
        );
        assert!(
            r.text.contains("  现场与腾讯会议 - Hall \"A\"\n"),
            "{}",
            r.text
        );
        assert!(!r.text.contains("线上线下结合"));
    }

    #[test]
    fn every_language_has_every_label_with_its_placeholders() {
        let templates = Templates::load().unwrap();
        let digest_labels = |language| templates.digest_labels(language);
        let english = digest_labels("en").as_object().unwrap();
        for language in ["en", "zh"] {
            let values = digest_labels(language);
            let labels = Labels::new(values);
            assert_eq!(labels.language, language);
            let keys: Vec<_> = values.as_object().unwrap().keys().collect();
            assert_eq!(keys, english.keys().collect::<Vec<_>>(), "{language}");
            // The labels with a value for the template hold it once, and nothing else.
            for (key, placeholder) in [
                ("greeting", "name"),
                ("intro_institution", "institution"),
                ("times_in", "zone"),
                ("why", "list"),
            ] {
                let around = labels.around(key, placeholder).unwrap();
                for part in [&around.before, &around.after] {
                    assert!(!part.contains('{'), "{language} {key}");
                }
            }
            let time = labels.around("event_time", "when").unwrap();
            let zone = [("zone", "Z"), ("offset", "+08:00")];
            let filled = fill(&time.before, &zone).unwrap() + &fill(&time.after, &zone).unwrap();
            assert!(
                filled.contains('Z') && filled.contains("+08:00"),
                "{language}"
            );
            let subject = labels
                .fill(
                    "subject",
                    &[
                        ("list", "L"),
                        ("period", "P"),
                        ("dates", "D"),
                        ("year", "Y"),
                        ("week", "W"),
                    ],
                )
                .unwrap();
            assert!(subject.contains('L'), "{language}: {subject}");
            // Every other label is plain words.
            for (key, value) in values.as_object().unwrap() {
                if [
                    "greeting",
                    "intro_institution",
                    "times_in",
                    "why",
                    "event_time",
                    "subject",
                ]
                .contains(&key.as_str())
                {
                    continue;
                }
                assert!(
                    labels.fill(key, &[]).unwrap() == value.as_str().unwrap(),
                    "{language} {key} has a placeholder"
                );
            }
        }
        // A label without its placeholder is an error naming it.
        let broken = serde_json::json!({"lang": "xx", "greeting": "Hello"});
        let e = Labels::new(&broken).around("greeting", "name").unwrap_err();
        assert_eq!(
            e.to_string(),
            "the digest label \"greeting\" of language \"xx\" must hold {name}"
        );
        let e = Labels::new(&broken).get("why").unwrap_err();
        assert!(e.to_string().contains("\"why\""), "{e}");
    }

    #[test]
    fn placeholders_are_filled_once_and_unknown_ones_refused() {
        let values = [("a", "{b}"), ("b", "x")];
        assert_eq!(fill("{a} and {b}", &values).unwrap(), "{b} and x");
        assert_eq!(fill("{} { a} {a", &values).unwrap(), "{} { a} {a");
        assert_eq!(fill("{c}", &values).unwrap_err(), "c");
        assert_eq!(fill("二{a}三", &values).unwrap(), "二{b}三");
    }

    fn subscriber(id: i64, name: &str, partner: Option<(&str, &str)>, lang: &str) -> Subscriber {
        Subscriber {
            id,
            email: format!("reader{id}@example.edu"),
            name: name.into(),
            partner_id: partner.map(|_| 1),
            partner_name: partner.map(|(n, _)| n.to_owned()),
            partner_timezone: partner.map(|(_, z)| z.to_owned()),
            timezone: None,
            language: lang.into(),
            status: SubscriberStatus::Confirmed,
            joined_via: JoinedVia::Admin,
            consent_at: None,
            consent_source: None,
            consent_ip: None,
            attributes: Default::default(),
            created_at: at(1, 0),
            updated_at: at(1, 0),
        }
    }

    #[test]
    fn escaping_skips_the_copy_only_when_handlebars_would_change_nothing() {
        let cases = [
            "",
            "Ada",
            "李伟",
            "https://news.example.edu/unsubscribe/0af3",
            "a<b",
            "a>b",
            "\"",
            "&amp;",
            "O'Brien",
            "`",
            "x=y",
            "Zoë & 李",
        ];
        for s in cases {
            assert_eq!(html_escape(s), handlebars::html_escape(s), "{s}");
        }
    }

    #[test]
    fn group_rendering_is_byte_for_byte_the_plain_rendering() {
        let templates = Templates::load().unwrap();
        let list = MailingList {
            id: 1,
            slug: "partners".into(),
            name: "Partner <News> & Co".into(),
            names: Default::default(),
            description: String::new(),
            categories: Vec::new(),
            opt_in: OptIn::Double,
            visibility: Visibility::Public,
            schedule: Schedule::default(),
            created_at: at(1, 0),
            updated_at: at(1, 0),
        };
        let selection = Selection {
            coming_up: vec![
                with_zh(item(1, "Open day", true), "开放日"),
                item(2, "Workshop", true),
            ],
            news: vec![
                item(3, "New lab", false),
                with_zh(item(4, "Award <b>", false), "奖项 <b>"),
            ],
        };
        let ctx = DigestContext {
            list: &list,
            period: crate::domain::IsoWeek::parse("2023-W45").unwrap(),
            selection: &selection,
            site_name: "SZPU \"News\"",
            base_url: "https://news.example.edu",
            languages: &crate::i18n::SiteLanguages::default(),
        };
        let partners = [
            None,
            Some(("Temasek Polytechnic", "Asia/Singapore")),
            Some(("Zhejiang <Institute> & Co", "Asia/Shanghai")),
        ];
        let names = ["Ada", "", " ", "Zoë <b>&amp;\"'`=</b>", "李伟", "Reader 7"];
        let sent_sets: [HashMap<i64, DateTime<Utc>>; 4] = [
            HashMap::new(),
            HashMap::from([(1, at(8, 0))]),
            HashMap::from([(1, at(6, 0)), (3, at(8, 0))]),
            HashMap::from([(1, at(8, 0)), (2, at(8, 0)), (3, at(8, 0)), (4, at(8, 0))]),
        ];
        let renderer = GroupRenderer::new();
        let mut id = 0;
        // Twice over: the second round reads every group from the cache.
        for _ in 0..2 {
            for lang in ["en", "zh-Hans", "fr"] {
                for partner in partners {
                    for name in names {
                        for sent in &sent_sets {
                            id += 1;
                            let s = subscriber(id, name, partner, lang);
                            let links = PersonalLinks {
                                unsubscribe_url: format!(
                                    "https://news.example.edu/unsubscribe/t{id}?a=1&b=\"2\""
                                ),
                                preferences_url: format!(
                                    "https://news.example.edu/preferences/p{id}=<x>"
                                ),
                            };
                            let plain = render_for(&templates, &ctx, &s, sent, &links).unwrap();
                            let grouped = renderer
                                .render_for(&templates, &ctx, &s, sent, &links)
                                .unwrap();
                            match (plain, grouped) {
                                (None, None) => {}
                                (Some(p), Some(g)) => {
                                    assert_eq!(p.subject, g.subject);
                                    assert_eq!(p.text, g.text, "{name:?} {lang} {partner:?}");
                                    assert_eq!(p.html, g.html, "{name:?} {lang} {partner:?}");
                                    assert_eq!(p.items, g.items);
                                }
                                (p, g) => panic!("{p:?} vs {g:?}"),
                            }
                        }
                    }
                }
            }
        }
        assert!(lock(&renderer.groups).values().all(Option::is_some));
    }
}
