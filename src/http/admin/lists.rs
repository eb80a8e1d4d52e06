//! Lists: members, categories, schedule and time zone, a rendered preview of a digest
//! for a chosen member, send now, export, and the list's digest history.

use super::dashboard::{DigestRow, ListSummary, digest_rows};
use super::page::{self, Choice, FormData, FormErrors, PageError, PageResult, zone_choices};
use super::session::{Session, done};
use crate::domain::{DigestStatus, Email, IsoWeek, ListFields, MailingList};
use crate::http::AppState;
use crate::http::download::csv_download;
use crate::http::error::AppError;
use crate::http::public::views::category_tree;
use crate::services::digests;
use crate::services::{ServiceError, lists};
use crate::store::Created;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};

const FIELDS: &[&str] = &[
    "slug",
    "name",
    "description",
    "categories",
    "opt_in",
    "visibility",
    "schedule_cron",
    "schedule_timezone",
    "min_items",
    "grace_minutes",
];

/// The list form's fields: a stored list's settings, or what was posted.
fn fields_of(l: &MailingList) -> ListFields {
    ListFields {
        slug: l.slug.clone(),
        name: l.name.clone(),
        description: l.description.clone(),
        categories: l.categories.clone(),
        opt_in: l.opt_in.as_str().into(),
        visibility: l.visibility.as_str().into(),
        schedule_cron: l.schedule.cron.as_str().into(),
        schedule_timezone: l.schedule.timezone.name().into(),
        min_items: l.schedule.min_items.to_string(),
        grace_minutes: l.schedule.grace_minutes.to_string(),
    }
}

fn posted(f: &FormData) -> ListFields {
    ListFields {
        slug: f.get("slug").trim().into(),
        name: f.get("name").into(),
        description: f.get("description").into(),
        categories: f.all("categories").into_iter().map(str::to_owned).collect(),
        opt_in: f.get("opt_in").into(),
        visibility: f.get("visibility").into(),
        schedule_cron: f.get("schedule_cron").into(),
        schedule_timezone: f.get("schedule_timezone").into(),
        min_items: f.get("min_items").into(),
        grace_minutes: f.get("grace_minutes").into(),
    }
}

#[derive(Serialize)]
struct Options {
    categories: Vec<Choice>,
    zones: Vec<Choice>,
}

async fn options(state: &AppState, form: &ListFields) -> Result<Options, PageError> {
    let all = lists::categories(state.app()).await?;
    Ok(Options {
        categories: category_tree(&all, &state.settings.base_url)
            .into_iter()
            .map(|c| Choice {
                selected: form.categories.contains(&c.slug),
                label: format!("{}{}", "— ".repeat(c.indent), c.name),
                value: c.slug,
            })
            .collect(),
        zones: zone_choices(&form.schedule_timezone),
    })
}

// ---- the lists -----------------------------------------------------------------------

#[derive(Serialize)]
struct IndexBody {
    lists: Vec<ListSummary>,
    form: ListFields,
    options: Options,
    errors: FormErrors,
}

async fn index_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: ListFields,
    errors: FormErrors,
) -> PageResult {
    let overviews = lists::overviews(state.app()).await?;
    let body = IndexBody {
        lists: overviews.iter().map(ListSummary::from).collect(),
        options: options(state, &form).await?,
        form,
        errors,
    };
    page::render(
        state,
        session,
        status,
        "lists",
        "admin/lists",
        "Lists",
        &body,
    )
}

pub async fn index(State(state): State<AppState>, session: Session) -> PageResult {
    index_page(
        &state,
        &session,
        StatusCode::OK,
        ListFields::blank(),
        FormErrors::none(FIELDS),
    )
    .await
}

pub async fn create(State(state): State<AppState>, session: Session, f: FormData) -> PageResult {
    let form = posted(&f);
    let created = match form.parse() {
        Ok(draft) => lists::create(state.app(), &draft).await,
        Err(errors) => Err(errors.into()),
    };
    match page::submitted(created, FIELDS)? {
        Ok(list) => {
            done(
                &state,
                &session,
                true,
                &format!("List “{}” was created.", list.name),
                &format!("/admin/lists/{}", list.slug),
            )
            .await
        }
        Err(errors) => {
            index_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
            )
            .await
        }
    }
}

