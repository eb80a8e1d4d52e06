//! What the page templates see: plain values, dates already formatted, the page's own
//! words (`labels`) in its language.

use super::feeds::{feed_url, titled};
use crate::config::Settings;
use crate::domain::{Category, Item, Language, language_matches};
use crate::feeds::{EntryEvent, FeedFormat, event_when_in};
use crate::i18n::{PageWords, Words};
use crate::templates::Templates;
use serde::Serialize;

/// The language a page is shown in: its address and the language of its own words,
/// and the templates (with their words) it is rendered with: one set for the whole
/// page, taken once ([`crate::templates::LiveTemplates::current`]).
#[derive(Debug, Clone, Copy)]
pub struct PageLang<'a> {
    /// The language in the address (`/zh/...`): items in their version in it, links
    /// to pages in it. `None`: the originals' view at the unprefixed address, each
    /// item in its original, links to the other originals' pages.
    pub prefix: Option<&'a str>,
    /// The language of the page's own words (headings, buttons, dates): the prefix's;
    /// in the originals' view the site's default, or an item page's original's when
    /// that is a site language.
    pub chrome: &'a str,
    pub words: &'a Words,
    pub templates: &'a Templates,
}

impl<'a> PageLang<'a> {
    /// A page under `/{language}/`.
    pub fn of(language: &'a Language, templates: &'a Templates) -> Self {
        Self {
            prefix: Some(language.as_str()),
            chrome: language.as_str(),
            words: templates.words(language.as_str()),
            templates,
        }
    }

    /// A page of the originals' view, its own words in `chrome`.
    pub fn originals(chrome: &'a str, templates: &'a Templates) -> Self {
        Self {
            prefix: None,
            chrome,
            words: templates.words(chrome),
            templates,
        }
    }

    /// The originals' view in the site's default language.
    pub fn default_for(settings: &'a Settings, templates: &'a Templates) -> Self {
        Self::originals(settings.languages.default_language().as_str(), templates)
    }

