//! The public archive of a public list's digests: `/digests/{list}`, one page per
//! digest at `/digests/{list}/{period}`, and an Atom feed at `/digests/{list}.atom`.
//! The pages are also under each site language (`/zh/digests/{list}`), their own words
//! and the items' versions in it; the feed is the one at the unprefixed address.

use super::page_cache::{self, Fresh};
use super::pages::{PageError, PrefixLanguage, not_found as no_page, site_language};
use super::views::{FeedLink, ItemView, Page, PageLang};
use crate::domain::{IsoWeek, Item, MailingList};
use crate::feeds::{self, FeedEntry, FeedMeta, Paging};
use crate::http::AppState;
use crate::i18n::Words;
use crate::services::ServiceError;
use crate::services::digests::{self, Archive, Issue};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

/// The archive's "not found" pages, which say which of the two was missing.
fn not_found(e: ServiceError) -> PageError {
    match e {
        ServiceError::NotFound(what) if what.starts_with("digest") => {
            PageError::NotFound("no_such_digest")
        }
        ServiceError::NotFound(_) => PageError::NotFound("no_such_list"),
        other => other.into(),
    }
}

/// A period as readers read it (see [`IsoWeek::label`]); the period itself when it
/// does not parse.
fn week_label(period: &str) -> String {
    IsoWeek::parse(period)
        .map(|w| w.label())
        .unwrap_or_else(|_| period.to_owned())
}

/// A period in `w`'s words: English as [`IsoWeek::label`] writes it ("6–12 November
/// 2023"), other languages as the week's first and last days ("2023年11月6日 –
/// 2023年11月12日").
fn week_label_in(period: &str, w: &Words) -> String {
    match IsoWeek::parse(period) {
        Ok(week) if w.language() != "en" => {
            let first = week.monday();
            let last = first + chrono::Duration::days(6);
            let day = |d: chrono::NaiveDate| {
                w.date(&d.and_hms_opt(12, 0, 0).expect("noon exists").and_utc())
            };
            format!("{} – {}", day(first), day(last))
        }
        _ => week_label(period),
    }
}

/// `?lang=` of the feed of past digests.
#[derive(Debug, Deserialize)]
pub struct ArchiveFeedParams {
    lang: Option<String>,
}

/// The address of a list's feed of past digests, `?lang=` for a language.
fn archive_feed_url(base: &str, slug: &str, lang: Option<&str>) -> String {
    match lang {
        Some(l) => format!("{base}/digests/{slug}.atom?lang={l}"),
        None => format!("{base}/digests/{slug}.atom"),
    }
}

/// `?lang=`, as the category feeds take it: a site language as configured; one spelt
/// otherwise (`ZH`, `zh-CN`) is sent there (308); anything else is a 404 naming it.
fn feed_language<'a>(
    state: &'a AppState,
    slug: &str,
    raw: Option<&str>,
) -> Result<Option<&'a crate::domain::Language>, Box<Response>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    // The slug goes into a redirect's address: only a well-formed one (no list has
    // another, and the archive says which was missing).
    if crate::domain::Slug::parse(slug).is_err() {
        return Ok(None);
    }
    super::feeds::feed_language(state, Some(raw)).map_err(|unknown| {
        Box::new(match state.settings.languages.respelt(raw) {
            Some(l) => axum::response::Redirect::permanent(&format!(
                "/digests/{slug}.atom?lang={}",
                l.as_str()
            ))
            .into_response(),
            None => crate::http::error::AppError::NotFound(unknown).into_response(),
        })
    })
}

pub async fn archive(
    State(state): State<AppState>,
    Path(file): Path<String>,
    Query(params): Query<ArchiveFeedParams>,
    headers: HeaderMap,
) -> Response {
    if let Some(slug) = file.strip_suffix(".atom") {
        let answer = match feed_language(&state, slug, params.lang.as_deref()) {
            Ok(lang) => feed(&state, slug, lang)
                .await
                .unwrap_or_else(|e| e.into_page(&state)),
            Err(answer) => *answer,
        };
        return page_cache::with_security_headers(answer);
    }
    let templates = state.templates.current();
    let lang = PageLang::default_for(&state.settings, &templates);
    archive_in(&state, lang, &file, &headers).await
}