// ---- one list ------------------------------------------------------------------------

#[derive(Debug, Deserialize)]
pub struct ShowQuery {
    period: Option<String>,
    subscriber: Option<String>,
}

#[derive(Serialize)]
struct MemberRow {
    id: i64,
    email: String,
    name: String,
    partner: String,
    status: &'static str,
}

#[derive(Serialize)]
struct PreviewView {
    period: String,
    subscriber: String,
    frame_url: String,
    subject: String,
    text: String,
    empty: bool,
    error: Option<String>,
}

#[derive(Serialize)]
struct ShowBody {
    #[serde(flatten)]
    summary: ListSummary,
    members: Vec<MemberRow>,
    members_shown: usize,
    members_total: u64,
    default_period: String,
    preview: PreviewView,
    digests: Vec<DigestRow>,
    form: ListFields,
    options: Options,
    errors: FormErrors,
}

async fn show_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    list: &MailingList,
    q: ShowQuery,
    form: ListFields,
    errors: FormErrors,
) -> PageResult {
    let app = state.app();
    let members = lists::members(app, list, 50).await?;
    let member_rows: Vec<MemberRow> = members
        .members
        .iter()
        .map(|(m, status)| MemberRow {
            id: m.id,
            email: m.email.clone(),
            name: m.name.clone(),
            partner: m.partner_name.clone().unwrap_or_default(),
            status: status.map(|s| s.as_str()).unwrap_or("unknown"),
        })
        .collect();
    let fallback = digests::next_period(list, state.clock.now());
    let period_text = q
        .period
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| fallback.to_string());
    let subscriber_text = q.subscriber.as_deref().unwrap_or("").trim().to_owned();
    let preview = render_preview(state, list, &period_text, &subscriber_text).await?;
    let overview = lists::overview(app, list.clone()).await?;
    let body = ShowBody {
        summary: ListSummary::from(&overview),
        members_shown: member_rows.len(),
        members: member_rows,
        members_total: members.total,
        default_period: fallback.to_string(),
        preview,
        digests: digest_rows(app, Some(&list.slug), 52).await?,
        options: options(state, &form).await?,
        form,
        errors,
    };
    page::render(
        state,
        session,
        status,
        "lists",
        "admin/list",
        &list.name,
        &body,
    )
}

/// The preview on the list's page: problems with the period or the reader are shown
/// in its place rather than as an error page.
async fn render_preview(
    state: &AppState,
    list: &MailingList,
    period: &str,
    subscriber: &str,
) -> Result<PreviewView, PageError> {
    let mut view = PreviewView {
        period: period.to_owned(),
        subscriber: subscriber.to_owned(),
        frame_url: String::new(),
        subject: String::new(),
        text: String::new(),
        empty: false,
        error: None,
    };
    let week = match IsoWeek::parse(period) {
        Ok(w) => w,
        Err(m) => {
            view.error = Some(format!("period {m}"));
            return Ok(view);
        }
    };
    let reader = match subscriber {
        "" => None,
        address => match Email::parse(address) {
            Ok(e) => Some(e),
            Err(m) => {
                view.error = Some(format!("subscriber {m}"));
                return Ok(view);
            }
        },
    };
    match digests::preview_for(state.app(), list, week, reader.as_ref()).await {
        Err(ServiceError::NotFound(_)) => {
            view.error = Some(format!("there is no subscriber {subscriber}"));
        }
        Err(e) => return Err(e.into()),
        Ok(None) => view.empty = true,
        Ok(Some(rendered)) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("period", period)
                .append_pair("subscriber", subscriber)
                .finish();
            view.frame_url = format!("/admin/lists/{}/preview?{query}", list.slug);
            view.subject = rendered.subject;
            view.text = rendered.text;
        }
    }
    Ok(view)
}

