//! One subscriber's digest: which items they get (nothing sent before, unless edited
//! since), in their language and time zone, rendered to text and HTML. Pure: values
//! in, strings out.

use crate::domain::{Item, MailingList, Selection, Subscriber};
use crate::templates::{Templates, digest_labels};
use chrono::{DateTime, Utc};
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

#[derive(Serialize)]
struct EventView {
    when: String,
    zone: String,
    mode: String,
    venue: Option<String>,
    online_url: Option<String>,
    ics_url: String,
}

#[derive(Serialize)]
struct ItemView {
    title: String,
    url: String,
    summary: String,
    org_unit: String,
    published: String,
    updated: bool,
    event: Option<EventView>,
}

#[derive(Serialize)]
struct DigestData<'a> {
    lang: &'a str,
    subject: &'a str,
    labels: &'static serde_json::Value,
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
    archive_url: String,
}

fn chinese(language: &str) -> bool {
    language.split('-').next() == Some("zh")
}

/// A local date and time in the subscriber's language.
fn local(t: DateTime<Utc>, tz: chrono_tz::Tz, language: &str, with_time: bool) -> String {
    let t = t.with_timezone(&tz);
    match (chinese(language), with_time) {
        (true, true) => t.format("%Y年%-m月%-d日 %H:%M").to_string(),
        (true, false) => t.format("%Y年%-m月%-d日").to_string(),
        (false, true) => t.format("%a %-d %B %Y, %H:%M").to_string(),
        (false, false) => t.format("%-d %B %Y").to_string(),
    }
}

fn item_view(
    item: &Item,
    updated: bool,
    base: &str,
    tz: chrono_tz::Tz,
    language: &str,
) -> ItemView {
    let url = format!("{base}/items/{}", item.slug);
    let event = item.event.as_ref().map(|e| {
        let mut when = local(e.starts_at, tz, language, true);
        if let Some(end) = e.ends_at {
            let same_day =
                end.with_timezone(&tz).date_naive() == e.starts_at.with_timezone(&tz).date_naive();
            when.push_str(" – ");
            when.push_str(&if same_day {
                end.with_timezone(&tz).format("%H:%M").to_string()
            } else {
                local(end, tz, language, true)
            });
        }
        EventView {
            when,
            zone: format!(
                "{}, UTC{}",
                tz.name(),
                e.starts_at.with_timezone(&tz).format("%:z")
            ),
            mode: e.mode.label().into(),
            venue: e.venue.clone(),
            online_url: e.online_url.clone(),
            ics_url: format!("{url}.ics"),
        }
    });
    ItemView {
        title: item.title.clone(),
        summary: item.summary.clone(),
        org_unit: item.org_unit.clone(),
        published: item
            .published_at
            .map(|p| local(p, tz, language, false))
            .unwrap_or_default(),
        updated,
        event,
        url,
    }
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

pub fn subject(ctx: &DigestContext<'_>) -> String {
    format!("{}: {}", ctx.list.name, ctx.period.label())
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

fn fill(pieces: &[Piece], name: &str, unsubscribe: &str, preferences: &str) -> String {
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
            subject: subject(ctx),
            text: fill(
                &group.text,
                &subscriber.name,
                &links.unsubscribe_url,
                &links.preferences_url,
            ),
            html: fill(
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
    let mut carried = Vec::new();
    let mut pick = |items: &[Item]| -> Vec<ItemView> {
        items
            .iter()
            .filter_map(|item| {
                let updated = match sent_before.get(&item.id) {
                    None => false,
                    Some(then) if item.updated_at > *then => true,
                    Some(_) => return None,
                };
                carried.push((item.id, item.updated_at));
                Some(item_view(item, updated, ctx.base_url, tz, language))
            })
            .collect()
    };
    let coming_up = pick(&ctx.selection.coming_up);
    let news = pick(&ctx.selection.news);
    if carried.is_empty() {
        return Ok(None);
    }
    let subject = subject(ctx);
    let data = DigestData {
        lang: language,
        subject: &subject,
        labels: digest_labels(language),
        site_name: ctx.site_name,
        list_name: &ctx.list.name,
        period: ctx.period.to_string(),
        week_label: ctx.period.label(),
        name: &subscriber.name,
        institution: subscriber.partner_name.as_deref(),
        timezone: tz.name().to_owned(),
        coming_up,
        news,
        unsubscribe_url: &links.unsubscribe_url,
        preferences_url: &links.preferences_url,
        archive_url: format!("{}/digests/{}", ctx.base_url, ctx.list.slug),
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
            }),
        }
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
            description: String::new(),
            categories: Vec::new(),
            opt_in: OptIn::Double,
            visibility: Visibility::Public,
            schedule: Schedule::default(),
            created_at: at(1, 0),
            updated_at: at(1, 0),
        };
        let selection = Selection {
            coming_up: vec![item(1, "Open day", true), item(2, "Workshop", true)],
            news: vec![item(3, "New lab", false), item(4, "Award <b>", false)],
        };
        let ctx = DigestContext {
            list: &list,
            period: crate::domain::IsoWeek::parse("2023-W45").unwrap(),
            selection: &selection,
            site_name: "SZPU \"News\"",
            base_url: "https://news.example.edu",
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
            for lang in ["en", "zh-Hans"] {
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
