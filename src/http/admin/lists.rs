//! Lists: members, categories, schedule and time zone, a rendered preview of a digest
//! for a chosen member, send now, export, and the list's digest history.

use super::dashboard::{DigestRow, ListSummary, digest_rows, list_summary};
use super::page::{self, Choice, FormData, FormErrors, PageError, PageResult, zone_choices};
use super::session::{Session, done};
use crate::digest;
use crate::domain::{DigestTrigger, Email, IsoWeek, MailingList};
use crate::http::AppState;
use crate::http::api::lists::ListRequest;
use crate::http::error::AppError;
use crate::http::public::views::category_tree;
use crate::store::{Created, SubscriberFilter};
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

#[derive(Serialize, Default)]
struct ListForm {
    slug: String,
    name: String,
    description: String,
    categories: Vec<String>,
    opt_in: String,
    visibility: String,
    schedule_cron: String,
    schedule_timezone: String,
    min_items: String,
    grace_minutes: String,
}

impl ListForm {
    fn of(l: &MailingList) -> Self {
        Self {
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

    fn blank() -> Self {
        Self {
            opt_in: "double".into(),
            visibility: "public".into(),
            schedule_cron: crate::domain::CronExpr::DEFAULT.into(),
            schedule_timezone: "UTC".into(),
            min_items: "1".into(),
            grace_minutes: "1440".into(),
            ..Default::default()
        }
    }

    fn posted(f: &FormData) -> Self {
        Self {
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

    fn draft(&self) -> Result<crate::domain::ListDraft, FormErrors> {
        let mut errors = crate::domain::FieldErrors::new();
        let number = |field: &str, s: &str, errors: &mut crate::domain::FieldErrors| match s.trim()
        {
            "" => None,
            n => match n.parse::<u32>() {
                Ok(v) => Some(v),
                Err(_) => {
                    errors.add(field, format!("must be a whole number (got {n:?})"));
                    None
                }
            },
        };
        let min_items = number("min_items", &self.min_items, &mut errors);
        let grace_minutes = number("grace_minutes", &self.grace_minutes, &mut errors);
        let opt = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
        let request = ListRequest {
            slug: if self.slug.is_empty() {
                crate::domain::Slug::from_title(&self.name)
                    .as_str()
                    .to_owned()
            } else {
                self.slug.clone()
            },
            name: self.name.clone(),
            description: self.description.clone(),
            categories: self.categories.clone(),
            opt_in: opt(&self.opt_in),
            visibility: opt(&self.visibility),
            schedule_cron: opt(&self.schedule_cron),
            schedule_timezone: opt(&self.schedule_timezone),
            min_items,
            grace_minutes,
        };
        match request.into_draft() {
            Ok(d) if errors.is_empty() => Ok(d),
            Ok(_) => Err(FormErrors::new(errors, FIELDS)),
            Err(e) => {
                errors.0.extend(e.0);
                Err(FormErrors::new(errors, FIELDS))
            }
        }
    }
}

#[derive(Serialize)]
struct Options {
    categories: Vec<Choice>,
    zones: Vec<Choice>,
}

async fn options(state: &AppState, form: &ListForm) -> Result<Options, PageError> {
    let all = state.store.content().categories().await?;
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
    form: ListForm,
    options: Options,
    errors: FormErrors,
}

async fn index_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: ListForm,
    errors: FormErrors,
) -> PageResult {
    let mut lists = Vec::new();
    let now = state.clock.now();
    for l in state.store.lists().all().await? {
        lists.push(list_summary(state, &l, now).await?);
    }
    let body = IndexBody {
        lists,
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
        ListForm::blank(),
        FormErrors::none(FIELDS),
    )
    .await
}

pub async fn create(State(state): State<AppState>, session: Session, f: FormData) -> PageResult {
    let form = ListForm::posted(&f);
    let draft = match form.draft() {
        Ok(d) => d,
        Err(errors) => {
            return index_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                errors,
            )
            .await;
        }
    };
    match state.store.lists().create(&draft, state.clock.now()).await {
        Ok(list) => {
            state.lists_changed.notify_one();
            done(
                &state,
                &session,
                true,
                &format!("List “{}” was created.", list.name),
                &format!("/admin/lists/{}", list.slug),
            )
            .await
        }
        Err(e) => {
            let errors = page::form_error(e, FIELDS)?;
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
    form: ListForm,
    options: Options,
    errors: FormErrors,
}

async fn find(state: &AppState, slug: &str) -> Result<MailingList, PageError> {
    state
        .store
        .lists()
        .by_slug(slug)
        .await?
        .ok_or_else(|| PageError(AppError::NotFound(format!("list {slug:?}"))))
}

/// The week a preview or a send is for when none is named: the one of the next
/// scheduled digest.
fn default_period(list: &MailingList, now: chrono::DateTime<chrono::Utc>) -> IsoWeek {
    let tz = list.schedule.timezone.tz();
    let at = list.schedule.cron.next_fire_after(now, tz).unwrap_or(now);
    IsoWeek::containing(at, tz)
}

async fn show_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    list: &MailingList,
    q: ShowQuery,
    form: ListForm,
    errors: FormErrors,
) -> PageResult {
    let now = state.clock.now();
    let (members, members_total) = state
        .store
        .people()
        .subscribers(&SubscriberFilter {
            list: Some(list.id),
            limit: 50,
            ..Default::default()
        })
        .await?;
    let ids: Vec<i64> = members.iter().map(|m| m.id).collect();
    let statuses = state
        .store
        .lists()
        .membership_statuses(list.id, &ids)
        .await?;
    let member_rows: Vec<MemberRow> = members
        .iter()
        .map(|m| MemberRow {
            id: m.id,
            email: m.email.clone(),
            name: m.name.clone(),
            partner: m.partner_name.clone().unwrap_or_default(),
            status: statuses.get(&m.id).map(|s| s.as_str()).unwrap_or("unknown"),
        })
        .collect();
    let fallback = default_period(list, now);
    let period_text = q
        .period
        .as_deref()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| fallback.to_string());
    let subscriber_text = q.subscriber.as_deref().unwrap_or("").trim().to_owned();
    let preview = render_preview(state, list, &period_text, &subscriber_text).await?;
    let body = ShowBody {
        summary: list_summary(state, list, now).await?,
        members_shown: member_rows.len(),
        members: member_rows,
        members_total,
        default_period: fallback.to_string(),
        preview,
        digests: digest_rows(state, Some(list.id), 52).await?,
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
            Err(m) => {
                view.error = Some(format!("subscriber {m}"));
                return Ok(view);
            }
            Ok(e) => match state.store.people().subscriber_by_email(&e.key()).await? {
                Some(s) => Some(s),
                None => {
                    view.error = Some(format!("there is no subscriber {address}"));
                    return Ok(view);
                }
            },
        },
    };
    match digest::preview(state.app(), list, week, reader.as_ref()).await? {
        None => view.empty = true,
        Some(rendered) => {
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
    let list = find(&state, &slug).await?;
    let form = ListForm::of(&list);
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
    let list = find(&state, &slug).await?;
    let form = ListForm::posted(&f);
    let no_query = || ShowQuery {
        period: None,
        subscriber: None,
    };
    let draft = match form.draft() {
        Ok(d) => d,
        Err(errors) => {
            return show_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &list,
                no_query(),
                form,
                errors,
            )
            .await;
        }
    };
    match state
        .store
        .lists()
        .update(&list.slug, &draft, state.clock.now())
        .await
    {
        Ok(updated) => {
            state.lists_changed.notify_one();
            done(
                &state,
                &session,
                true,
                &format!("List “{}” was saved.", updated.name),
                &format!("/admin/lists/{}", updated.slug),
            )
            .await
        }
        Err(e) => {
            let errors = page::form_error(e, FIELDS)?;
            show_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &list,
                no_query(),
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
    let list = find(&state, &slug).await?;
    let view_period = q.period.unwrap_or_default();
    let week = IsoWeek::parse(&view_period)
        .map_err(|m| PageError(AppError::BadRequest(format!("period {m}"))))?;
    let reader = match q
        .subscriber
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        None => None,
        Some(address) => {
            let e = Email::parse(address)
                .map_err(|m| PageError(AppError::BadRequest(format!("subscriber {m}"))))?;
            Some(
                state
                    .store
                    .people()
                    .subscriber_by_email(&e.key())
                    .await?
                    .ok_or_else(|| {
                        PageError(AppError::NotFound(format!("subscriber {address}")))
                    })?,
            )
        }
    };
    let html = match digest::preview(state.app(), &list, week, reader.as_ref()).await? {
        Some(r) => r.html,
        None => "<p>Nothing new for this reader in this period.</p>".into(),
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
    let list = find(&state, &slug).await?;
    let back = format!("/admin/lists/{}", list.slug);
    let now = state.clock.now();
    let period = match f.non_blank("period") {
        None => default_period(&list, now),
        Some(p) => match IsoWeek::parse(p) {
            Ok(w) => w,
            Err(m) => {
                return done(
                    &state,
                    &session,
                    false,
                    &format!("Not sent: period {m}."),
                    &back,
                )
                .await;
            }
        },
    };
    match digest::build(&state.store, &list, period, DigestTrigger::Manual, None, now).await? {
        Created::New(d) => {
            state.outbox_wake.notify_one();
            tracing::info!(list = %list.slug, period = %d.period, by = %session.name, "digest sent by hand");
            let skipped = d.status == crate::domain::DigestStatus::Skipped;
            let message = if skipped {
                format!(
                    "The {} digest of {} was recorded as skipped: {}",
                    d.period, list.name, d.note
                )
            } else {
                format!("The {} digest of {} is being sent.", d.period, list.name)
            };
            done(&state, &session, !skipped, &message, &format!("/admin/digests/{}", d.id)).await
        }
        Created::Existing(d) => {
            done(
                &state,
                &session,
                false,
                &format!(
                    "{} has a digest for {} already; it is not sent twice. Retry its failed deliveries here instead.",
                    list.name, d.period
                ),
                &format!("/admin/digests/{}", d.id),
            )
            .await
        }
    }
}

pub async fn export(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let list = find(&state, &slug).await?;
    Ok(crate::http::api::subscribers::csv_export(&state, Some(list)).await?)
}
