//! One subscriber's digest: which items they get (nothing sent before, unless edited
//! since), in their language and time zone, rendered to text and HTML. Pure: values
//! in, strings out.

use crate::domain::Item;
use crate::store::{MailingList, Selection, Subscriber};
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