pub async fn language_archive(
    State(state): State<AppState>,
    Path((lang, file)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    match site_language(&state, &lang) {
        // The feed of past digests in a language is at `?lang=` of the unprefixed
        // address, as the category feeds are.
        Some(l) => match file
            .strip_suffix(".atom")
            .filter(|slug| crate::domain::Slug::parse(slug).is_ok())
        {
            Some(slug) => axum::response::Redirect::permanent(&format!(
                "/digests/{slug}.atom?lang={}",
                l.as_str()
            ))
            .into_response(),
            None => {
                let templates = state.templates.current();
                archive_in(&state, PageLang::of(l, &templates), &file, &headers).await
            }
        },
        None => no_page(State(state), uri).await,
    }
}

async fn archive_in(
    state: &AppState,
    lang: PageLang<'_>,
    file: &str,
    headers: &HeaderMap,
) -> Response {
    let key = lang.path(&format!("/digests/{file}"));
    page_cache::serve(state, key, headers, lang, archive_page(state, lang, file)).await
}

/// What an archive page shows: the list, and the items of its digests, read as they
/// are now (their categories, whichever they are filed under today).
fn tags<'a>(list: &MailingList, items: impl Iterator<Item = &'a Item>) -> Vec<String> {
    let mut tags = vec![page_cache::list_tag(list.id)];
    tags.extend(list.categories.iter().cloned());
    for item in items {
        tags.extend(item.categories.iter().map(|c| c.slug.clone()));
    }
    tags.sort();
    tags.dedup();
    tags
}

async fn archive_page(
    state: &AppState,
    lang: PageLang<'_>,
    slug: &str,
) -> Result<Fresh, PageError> {
    let Archive { list, issues } = digests::archive(state.app(), slug)
        .await
        .map_err(not_found)?;
    let base = &state.settings.base_url;
    let tags = tags(
        &list,
        issues
            .iter()
            .flat_map(|i| i.items.coming_up.iter().chain(i.items.news.iter())),
    );
    #[derive(Serialize)]
    struct Row {
        url: String,
        label: String,
        period: String,
        count: String,
    }
    let w = lang.words;
    let mut rows = Vec::new();
    for Issue { digest: d, items } in issues {
        rows.push(Row {
            url: format!(
                "{base}{}",
                lang.path(&format!("/digests/{}/{}", list.slug, d.period))
            ),
            label: week_label_in(&d.period, w),
            period: d.period,
            count: w.fill("item_count", &[("count", &items.len().to_string())]),
        });
    }
    #[derive(Serialize)]
    struct ListView {
        name: String,
        description: String,
    }
    #[derive(Serialize)]
    struct Body {
        heading: String,
        list: ListView,
        digests: Vec<Row>,
        feed_url: String,
        subscribe_url: String,
    }
    let name = list.name_in(lang.chrome);
    // The page under a language links the feed in it.
    let feed_url = archive_feed_url(base, &list.slug, lang.prefix);
    let feeds = vec![FeedLink {
        media_type: "application/atom+xml",
        title: format!("{name} (Atom)"),
        label: "Atom".into(),
        url: feed_url.clone(),
    }];
    let page = Page::at(
        &state.settings,
        lang,
        Some(&format!("/digests/{}", list.slug)),
        name,
        feeds,
        Body {
            heading: w.fill("past_digests", &[("list", name)]),
            list: ListView {
                name: name.to_owned(),
                description: list.description.clone(),
            },
            digests: rows,
            feed_url,
            subscribe_url: format!("{base}{}?list={}", lang.path("/subscribe"), list.slug),
        },
    );
    Ok(Fresh {
        html: lang.templates.render("digests", &page)?,
        tags,
        expires_at: None,
        language: lang.chrome.to_owned(),
    })
}

pub async fn issue(
    State(state): State<AppState>,
    PrefixLanguage(language): PrefixLanguage,
    Path(IssuePath { list, period }): Path<IssuePath>,
    headers: HeaderMap,
) -> Response {
    let templates = state.templates.current();
    let lang = match &language {
        Some(l) => PageLang::of(l, &templates),
        None => PageLang::default_for(&state.settings, &templates),
    };
    issue_in(&state, lang, &list, &period, &headers).await
}

/// `/digests/{list}/{period}`, with or without a `{lang}` before it.
#[derive(Deserialize)]
pub struct IssuePath {
    list: String,
    period: String,
}

async fn issue_in(
    state: &AppState,
    lang: PageLang<'_>,
    slug: &str,
    period: &str,
    headers: &HeaderMap,
) -> Response {
    let key = lang.path(&format!("/digests/{slug}/{period}"));
    let page = issue_page(state, lang, slug, period);
    page_cache::serve(state, key, headers, lang, page).await
}

