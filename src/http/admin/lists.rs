//! Lists: members, categories, schedule and time zone, a rendered preview of a digest
//! for a chosen member, send now, export, and the list's digest history.

use super::dashboard::{DigestRow, ListSummary, digest_rows};
use super::page::{
    self, Choice, FormData, FormErrors, NameField, PageError, PageResult, zone_choices,
};
use super::session::{Session, done};
use crate::domain::{
    DeliveryZone, DigestStatus, Email, IsoWeek, Language, ListFields, MailingList, ZoneSend,
    weekday_key, weekday_name,
};
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
    "schedule_day",
    "schedule_time",
    "schedule_cron",
    "schedule_timezone",
    "schedule_delivery",
    "min_items",
    "grace_minutes",
];

/// The list form's fields: a stored list's settings, or what was posted.
fn fields_of(l: &MailingList) -> ListFields {
    let mut fields = ListFields {
        slug: l.slug.clone(),
        name: l.name.clone(),
        names: l.names.to_map(),
        description: l.description.clone(),
        categories: l.categories.clone(),
        opt_in: l.opt_in.as_str().into(),
        visibility: l.visibility.as_str().into(),
        schedule_timezone: l.schedule.timezone.name().into(),
        schedule_delivery: l.schedule.delivery.as_str().into(),
        min_items: l.schedule.min_items.to_string(),
        grace_minutes: l.schedule.grace_minutes.to_string(),
        ..Default::default()
    };
    fields.show_schedule(&l.schedule.cron);
    fields
}

fn posted(f: &FormData) -> ListFields {
    ListFields {
        slug: f.get("slug").trim().into(),
        name: f.get("name").into(),
        names: page::posted_names(f),
        description: f.get("description").into(),
        categories: f.all("categories").into_iter().map(str::to_owned).collect(),
        opt_in: f.get("opt_in").into(),
        visibility: f.get("visibility").into(),
        schedule_day: f.get("schedule_day").into(),
        schedule_time: f.get("schedule_time").into(),
        schedule_cron: f.get("schedule_cron").into(),
        schedule_cron_shown: f.get("schedule_cron_shown").into(),
        schedule_timezone: f.get("schedule_timezone").into(),
        schedule_delivery: f.get("schedule_delivery").into(),
        min_items: f.get("min_items").into(),
        grace_minutes: f.get("grace_minutes").into(),
    }
}

#[derive(Serialize)]
struct Options {
    /// The name fields, one per language.
    names: Vec<NameField>,
    categories: Vec<Choice>,
    zones: Vec<Choice>,
    /// Monday to Sunday, and "custom" (the advanced field's cron expression).
    days: Vec<Choice>,
    /// The list's zone, or each reader's.
    deliveries: Vec<Choice>,
}

fn day_choices(selected: &str) -> Vec<Choice> {
    use chrono::Weekday::*;
    let days = [Mon, Tue, Wed, Thu, Fri, Sat, Sun]
        .into_iter()
        .map(|d| (weekday_key(d).to_owned(), weekday_name(d).to_owned()));
    let custom = std::iter::once((
        "custom".to_owned(),
        "Other (the cron expression below)".to_owned(),
    ));
    page::choices(days.chain(custom), selected)
}

fn delivery_choices(selected: &str) -> Vec<Choice> {
    page::choices(
        [
            (
                DeliveryZone::ListZone.as_str().to_owned(),
                "In the list's time zone: every reader at the same moment".to_owned(),
            ),
            (
                DeliveryZone::ReaderZone.as_str().to_owned(),
                "In each reader's time zone (theirs, else their institution's, else the list's)"
                    .to_owned(),
            ),
        ],
        selected,
    )
}

