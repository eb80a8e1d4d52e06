//! The public archive of a public list's digests: `/digests/{list}`, one page per
//! digest at `/digests/{list}/{period}`, and an Atom feed at `/digests/{list}.atom`.

use super::page_cache::{self, Fresh};
use super::pages::PageError;
use super::views::{FeedLink, ItemView, Page};
use crate::domain::{IsoWeek, Item, MailingList};
use crate::feeds::{self, FeedEntry, FeedMeta, Paging};
use crate::http::AppState;
use crate::services::ServiceError;
use crate::services::digests::{self, Archive, Issue};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The archive's "not found" pages, which say which of the two was missing.
fn not_found(e: ServiceError) -> PageError {
    match e {
        ServiceError::NotFound(what) if what.starts_with("digest") => {
            PageError::NotFound("There is no such digest.".into())
        }
        ServiceError::NotFound(_) => PageError::NotFound("There is no such list.".into()),
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

pub async fn archive(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(slug) = file.strip_suffix(".atom") {
        let answer = feed(&state, slug)
            .await
            .unwrap_or_else(|e| e.into_page(&state));
        return page_cache::with_security_headers(answer);
    }
    let key = format!("/digests/{file}");
    page_cache::serve(&state, key, &headers, archive_page(&state, &file)).await
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

async fn archive_page(state: &AppState, slug: &str) -> Result<Fresh, PageError> {
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
        count: usize,
    }
    let mut rows = Vec::new();
    for Issue { digest: d, items } in issues {
        rows.push(Row {
            url: format!("{base}/digests/{}/{}", list.slug, d.period),
            label: week_label(&d.period),
            period: d.period,
            count: items.len(),
        });
    }
    #[derive(Serialize)]
    struct ListView {
        name: String,
        description: String,
    }
    #[derive(Serialize)]
    struct Body {
        list: ListView,
        digests: Vec<Row>,
        feed_url: String,
        subscribe_url: String,
    }
    let feed_url = format!("{base}/digests/{}.atom", list.slug);
    let feeds = vec![FeedLink {
        media_type: "application/atom+xml",
        title: format!("{} (Atom)", list.name),
        label: "Atom",
        url: feed_url.clone(),
    }];
    let page = Page::new(
        &state.settings,
        &list.name,
        feeds,
        Body {
            list: ListView {
                name: list.name.clone(),
                description: list.description.clone(),
            },
            digests: rows,
            feed_url,
            subscribe_url: format!("{base}/subscribe?list={}", list.slug),
        },
    );
    Ok(Fresh {
        html: state.templates.render("digests", &page)?,
        tags,
        expires_at: None,
    })
}

pub async fn issue(
    State(state): State<AppState>,
    Path((slug, period)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let key = format!("/digests/{slug}/{period}");
    page_cache::serve(&state, key, &headers, issue_page(&state, &slug, &period)).await
}

async fn issue_page(state: &AppState, slug: &str, period: &str) -> Result<Fresh, PageError> {
    let (list, Issue { digest, items }) = digests::issue(state.app(), slug, period)
        .await
        .map_err(not_found)?;
    let base = &state.settings.base_url;
    let tags = tags(&list, items.coming_up.iter().chain(items.news.iter()));
    #[derive(Serialize)]
    struct Body {
        list_name: String,
        archive_url: String,
        week_label: String,
        period: String,
        coming_up: Vec<ItemView>,
        news: Vec<ItemView>,
    }
    let week_label = IsoWeek::parse(&digest.period)
        .map(|w| w.label())
        .unwrap_or_default();
    let page = Page::new(
        &state.settings,
        &format!("{}: {week_label}", list.name),
        Vec::new(),
        Body {
            list_name: list.name.clone(),
            archive_url: format!("{base}/digests/{}", list.slug),
            week_label,
            period: digest.period.clone(),
            coming_up: items
                .coming_up
                .iter()
                .map(|i| ItemView::new(i, base))
                .collect(),
            news: items.news.iter().map(|i| ItemView::new(i, base)).collect(),
        },
    );
    Ok(Fresh {
        html: state.templates.render("digest", &page)?,
        tags,
        expires_at: None,
    })
}

/// Past digests as Atom: one entry per digest, its items as the content.
async fn feed(state: &AppState, slug: &str) -> Result<Response, PageError> {
    let Archive { list, issues } = digests::archive(state.app(), slug)
        .await
        .map_err(not_found)?;
    let base = &state.settings.base_url;
    let mut entries = Vec::new();
    for Issue { digest: d, items } in issues {
        let label = week_label(&d.period);
        let mut html = String::new();
        for (heading, section) in [("Coming up", &items.coming_up), ("News", &items.news)] {
            if section.is_empty() {
                continue;
            }
            html.push_str(&format!("<h2>{heading}</h2><ul>"));
            for i in section {
                html.push_str(&format!(
                    "<li><a href=\"{}/items/{}\">{}</a></li>",
                    feeds::escape_html(base),
                    feeds::escape_html(&i.slug),
                    feeds::escape_html(&i.title)
                ));
            }
            html.push_str("</ul>");
        }
        let published = d.period_start;
        entries.push(FeedEntry {
            id: state.ids.digest(d.id, d.created_at),
            url: format!("{base}/digests/{}/{}", list.slug, d.period),
            title: format!("{}: {label}", list.name),
            summary: format!("{} item(s)", items.len()),
            content_html: html,
            author: state.settings.site_name.clone(),
            org_unit: String::new(),
            language: "en".into(),
            published,
            updated: d.completed_at.unwrap_or(d.created_at),
            categories: Vec::new(),
            category_scheme: format!("{base}/categories/"),
            tags: Vec::new(),
            event: None,
        });
    }
    let self_url = format!("{base}/digests/{}.atom", list.slug);
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .max()
        .unwrap_or(list.updated_at);
    let meta = FeedMeta {
        id: state.ids.digest_archive(&list.slug),
        title: format!("{}: past digests", list.name),
        description: list.description.clone(),
        self_url: self_url.clone(),
        html_url: format!("{base}/digests/{}", list.slug),
        updated,
        site_name: state.settings.site_name.clone(),
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