pub async fn show(
    State(state): State<AppState>,
    session: Session,
    Path(slug): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let list = lists::find(state.app(), &slug).await?;
    let form = fields_of(&list);
    show_page(
        &state,
        &session,
        StatusCode::OK,
        &list,
        q,
        form,
        FormErrors::none(FIELDS),
    )
    .await
}

pub async fn update(
    State(state): State<AppState>,
    session: Session,
    Path(slug): Path<String>,
    f: FormData,
) -> PageResult {
    let list = lists::find(state.app(), &slug).await?;
    let form = posted(&f);
    let updated = match form.parse() {
        Ok(draft) => lists::update(state.app(), &list.slug, &draft).await,
        Err(errors) => Err(errors.into()),
    };
    match page::submitted(updated, FIELDS)? {
        Ok(updated) => {
            done(
                &state,
                &session,
                true,
                &format!("List “{}” was saved.", updated.name),
                &format!("/admin/lists/{}", updated.slug),
            )
            .await
        }
        Err(errors) => {
            let no_query = ShowQuery {
                period: None,
                subscriber: None,
            };
            show_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &list,
                no_query,
                form,
                errors,
            )
            .await
        }
    }
}

/// The HTML part of a digest on its own, for the preview frame: sandboxed, no
/// scripts, allowed to be framed by the admin page only.
pub async fn preview_frame(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    Query(q): Query<ShowQuery>,
) -> Result<Response, PageError> {
    let list = lists::find(state.app(), &slug).await?;
    let bad_request = |m: String| PageError(AppError::BadRequest(m));
    let week = IsoWeek::parse(&q.period.unwrap_or_default())
        .map_err(|m| bad_request(format!("period {m}")))?;
    let address = q
        .subscriber
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let reader = match address {
        None => None,
        Some(a) => Some(Email::parse(a).map_err(|m| bad_request(format!("subscriber {m}")))?),
    };
    let rendered = digests::preview_for(state.app(), &list, week, reader.as_ref()).await;
    let html = match rendered {
        Ok(Some(r)) => r.html,
        Ok(None) => "<p>Nothing new for this reader in this period.</p>".into(),
        Err(ServiceError::NotFound(_)) => {
            let what = format!("subscriber {}", address.unwrap_or_default());
            return Err(PageError(AppError::NotFound(what)));
        }
        Err(e) => return Err(e.into()),
    };
    let mut response = Html(html).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src * data:; frame-ancestors 'self'",
        ),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    Ok(response)
}

/// Builds the digest of a period now and hands it to the delivery worker.
pub async fn send_now(
    State(state): State<AppState>,
    session: Session,
    Path(slug): Path<String>,
    f: FormData,
) -> PageResult {
    let list = lists::find(state.app(), &slug).await?;
    let period = match f.non_blank("period") {
        None => digests::next_period(&list, state.clock.now()),
        Some(p) => match IsoWeek::parse(p) {
            Ok(w) => w,
            Err(m) => {
                let back = format!("/admin/lists/{}", list.slug);
                let message = format!("Not sent: period {m}.");
                return done(&state, &session, false, &message, &back).await;
            }
        },
    };
    let (ok, message, d) = match digests::send_now(state.app(), &list, period).await? {
        Created::New(d) => {
            tracing::info!(list = %list.slug, period = %d.period, by = %session.name, "digest sent by hand");
            if d.status == DigestStatus::Skipped {
                let message = format!(
                    "The {} digest of {} was recorded as skipped: {}",
                    d.period, list.name, d.note
                );
                (false, message, d)
            } else {
                let message = format!("The {} digest of {} is being sent.", d.period, list.name);
                (true, message, d)
            }
        }
        Created::Existing(d) => {
            let message = format!(
                "{} has a digest for {} already; it is not sent twice. Retry its failed deliveries here instead.",
                list.name, d.period
            );
            (false, message, d)
        }
    };
    done(
        &state,
        &session,
        ok,
        &message,
        &format!("/admin/digests/{}", d.id),
    )
    .await
}

pub async fn export(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let list = lists::find(state.app(), &slug).await?;
    let spool = crate::services::import::export_spooled(&state.store, Some(list.id)).await?;
    Ok(csv_download(&list.slug, spool))
}
