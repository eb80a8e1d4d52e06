//! One digest: its items (with the languages each is in), delivery counts overall and
//! per reader language (with the preview in each), failed deliveries with their
//! reasons; retry the failed ones, or cancel what is still pending.

use super::page::{self, PageResult, parse_id, when, when_opt};
use super::session::{Session, done};
use crate::domain::Item;
use crate::http::AppState;
use crate::services::ServiceError;
use crate::services::digests::{self, DigestDetail, LanguageCounts};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;

#[derive(Serialize)]
struct ItemRow {
    id: i64,
    title: String,
    when: String,
    /// The languages it is in, the original first ("en, zh").
    languages: String,
}

/// The deliveries to the readers of one language, and the digest as they read it.
#[derive(Serialize)]
struct LanguageRow {
    #[serde(flatten)]
    counts: LanguageCounts,
    preview_url: String,
}

#[derive(Serialize)]
struct FailedRow {
    subscriber_id: i64,
    email: String,
    attempts: u32,
    error: String,
    permanent: bool,
}

#[derive(Serialize)]
struct Body {
    id: i64,
    list: String,
    list_name: String,
    period: String,
    status: &'static str,
    trigger: &'static str,
    built: String,
    completed: String,
    note: String,
    pending: u64,
    sending: u64,
    sent: u64,
    failed: u64,
    skipped: u64,
    missed: u64,
    cancelled: u64,
    /// A reader-local digest's local send time ("Mon 6 Nov 2023 08:00"), else empty.
    send_local: String,
    in_progress: bool,
    /// Failed deliveries, and a digest that was not cancelled.
    can_retry: bool,
    coming_up: Vec<ItemRow>,
    news: Vec<ItemRow>,
    /// Deliveries per reader language; empty once they are pruned.
    languages: Vec<LanguageRow>,
    pruned: bool,
    failures: Vec<FailedRow>,
    /// Its page in the list's public archive; `None` when it has none (see
    /// `no_archive`).
    archive_url: Option<String>,
    /// Why it has no public page (empty when it has one).
    no_archive: &'static str,
}

/// How many failed deliveries the page names.
const FAILED_SHOWN: u32 = 500;

fn item_row(i: &Item) -> ItemRow {
    ItemRow {
        id: i.id,
        title: i.title.clone(),
        when: match &i.event {
            Some(e) => e
                .starts_at
                .with_timezone(&e.timezone.tz())
                .format("%a %-d %b %Y %H:%M %Z")
                .to_string(),
            None => when_opt(i.published_at),
        },
        languages: i.languages().join(", "),
    }
}

impl Body {
    fn of(d: DigestDetail, languages: Vec<LanguageCounts>, base_url: &str) -> Self {
        let (in_progress, can_retry) = (d.in_progress(), d.can_retry());
        let DigestDetail {
            digest,
            list,
            counts,
            items,
            failed,
        } = d;
        let languages = languages
            .into_iter()
            .map(|counts| LanguageRow {
                preview_url: format!(
                    "/admin/lists/{}?{}#h-preview",
                    list.slug,
                    url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("period", &digest.period)
                        .append_pair("language", &counts.language)
                        .finish()
                ),
                counts,
            })
            .collect();
        let (archive_url, no_archive) = if !list.has_public_archive() {
            (None, "None: the list is private, and has no public archive")
        } else if !digest.is_published() {
            (
                None,
                "None: only digests that were sent are in the public archive",
            )
        } else {
            (
                Some(format!(
                    "{base_url}/digests/{}/{}",
                    list.slug, digest.period
                )),
                "",
            )
        };
        Body {
            archive_url,
            no_archive,
            id: digest.id,
            list: list.slug,
            list_name: list.name,
            period: digest.period,
            status: digest.status.as_str(),
            trigger: digest.trigger.as_str(),
            built: when(digest.created_at),
            completed: when_opt(digest.completed_at),
            note: digest.note,
            pending: counts.pending,
            sending: counts.sending,
            sent: counts.sent,
            failed: counts.failed,
            skipped: counts.skipped,
            missed: counts.missed,
            cancelled: counts.cancelled,
            send_local: digest
                .send_local
                .map(|t| t.format("%a %-d %b %Y %H:%M").to_string())
                .unwrap_or_default(),
            in_progress,
            can_retry,
            coming_up: items.coming_up.iter().map(item_row).collect(),
            news: items.news.iter().map(item_row).collect(),
            languages,
            pruned: digest.pruned,
            failures: failed
                .into_iter()
                .map(|f| FailedRow {
                    subscriber_id: f.subscriber_id,
                    email: f.email,
                    attempts: f.attempts,
                    error: f.error,
                    permanent: f.permanent,
                })
                .collect(),
        }
    }
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id("digest", &id)?;
    let detail = digests::detail(state.app(), id, FAILED_SHOWN).await?;
    let languages = digests::language_counts(state.app(), id).await?;
    let body = Body::of(detail, languages, &state.settings.base_url);
    let title = format!("{} · {}", body.list_name, body.period);
    page::render(
        &state,
        &session,
        StatusCode::OK,
        "lists",
        "admin/digest",
        &title,
        &body,
    )
}

pub async fn retry(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id("digest", &id)?;
    let back = format!("/admin/digests/{id}");
    let (ok, message) = match digests::retry(state.app(), id).await {
        Ok(0) => (
            false,
            "Nothing to retry: the failed deliveries are to addresses that have bounced or \
             left the list."
                .to_owned(),
        ),
        Ok(n) => (
            true,
            format!(
                "{n} failed delivery(ies) are being sent again (not to addresses that have \
                 bounced or left the list)."
            ),
        ),
        Err(ServiceError::Conflict { message, .. }) => (false, format!("Not retried: {message}.")),
        Err(e) => return Err(e.into()),
    };
    done(&state, &session, ok, &message, &back).await
}

pub async fn cancel(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let id = parse_id("digest", &id)?;
    let (ok, message) = match digests::cancel(state.app(), id).await {
        Ok(n) => (
            true,
            format!("The digest was cancelled; {n} pending delivery(ies) will not be sent."),
        ),
        Err(ServiceError::Conflict { message, .. }) => {
            (false, format!("Not cancelled: {message}."))
        }
        Err(e) => return Err(e.into()),
    };
    done(
        &state,
        &session,
        ok,
        &message,
        &format!("/admin/digests/{id}"),
    )
    .await
}