async fn issue_page(
    state: &AppState,
    lang: PageLang<'_>,
    slug: &str,
    period: &str,
) -> Result<Fresh, PageError> {
    let (list, Issue { digest, items }) = digests::issue(state.app(), slug, period)
        .await
        .map_err(not_found)?;
    let base = &state.settings.base_url;
    let tags = tags(&list, items.coming_up.iter().chain(items.news.iter()));
    #[derive(Serialize)]
    struct Body {
        heading: String,
        list_name: String,
        archive_url: String,
        week_label: String,
        period: String,
        coming_up: Vec<ItemView>,
        news: Vec<ItemView>,
    }
    let name = list.name_in(lang.chrome);
    let week_label = week_label_in(&digest.period, lang.words);
    let heading = lang
        .words
        .fill("digest_heading", &[("list", name), ("week", &week_label)]);
    let page = Page::at(
        &state.settings,
        lang,
        Some(&format!("/digests/{}/{}", list.slug, digest.period)),
        &heading,
        Vec::new(),
        Body {
            heading: heading.clone(),
            list_name: name.to_owned(),
            archive_url: format!("{base}{}", lang.path(&format!("/digests/{}", list.slug))),
            week_label,
            period: digest.period.clone(),
            coming_up: items
                .coming_up
                .iter()
                .map(|i| ItemView::new(i, lang, base))
                .collect(),
            news: items
                .news
                .iter()
                .map(|i| ItemView::new(i, lang, base))
                .collect(),
        },
    );
    Ok(Fresh {
        html: lang.templates.render("digest", &page)?,
        tags,
        expires_at: None,
        language: lang.chrome.to_owned(),
    })
}

/// Past digests as Atom: one entry per digest, its items as the content. In `lang`
/// (`?lang=`), the list, the weeks and the items are named in it, the entries link to
/// its pages and the feed says its language; without, the items are their originals
/// and the feed's own words the site's default language's.
async fn feed(
    state: &AppState,
    slug: &str,
    lang: Option<&crate::domain::Language>,
) -> Result<Response, PageError> {
    let Archive { list, issues } = digests::archive(state.app(), slug)
        .await
        .map_err(not_found)?;
    let settings = &state.settings;
    let base = &settings.base_url;
    let templates = state.templates.current();
    let words = templates.page_words();
    let lang = lang.map(crate::domain::Language::as_str);
    let w = words.get(lang.unwrap_or(settings.languages.default_language().as_str()));
    let prefix = lang.map(|l| format!("/{l}")).unwrap_or_default();
    let name = match lang {
        Some(l) => list.name_in(l),
        None => list.name.as_str(),
    };
    let mut entries = Vec::new();
    for Issue { digest: d, items } in issues {
        let label = week_label_in(&d.period, w);
        let mut html = String::new();
        for (heading, section) in [
            (w.get("coming_up"), &items.coming_up),
            (w.get("news"), &items.news),
        ] {
            if section.is_empty() {
                continue;
            }
            html.push_str(&format!("<h2>{}</h2><ul>", feeds::escape_html(heading)));
            for i in section {
                let shown = match lang {
                    Some(l) => i.localized(l),
                    None => std::borrow::Cow::Borrowed(i),
                };
                html.push_str(&format!(
                    "<li><a href=\"{}{prefix}/items/{}\" hreflang=\"{}\">{}</a></li>",
                    feeds::escape_html(base),
                    feeds::escape_html(&i.slug),
                    feeds::escape_html(&shown.language),
                    feeds::escape_html(&shown.title)
                ));
            }
            html.push_str("</ul>");
        }
        let published = d.period_start;
        entries.push(FeedEntry {
            id: state.ids.digest(d.id, d.created_at),
            url: format!("{base}{prefix}/digests/{}/{}", list.slug, d.period),
            title: w.fill("digest_heading", &[("list", name), ("week", &label)]),
            summary: w.fill("item_count", &[("count", &items.len().to_string())]),
            content_html: html,
            author: settings.site_name.clone(),
            org_unit: String::new(),
            language: w.language().to_owned(),
            published,
            updated: d.completed_at.unwrap_or(d.created_at),
            categories: Vec::new(),
            category_scheme: format!("{base}/categories/"),
            tags: Vec::new(),
            event: None,
        });
    }
    let self_url = archive_feed_url(base, &list.slug, lang);
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(list.updated_at);
    let meta = FeedMeta {
        // Each language's feed is a feed of its own; its entries keep their ids.
        id: match lang {
            Some(l) => state.ids.digest_archive(&format!("{}/{l}", list.slug)),
            None => state.ids.digest_archive(&list.slug),
        },
        title: super::feeds::titled(&w.fill("past_digests", &[("list", name)]), lang, words),
        // In the site's default language: a feed in another has no subtitle rather
        // than one labelled as a language it is not in.
        description: match lang {
            Some(l) if l != settings.languages.default_language().as_str() => String::new(),
            _ => list.description.clone(),
        },
        self_url: self_url.clone(),
        html_url: format!("{base}{prefix}/digests/{}", list.slug),
        updated,
        site_name: settings.site_name.clone(),
        language: lang.map(str::to_owned),
        paging: Paging {
            first: self_url.clone(),
            last: self_url,
            previous: None,
            next: None,
        },
    };
    let body = feeds::atom::render(&meta, &entries);
    Ok((
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        body,
    )
        .into_response())
}