    /// The page's words in every language (for the language switch, feed titles).
    pub fn all_words(&self) -> &'a PageWords {
        self.templates.page_words()
    }

    /// A site path (`/items/x`) as this page links to it (`/zh/items/x`).
    pub fn path(&self, path: &str) -> String {
        match self.prefix {
            Some(l) => format!("/{l}{path}"),
            None => path.to_owned(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct FeedLink {
    pub media_type: &'static str,
    pub title: String,
    pub label: String,
    pub url: String,
}

/// Autodiscovery links for a scope (`all` or a category slug), in the page's language
/// (`?lang=`) or of the originals.
pub fn feed_links(settings: &Settings, scope: &str, name: &str, lang: PageLang) -> Vec<FeedLink> {
    FeedFormat::ALL
        .iter()
        .map(|f| FeedLink {
            media_type: f.media_type().split(';').next().unwrap_or_default(),
            title: format!(
                "{} ({})",
                titled(name, lang.prefix, lang.all_words()),
                f.label()
            ),
            label: match f {
                FeedFormat::Ics => lang.words.get("calendar").to_owned(),
                f => f.label().to_owned(),
            },
            url: feed_url(&settings.base_url, scope, *f, lang.prefix),
        })
        .collect()
}

/// `<link rel="alternate" hreflang>`: the same page in another language.
#[derive(Debug, Serialize)]
pub struct Alternate {
    pub hreflang: String,
    pub url: String,
}

/// One entry of the language switch, named in its own language.
#[derive(Debug, Serialize)]
pub struct SwitchLink {
    pub lang: String,
    pub name: String,
    pub url: String,
    /// The language of this very page.
    pub current: bool,
}

#[derive(Debug, Serialize)]
pub struct Page<'a, T: Serialize> {
    pub lang: String,
    pub page_title: String,
    pub site_name: String,
    pub base_url: String,
    /// Where "Home" goes: the language's front page, or `/`.
    pub home_url: String,
    pub feeds: Vec<FeedLink>,
    /// The site's feeds of everything, in the footer, in the page's language.
    pub footer_feeds: Vec<FeedLink>,
    pub opml_url: String,
    /// The page in each site language, and `x-default` (the unprefixed address);
    /// empty for pages that exist in one form only (the subscription forms).
    pub hreflang_links: Vec<Alternate>,
    pub language_links: Vec<SwitchLink>,
    /// The site's default language when the page is in another: the language of what
    /// the admins write once (category and list descriptions), for its `lang`
    /// attribute; `None` on a page in the default language.
    pub written_in: Option<String>,
    pub labels: &'a Words,
    #[serde(flatten)]
    pub body: T,
}

impl<'a, T: Serialize> Page<'a, T> {
    /// A page in `lang`; with `path` (its address without a language: `/items/x`), it
    /// links its versions in every site language and offers the switch between them.
    pub fn at(
        settings: &Settings,
        lang: PageLang<'a>,
        path: Option<&str>,
        title: &str,
        feeds: Vec<FeedLink>,
        body: T,
    ) -> Self {
        let base = &settings.base_url;
        let (mut hreflang_links, mut language_links) = (Vec::new(), Vec::new());
        if let Some(path) = path {
            for l in settings.languages.all() {
                let url = format!("{base}/{}{path}", l.as_str());
                hreflang_links.push(Alternate {
                    hreflang: l.as_str().to_owned(),
                    url: url.clone(),
                });
                language_links.push(SwitchLink {
                    lang: l.as_str().to_owned(),
                    name: lang.all_words().endonym(l.as_str()),
                    url,
                    current: lang.prefix == Some(l.as_str()),
                });
            }
            hreflang_links.push(Alternate {
                hreflang: "x-default".into(),
                url: format!("{base}{path}"),
            });
        }
        let opml_url = match lang.prefix {
            Some(l) => format!("{base}/feeds.opml?lang={l}"),
            None => format!("{base}/feeds.opml"),
        };
        Self {
            lang: lang.chrome.to_owned(),
            page_title: if title.is_empty() {
                settings.site_name.clone()
            } else {
                format!("{title} · {}", settings.site_name)
            },
            site_name: settings.site_name.clone(),
            base_url: base.clone(),
            home_url: format!("{base}{}", lang.path("/")),
            feeds,
            footer_feeds: feed_links(settings, "all", &settings.site_name, lang),
            opml_url,
            hreflang_links,
            language_links,
            written_in: Some(settings.languages.default_language().as_str())
                .filter(|d| *d != lang.chrome)
                .map(str::to_owned),
            labels: lang.words,
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
    /// The language the item's words are in (its version's, or its original's).
    pub language: String,
    /// `language` when it is not the page's: the item's elements say so with `lang`.
    pub lang_attr: Option<String>,
    /// On a language's page, when the item has no version in it: says the original is
    /// shown (for the item's page), and a short form of it (for its card).
    pub fallback_note: Option<String>,
    pub fallback_short: Option<String>,
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
    /// The item as a page in `lang` shows it: its version in the page's language (the
    /// original, with a note, when there is none), dates and the event's words in the
    /// page's words, links to pages in the same language.
    pub fn new(item: &Item, lang: PageLang, base: &str) -> Self {
        let shown = match lang.prefix {
            Some(l) => item.localized(l),
            None => std::borrow::Cow::Borrowed(item),
        };
        let w = lang.words;
        let url = format!("{base}{}", lang.path(&format!("/items/{}", item.slug)));
        let published_at = item.published_at.unwrap_or(item.created_at);
        let fell_back = lang
            .prefix
            .is_some_and(|l| !language_matches(&shown.language, l));
        let original = w.language_name(&shown.language);
        let event = shown.event.as_ref().map(|e| {
            let entry = EntryEvent {
                starts_at: e.starts_at,
                ends_at: e.ends_at,
                timezone: e.timezone.tz(),
                venue: e.venue.clone(),
                online_url: e.online_url.clone(),
                mode_label: e
                    .mode_text
                    .clone()
                    .unwrap_or_else(|| e.mode.label_in(lang.chrome).into()),
                ics_url: format!("{url}.ics"),
            };
            EventView {
                when: event_when_in(&entry, w),
                starts_at_iso: e.starts_at.with_timezone(&e.timezone.tz()).to_rfc3339(),
                mode: entry.mode_label,
                venue: entry.venue,
                online_url: entry.online_url,
                ics_url: entry.ics_url,
            }
        });
        Self {
            title: shown.title.clone(),
            summary: shown.summary.clone(),
            body_html: shown.body_html.clone(),
            author: item.author.clone(),
            org_unit: item.org_unit.clone(),
            language: shown.language.clone(),
            lang_attr: (!shown.language.eq_ignore_ascii_case(lang.chrome))
                .then(|| shown.language.clone()),
            fallback_note: fell_back.then(|| w.fill("not_in_language", &[("language", &original)])),
            fallback_short: fell_back.then(|| w.fill("original_in", &[("language", &original)])),
            published: w.date(&published_at),
            published_iso: published_at.to_rfc3339(),
            updated: w.date(&item.updated_at),
            updated_iso: item.updated_at.to_rfc3339(),
            was_updated: item.updated_at.date_naive() > published_at.date_naive(),
            categories: item
                .categories
                .iter()
                .map(|c| CategoryLink {
                    url: format!("{base}{}", lang.path(&format!("/categories/{}", c.slug))),
                    slug: c.slug.clone(),
                    name: c.names.pick(&c.name, lang.chrome).to_owned(),
                    indent: 0,
                })
                .collect(),
            tags: item.tags.clone(),
            event,
            url,
        }
    }
}

/// Categories in tree order (each parent followed by its children), with depth, linked
/// to their originals' pages, by their default names (the admin's view).
pub fn category_tree(categories: &[Category], base: &str) -> Vec<CategoryLink> {
    tree(categories, base, None, None)
}

/// [`category_tree`] linked to the pages in the page's language, each category by its
/// name in the language of the page's words.
pub fn category_tree_in(
    categories: &[Category],
    base: &str,
    lang: PageLang<'_>,
) -> Vec<CategoryLink> {
    tree(categories, base, lang.prefix, Some(lang.chrome))
}

/// The tree linked under `prefix` (none: the originals' pages), named in `named_in`
/// (none: the default names).
fn tree(
    categories: &[Category],
    base: &str,
    prefix: Option<&str>,
    named_in: Option<&str>,
) -> Vec<CategoryLink> {
    fn walk(
        all: &[Category],
        parent: Option<&str>,
        depth: usize,
        link: &dyn Fn(&Category, usize) -> CategoryLink,
        out: &mut Vec<CategoryLink>,
    ) {
        for c in all.iter().filter(|c| c.parent.as_deref() == parent) {
            // The stylesheet indents six levels (d1..d6); deeper ones stay at six.
            out.push(link(c, depth.min(6)));
            walk(all, Some(&c.slug), depth + 1, link, out);
        }
    }
    let link = |c: &Category, indent: usize| CategoryLink {
        slug: c.slug.clone(),
        name: match named_in {
            Some(language) => c.name_in(language).to_owned(),
            None => c.name.clone(),
        },
        url: match prefix {
            Some(l) => format!("{base}/{l}/categories/{}", c.slug),
            None => format!("{base}/categories/{}", c.slug),
        },
        indent,
    };
    let mut out = Vec::with_capacity(categories.len());
    walk(categories, None, 0, &link, &mut out);
    out
}