async fn options(
    state: &AppState,
    form: &ListFields,
    errors: &FormErrors,
) -> Result<Options, PageError> {
    let all = lists::categories(state.app()).await?;
    Ok(Options {
        names: page::name_fields(state, &form.names, errors),
        categories: category_tree(&all, &state.settings.base_url)
            .into_iter()
            .map(|c| Choice {
                selected: form.categories.contains(&c.slug),
                label: format!("{}{}", "— ".repeat(c.indent), c.name),
                value: c.slug,
            })
            .collect(),
        zones: zone_choices(&form.schedule_timezone),
        days: day_choices(&form.schedule_day),
        deliveries: delivery_choices(&form.schedule_delivery),
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
        options: options(state, &form, &errors).await?,
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
    /// The preview's language (empty: the reader's, or English for a sample reader).
    language: Option<String>,
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
    /// The language the preview is in; empty: the reader's own.
    language: String,
    /// One tab per language the list's readers read (and the one shown).
    languages: Vec<LanguageTab>,
    /// The preview in the reader's own language.
    own_url: String,
    /// The mail templates the preview was rendered with: overridden, refused.
    templates: super::templates::MailTemplates,
}

/// A language of the preview's switch: its readers on the list, and the preview in it.
#[derive(Serialize)]
struct LanguageTab {
    language: String,
    readers: u64,
    url: String,
    current: bool,
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
    /// A reader-local list's next sends, per zone of its readers.
    next_sends: Vec<ZoneSendRow>,
    /// Its digests already built whose copies still wait for their readers' time
    /// (shown before the next digest's sends).
    sending_sends: Vec<SendingRow>,
    /// Its schedule is read in each reader's zone.
    reader_local: bool,
    form: ListFields,
    options: Options,
    errors: FormErrors,
}

#[derive(Serialize)]
struct ZoneSendRow {
    zone: &'static str,
    /// "Mon 6 Nov 2023 08:00 PKT".
    local: String,
    /// "Mon 6 Nov 2023 03:00 UTC".
    utc: String,
    readers: u64,
}

impl From<&ZoneSend> for ZoneSendRow {
    fn from(s: &ZoneSend) -> Self {
        ZoneSendRow {
            zone: s.zone.name(),
            local: s
                .at
                .with_timezone(&s.zone)
                .format("%a %-d %b %Y %H:%M %Z")
                .to_string(),
            utc: s.at.format("%a %-d %b %Y %H:%M UTC").to_string(),
            readers: s.readers,
        }
    }
}

/// A digest being sent, with the sends still to come per zone.
#[derive(Serialize)]
struct SendingRow {
    /// Its ISO week, e.g. "2023-W45".
    period: String,
    sends: Vec<ZoneSendRow>,
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
    let language_text = q.language.as_deref().unwrap_or("").trim().to_owned();
    let preview =
        render_preview(state, list, &period_text, &subscriber_text, &language_text).await?;
    let overview = lists::overview(app, list.clone()).await?;
    let next_sends = lists::next_sends(app, &overview)
        .await?
        .iter()
        .map(ZoneSendRow::from)
        .collect();
    let sending_sends = lists::sending_sends(app, list)
        .await?
        .into_iter()
        .map(|(period, sends)| SendingRow {
            period,
            sends: sends.iter().map(ZoneSendRow::from).collect(),
        })
        .collect();
    let body = ShowBody {
        next_sends,
        sending_sends,
        reader_local: list.schedule.reader_local(),
        summary: ListSummary::from(&overview),
        members_shown: member_rows.len(),
        members: member_rows,
        members_total: members.total,
        default_period: fallback.to_string(),
        preview,
        digests: digest_rows(app, Some(&list.slug), 52).await?,
        options: options(state, &form, &errors).await?,
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
    language: &str,
) -> Result<PreviewView, PageError> {
    let mut view = PreviewView {
        period: period.to_owned(),
        subscriber: subscriber.to_owned(),
        frame_url: String::new(),
        subject: String::new(),
        text: String::new(),
        empty: false,
        error: None,
        language: language.to_owned(),
        languages: Vec::new(),
        own_url: String::new(),
        templates: super::templates::MailTemplates::of(&state.templates.status()),
    };
    let query = |language: &str| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("period", period)
            .append_pair("subscriber", subscriber)
            .append_pair("language", language)
            .finish()
    };
    let chosen = match language {
        "" => None,
        tag => match Language::parse(tag) {
            Ok(l) => Some(l),
            Err(m) => {
                view.error = Some(format!("language {m}"));
                return Ok(view);
            }
        },
    };
    // As stored: `ZH-hans` is `zh-hans`.
    let language = chosen.as_ref().map_or("", Language::as_str);
    view.language = language.to_owned();
    view.own_url = format!("/admin/lists/{}?{}#h-preview", list.slug, query(""));
    let mut readers = digests::reader_languages(state.app(), list).await?;
    if !language.is_empty() && !readers.iter().any(|(l, _)| l == language) {
        readers.push((language.to_owned(), 0));
    }
    view.languages = readers
        .into_iter()
        .map(|(l, n)| LanguageTab {
            url: format!("/admin/lists/{}?{}#h-preview", list.slug, query(&l)),
            current: l == language,
            language: l,
            readers: n,
        })
        .collect();
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
    match digests::preview_in(state.app(), list, week, reader.as_ref(), chosen.as_ref()).await {
        Err(ServiceError::NotFound(_)) => {
            view.error = Some(format!("there is no subscriber {subscriber}"));
        }
        Err(e) => return Err(e.into()),
        Ok(None) => view.empty = true,
        Ok(Some(rendered)) => {
            view.frame_url = format!(
                "/admin/lists/{}/preview?{}",
                list.slug,
                query(&view.language)
            );
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
                language: None,
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
    let language = match q.language.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(tag) => Some(Language::parse(tag).map_err(|m| bad_request(format!("language {m}")))?),
    };
    let rendered =
        digests::preview_in(state.app(), &list, week, reader.as_ref(), language.as_ref()).await;
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
