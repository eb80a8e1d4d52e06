//! The first page after sign-in: what was published this week, and, for admins, the
//! subscribers of every list, the next digest of each and the last digests sent.

use super::page::{self, PageResult, when};
use super::session::Session;
use crate::app::App;
use crate::domain::MembershipStatus;
use crate::http::AppState;
use crate::services::digests::{self, HistoryEntry};
use crate::services::lists::Overview;
use crate::services::{self, ServiceResult};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

#[derive(Serialize)]
struct ItemRow {
    id: i64,
    title: String,
    published: String,
    categories: String,
}

/// A list as the dashboard and the list pages sum it up.
#[derive(Serialize)]
pub(super) struct ListSummary {
    pub slug: String,
    pub name: String,
    /// Its names in other languages: `zh: 合作院校通讯`.
    pub names: String,
    pub visibility: &'static str,
    pub confirmed: u64,
    pub pending: u64,
    pub unsubscribed: u64,
    /// Its cron expression and zone.
    pub schedule: String,
    /// The week and local time of its next scheduled digest.
    pub next_digest: String,
}

impl From<&Overview> for ListSummary {
    fn from(o: &Overview) -> Self {
        let l = &o.list;
        let tz = l.schedule.fire_zone();
        let zone = if l.schedule.reader_local() {
            format!("in each reader's zone, else {}", l.schedule.timezone.name())
        } else {
            l.schedule.timezone.name().to_owned()
        };
        ListSummary {
            slug: l.slug.clone(),
            name: l.name.clone(),
            names: l
                .names
                .iter()
                .map(|(t, n)| format!("{t}: {n}"))
                .collect::<Vec<_>>()
                .join(" · "),
            visibility: l.visibility.as_str(),
            confirmed: o.count(MembershipStatus::Confirmed),
            pending: o.count(MembershipStatus::Pending),
            unsubscribed: o.count(MembershipStatus::Unsubscribed),
            schedule: format!("{} ({zone})", l.schedule.cron.as_str()),
            next_digest: match o.next_digest {
                Some((at, week)) if l.schedule.reader_local() => format!(
                    "{week} — {} in each reader's zone (built {})",
                    at.with_timezone(&tz).format("%a %-d %b %Y %H:%M"),
                    at.format("%a %-d %b %H:%M UTC")
                ),
                Some((at, week)) => format!(
                    "{week} — {}",
                    at.with_timezone(&tz).format("%a %-d %b %Y %H:%M %Z")
                ),
                None => "never (the schedule does not fire again)".into(),
            },
        }
    }
}

#[derive(Serialize)]
pub(super) struct DigestRow {
    pub id: i64,
    pub list: String,
    pub list_name: String,
    pub period: String,
    pub status: &'static str,
    pub created: String,
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
    pub skipped: u64,
}

#[derive(Serialize)]
struct Dashboard {
    week: String,
    items: Vec<ItemRow>,
    items_total: u64,
    drafts_total: u64,
    lists: Vec<ListSummary>,
    digests: Vec<DigestRow>,
    /// The `tag:` authority of entry ids, fixed with the database.
    id_authority: String,
    base_url: String,
}

impl From<HistoryEntry> for DigestRow {
    fn from(
        HistoryEntry {
            digest: d,
            list,
            counts,
        }: HistoryEntry,
    ) -> Self {
        DigestRow {
            id: d.id,
            list: list.as_ref().map(|l| l.slug.clone()).unwrap_or_default(),
            list_name: list.map(|l| l.name).unwrap_or_default(),
            period: d.period,
            status: d.status.as_str(),
            created: when(d.created_at),
            pending: counts.pending + counts.sending,
            sent: counts.sent,
            failed: counts.failed,
            skipped: counts.skipped + counts.missed + counts.cancelled,
        }
    }
}

/// The latest digests (of one list, or all) as rows.
pub(super) async fn digest_rows(
    app: &App,
    list_slug: Option<&str>,
    limit: u32,
) -> ServiceResult<Vec<DigestRow>> {
    let history = digests::history(app, list_slug, limit).await?;
    Ok(history.into_iter().map(DigestRow::from).collect())
}

pub async fn show(State(state): State<AppState>, session: Session) -> PageResult {
    let (week, published, drafts_total) = services::content::this_week(state.app()).await?;
    let items = published
        .items
        .iter()
        .map(|i| ItemRow {
            id: i.id,
            title: i.title.clone(),
            published: page::when_opt(i.published_at),
            categories: i
                .categories
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
        .collect();
    let (mut lists, mut digests) = (Vec::new(), Vec::new());
    if session.is_admin() {
        let overviews = services::lists::overviews(state.app()).await?;
        lists = overviews.iter().map(ListSummary::from).collect();
        digests = digest_rows(state.app(), None, 10).await?;
    }
    let body = Dashboard {
        week: format!("{week} ({})", week.label()),
        items,
        items_total: published.total,
        drafts_total,
        lists,
        digests,
        id_authority: state.ids.to_string(),
        base_url: state.settings.base_url.clone(),
    };
    page::render(
        &state,
        &session,
        StatusCode::OK,
        "dashboard",
        "admin/dashboard",
        "Dashboard",
        &body,
    )
}
