//! What the page templates see: plain values, dates already formatted.

use crate::config::Settings;
use crate::domain::{Category, Item};
use crate::feeds::{EntryEvent, FeedFormat, event_when};
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct FeedLink {
    pub media_type: &'static str,
    pub title: String,
    pub label: &'static str,
    pub url: String,
}

/// Autodiscovery links for a scope (`all` or a category slug).
pub fn feed_links(settings: &Settings, scope: &str, name: &str) -> Vec<FeedLink> {
    FeedFormat::ALL
        .iter()
        .map(|f| FeedLink {
            media_type: f.media_type().split(';').next().unwrap_or_default(),
            title: format!("{name} ({})", f.label()),
            label: f.label(),
            url: format!("{}/feeds/{scope}.{}", settings.base_url, f.extension()),
        })
        .collect()
}

#[derive(Debug, Serialize)]
pub struct Page<T: Serialize> {
    pub lang: String,
    pub page_title: String,
    pub site_name: String,
    pub base_url: String,
    pub feeds: Vec<FeedLink>,
    #[serde(flatten)]
    pub body: T,
}

impl<T: Serialize> Page<T> {
    pub fn new(settings: &Settings, title: &str, feeds: Vec<FeedLink>, body: T) -> Self {
        Self {
            lang: "en".into(),
            page_title: if title.is_empty() {
                settings.site_name.clone()
            } else {
                format!("{title} · {}", settings.site_name)
            },
            site_name: settings.site_name.clone(),
            base_url: settings.base_url.clone(),
            feeds,
            body,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CategoryLink {
    pub slug: String,
    pub name: String,
    pub url: String,
    pub indent: usize,
}

#[derive(Debug, Serialize)]
pub struct EventView {
    pub when: String,
    pub starts_at_iso: String,
    pub mode: String,
    pub venue: Option<String>,
    pub online_url: Option<String>,
    pub ics_url: String,
}

#[derive(Debug, Serialize)]
pub struct ItemView {
    pub title: String,
    pub url: String,
    pub summary: String,
    pub body_html: String,
    pub author: String,
    pub org_unit: String,
    pub language: String,
    pub published: String,
    pub published_iso: String,
    pub updated: String,
    pub updated_iso: String,
    pub was_updated: bool,
    pub categories: Vec<CategoryLink>,
    pub tags: Vec<String>,
    pub event: Option<EventView>,
}

impl ItemView {
    pub fn new(item: &Item, base: &str) -> Self {
        let url = format!("{base}/items/{}", item.slug);
        let published_at = item.published_at.unwrap_or(item.created_at);
        let event = item.event.as_ref().map(|e| {
            let entry = EntryEvent {
                starts_at: e.starts_at,
                ends_at: e.ends_at,
                timezone: e.timezone.tz(),
                venue: e.venue.clone(),
                online_url: e.online_url.clone(),
                mode_label: e.mode.label().into(),
                ics_url: format!("{url}.ics"),
            };
            EventView {
                when: event_when(&entry),
                starts_at_iso: e.starts_at.with_timezone(&e.timezone.tz()).to_rfc3339(),
                mode: entry.mode_label,
                venue: entry.venue,
                online_url: entry.online_url,
                ics_url: entry.ics_url,
            }
        });
        Self {
            title: item.title.clone(),
            summary: item.summary.clone(),
            body_html: item.body_html.clone(),
            author: item.author.clone(),
            org_unit: item.org_unit.clone(),
            language: item.language.clone(),
            published: published_at.format("%-d %B %Y").to_string(),
            published_iso: published_at.to_rfc3339(),
            updated: item.updated_at.format("%-d %B %Y").to_string(),
            updated_iso: item.updated_at.to_rfc3339(),
            was_updated: item.updated_at.date_naive() > published_at.date_naive(),
            categories: item
                .categories
                .iter()
                .map(|c| CategoryLink {
                    url: format!("{base}/categories/{}", c.slug),
                    slug: c.slug.clone(),
                    name: c.name.clone(),
                    indent: 0,
                })
                .collect(),
            tags: item.tags.clone(),
            event,
            url,
        }
    }
}

/// Categories in tree order (each parent followed by its children), with depth.
pub fn category_tree(categories: &[Category], base: &str) -> Vec<CategoryLink> {
    fn walk(
        all: &[Category],
        parent: Option<&str>,
        depth: usize,
        base: &str,
        out: &mut Vec<CategoryLink>,
    ) {
        for c in all.iter().filter(|c| c.parent.as_deref() == parent) {
            out.push(CategoryLink {
                slug: c.slug.clone(),
                name: c.name.clone(),
                url: format!("{base}/categories/{}", c.slug),
                // The stylesheet indents six levels (d1..d6); deeper ones stay at six.
                indent: depth.min(6),
            });
            walk(all, Some(&c.slug), depth + 1, base, out);
        }
    }
    let mut out = Vec::with_capacity(categories.len());
    walk(categories, None, 0, base, &mut out);
    out
}
