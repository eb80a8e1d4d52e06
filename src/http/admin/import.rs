//! CSV import from a browser: upload, a preview of what would change and of every bad
//! row (line number and reason), then apply. The upload waits in the database between
//! the steps, under a random name, as its uploader's for a day: the next step may reach
//! any instance sharing the database.

use super::page::{self, FormData, PageError, PageResult};
use super::session::{Session, done, random_token};
use crate::domain::{Consent, JoinedVia, MailingList};
use crate::http::AppState;
use crate::services::ServiceError;
use crate::services::import::{FILE_FIELD, ImportMode, ImportOptions, ImportReport, import_csv};
use crate::services::subscriptions::find_list;
use crate::store::Spool;
use axum::extract::multipart::Field;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};

/// Uploads not applied within a day are removed.
const KEEP_SECS: i64 = 24 * 3600;
/// An upload is stored in chunks of this size.
const CHUNK: usize = 1024 * 1024;

/// Upload ids are 256 random bits in hex.
fn is_upload_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `session`'s upload `id`, unless it is gone (applied, expired, or another user's).
async fn find_upload(
    state: &AppState,
    session: &Session,
    id: &str,
) -> Result<Option<Spool>, PageError> {
    if !is_upload_id(id) {
        return Ok(None);
    }
    Ok(state
        .store
        .spools()
        .find(id, session.user_id)
        .await
        .map_err(crate::services::ServiceError::from)?)
}

/// The upload copied from the database to an anonymous temporary file, rewound: the
/// parser reads it on a thread of its own in flat memory.
async fn upload_file(state: &AppState, spool: &Spool) -> anyhow::Result<std::fs::File> {
    use std::io::{Seek, Write};
    let mut file = tempfile::tempfile()?;
    for seq in 0..spool.chunks {
        let chunk = state
            .store
            .spools()
            .chunk(&spool.id, seq)
            .await?
            .ok_or_else(|| anyhow::anyhow!("chunk {seq} of an upload is missing"))?;
        file.write_all(&chunk)?;
    }
    file.rewind()?;
    Ok(file)
}

async fn forget(state: &AppState, id: &str) {
    if let Err(e) = state.store.spools().delete(id).await {
        tracing::warn!(
            error = format!("{e:#}"),
            "could not remove an import upload"
        );
    }
}

#[derive(Serialize)]
struct ListChoice {
    slug: String,
    name: String,
    selected: bool,
}

#[derive(Serialize, Default)]
struct ImportForm {
    list: String,
    consent_source: String,
    mode: String,
}

#[derive(Serialize)]
struct FormBody {
    lists: Vec<ListChoice>,
    form: ImportForm,
    error: Option<String>,
    max_mb: usize,
}

async fn form_page(
    state: &AppState,
    session: &Session,
    status: StatusCode,
    form: ImportForm,
    error: Option<String>,
) -> PageResult {
    let lists = crate::services::lists::all(state.app())
        .await?
        .into_iter()
        .map(|l| ListChoice {
            selected: l.slug == form.list,
            slug: l.slug,
            name: l.name,
        })
        .collect();
    let body = FormBody {
        lists,
        form,
        error,
        max_mb: state.settings.max_import_bytes / (1024 * 1024),
    };
    page::render(
        state,
        session,
        status,
        "import",
        "admin/import",
        "Import subscribers",
        &body,
    )
}

pub async fn form(State(state): State<AppState>, session: Session) -> PageResult {
    form_page(
        &state,
        &session,
        StatusCode::OK,
        ImportForm {
            mode: "good_rows".into(),
            ..Default::default()
        },
        None,
    )
    .await
}

/// The choices of the form, checked.
struct Terms {
    list: Option<MailingList>,
    consent_source: Option<String>,
    mode: ImportMode,
}

async fn terms(
    state: &AppState,
    form: &ImportForm,
) -> Result<Result<Terms, String>, page::PageError> {
    let list = match form.list.trim() {
        "" => None,
        slug => match find_list(state.app(), slug).await {
            Ok(l) => Some(l),
            Err(ServiceError::NotFound(_)) => {
                return Ok(Err(format!("list: there is no list {slug:?}")));
            }
            Err(e) => return Err(e.into()),
        },
    };
    let consent_source = match form.consent_source.trim() {
        "" => None,
        c => match Consent::parse_source(c) {
            Ok(c) => Some(c.source),
            Err(m) => return Ok(Err(format!("consent_source: {m}"))),
        },
    };
    let mode = match ImportMode::parse(if form.mode.is_empty() {
        "good_rows"
    } else {
        &form.mode
    }) {
        Ok(m) => m,
        Err(m) => return Ok(Err(format!("mode: {m}"))),
    };
    Ok(Ok(Terms {
        list,
        consent_source,
        mode,
    }))
}

async fn run(
    state: &AppState,
    spool: &Spool,
    terms: &Terms,
    dry_run: bool,
) -> Result<Result<ImportReport, String>, PageError> {
    let file = upload_file(state, spool).await?;
    let options = ImportOptions {
        list: terms.list.clone(),
        mode: terms.mode,
        dry_run,
        consent_source: terms.consent_source.clone(),
        via: JoinedVia::Import,
    };
    match import_csv(
        &state.store,
        std::io::BufReader::new(file),
        &options,
        state.clock.now(),
        |_| {},
    )
    .await
    {
        Ok(r) => {
            state.metrics.import_rows(&r);
            Ok(Ok(r))
        }
        Err(ServiceError::Invalid(errors))
            if errors.0.len() == 1 && errors.0[0].field == FILE_FIELD =>
        {
            Ok(Err(errors.0[0].message.clone()))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Serialize)]
struct BadRowView {
    line: u64,
    email: String,
    reason: String,
}

#[derive(Serialize)]
struct PreviewBody {
    upload: String,
    file_name: String,
    form: ImportForm,
    list_name: String,
    rows: u64,
    created: u64,
    updated: u64,
    unchanged: u64,
    added_to_list: u64,
    bad_rows: u64,
    bad: Vec<BadRowView>,
    more_bad: u64,
    can_apply: bool,
    all_or_nothing: bool,
}

/// Longest text field of the upload form.
const TEXT_FIELD_LIMIT: usize = 4096;

async fn text_field(mut field: axum::extract::multipart::Field<'_>) -> Result<String, String> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|e| e.to_string())? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() > TEXT_FIELD_LIMIT {
            return Err(format!(
                "a form field is longer than {TEXT_FIELD_LIMIT} bytes"
            ));
        }
    }
    String::from_utf8(bytes).map_err(|_| "a form field is not UTF-8".to_owned())
}

/// An upload in the spool.
struct Spooled {
    id: String,
    file_name: String,
}

/// Streams the file field into a new upload in the database, a chunk at a time: an
/// upload costs neither memory nor this instance's disk. `Ok(Err(why))` refuses it
/// (nothing kept); `Ok(Ok(None))` for an empty field.
async fn spool_file(
    state: &AppState,
    owner: i64,
    mut field: Field<'_>,
    limit: usize,
) -> anyhow::Result<Result<Option<Spooled>, String>> {
    let file_name: String = field
        .file_name()
        .unwrap_or("upload.csv")
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    let id = random_token();
    let spools = state.store.spools();
    spools.create(&id, owner, &file_name, KEEP_SECS).await?;
    let mut written = 0usize;
    let mut seq = 0i64;
    let mut buffer = Vec::with_capacity(CHUNK);
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                forget(state, &id).await;
                return Ok(Err(format!("The file could not be read: {e}")));
            }
        };
        written += chunk.len();
        if written > limit {
            forget(state, &id).await;
            return Ok(Err(format!(
                "file: is larger than {} MB",
                limit / (1024 * 1024)
            )));
        }
        buffer.extend_from_slice(&chunk);
        if buffer.len() >= CHUNK {
            spools
                .append(
                    &id,
                    seq,
                    std::mem::replace(&mut buffer, Vec::with_capacity(CHUNK)),
                )
                .await?;
            seq += 1;
        }
    }
    if written == 0 {
        forget(state, &id).await;
        return Ok(Ok(None));
    }
    if !buffer.is_empty() {
        spools.append(&id, seq, buffer).await?;
    }
    spools.complete(&id, written as i64).await?;
    Ok(Ok(Some(Spooled { id, file_name })))
}

/// Reads the upload form into `form`, the file into the spool. `Ok(Err(why))`
/// refuses it, with nothing left in the spool.
async fn read_upload(
    state: &AppState,
    owner: i64,
    multipart: &mut Multipart,
    form: &mut ImportForm,
    limit: usize,
) -> anyhow::Result<Result<Option<Spooled>, String>> {
    let mut saved: Option<Spooled> = None;
    let refusal = loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(Ok(saved)),
            Err(e) => break format!("The upload could not be read: {e}"),
        };
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" if saved.is_some() => break "file: send one file at a time".into(),
            "file" => match spool_file(state, owner, field, limit).await? {
                Ok(spooled) => saved = spooled,
                Err(why) => break why,
            },
            "list" | "consent_source" | "mode" => {
                let value = match text_field(field).await {
                    Ok(v) => v,
                    Err(m) => break m,
                };
                match name.as_str() {
                    "list" => form.list = value,
                    "consent_source" => form.consent_source = value,
                    _ => form.mode = value,
                }
            }
            _ => {}
        }
    };
    if let Some(s) = saved {
        forget(state, &s.id).await;
    }
    Ok(Err(refusal))
}

/// Receives the file into the spool, then sends the browser to its preview (a GET,
/// so the address kept in the history holds no CSRF token and a reload is harmless).
pub async fn upload(
    State(state): State<AppState>,
    session: Session,
    mut multipart: Multipart,
) -> PageResult {
    // Uploads past their time go now and then (any instance may do it).
    if let Err(e) = state.store.limits().prune().await {
        tracing::warn!(error = format!("{e:#}"), "could not prune old uploads");
    }
    let mut form = ImportForm::default();
    let limit = state.settings.max_import_bytes;
    let owner = session.user_id;
    let refusal = match read_upload(&state, owner, &mut multipart, &mut form, limit).await? {
        Ok(Some(saved)) => match terms(&state, &form).await? {
            Ok(_) => {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("list", &form.list)
                    .append_pair("consent_source", &form.consent_source)
                    .append_pair("mode", &form.mode)
                    .append_pair("name", &saved.file_name)
                    .finish();
                let to = format!("/admin/import/{}?{query}", saved.id);
                return Ok(axum::response::Redirect::to(&to).into_response());
            }
            Err(m) => {
                forget(&state, &saved.id).await;
                m
            }
        },
        Ok(None) => "file: choose a CSV file to upload".into(),
        Err(why) => why,
    };
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    form_page(&state, &session, status, form, Some(refusal)).await
}

#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    list: String,
    #[serde(default)]
    consent_source: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    name: String,
}

/// What importing an upload would change, and its bad rows: a dry run, nothing stored.
pub async fn preview(
    State(state): State<AppState>,
    session: Session,
    Path(upload): Path<String>,
    Query(q): Query<PreviewQuery>,
) -> PageResult {
    let form = ImportForm {
        list: q.list,
        consent_source: q.consent_source,
        mode: q.mode,
    };
    let Some(spool) = find_upload(&state, &session, &upload).await? else {
        return form_page(
            &state,
            &session,
            StatusCode::NOT_FOUND,
            form,
            Some("That upload is no longer there (uploads are kept for a day, and once applied they are gone). Upload the file again.".into()),
        )
        .await;
    };
    let terms = match terms(&state, &form).await? {
        Ok(t) => t,
        Err(m) => {
            return form_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                Some(m),
            )
            .await;
        }
    };
    let report = match run(&state, &spool, &terms, true).await? {
        Ok(r) => r,
        Err(m) => {
            forget(&state, &spool.id).await;
            return form_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                Some(format!("file: {m}")),
            )
            .await;
        }
    };
    let shown = report.bad_row_details.len() as u64;
    let body = PreviewBody {
        upload,
        file_name: if q.name.is_empty() {
            "the file".into()
        } else {
            q.name
        },
        list_name: terms
            .list
            .as_ref()
            .map(|l| l.name.clone())
            .unwrap_or_default(),
        rows: report.rows,
        created: report.counts.created,
        updated: report.counts.updated,
        unchanged: report.counts.unchanged,
        added_to_list: report.counts.added_to_list,
        bad_rows: report.bad_rows,
        more_bad: report.bad_rows.saturating_sub(shown),
        bad: report
            .bad_row_details
            .into_iter()
            .map(|b| BadRowView {
                line: b.line,
                email: b.email,
                reason: b.reason,
            })
            .collect(),
        can_apply: !(terms.mode == ImportMode::AllOrNothing && report.bad_rows > 0)
            && report.rows > report.bad_rows,
        all_or_nothing: terms.mode == ImportMode::AllOrNothing,
        form,
    };
    page::render(
        &state,
        &session,
        StatusCode::OK,
        "import",
        "admin/import_preview",
        "Import preview",
        &body,
    )
}

pub async fn apply(State(state): State<AppState>, session: Session, f: FormData) -> PageResult {
    let form = ImportForm {
        list: f.get("list").into(),
        consent_source: f.get("consent_source").into(),
        mode: f.get("mode").into(),
    };
    let Some(spool) = find_upload(&state, &session, f.get("upload")).await? else {
        return done(
            &state,
            &session,
            false,
            "That upload is no longer there (uploads are kept for a day, and once applied they are gone). Upload the file again.",
            "/admin/import",
        )
        .await;
    };
    let terms = match terms(&state, &form).await? {
        Ok(t) => t,
        Err(m) => {
            return done(
                &state,
                &session,
                false,
                &format!("Not imported: {m}."),
                "/admin/import",
            )
            .await;
        }
    };
    let outcome = run(&state, &spool, &terms, false).await;
    forget(&state, &spool.id).await;
    let report = match outcome? {
        Ok(r) => r,
        Err(m) => {
            return done(
                &state,
                &session,
                false,
                &format!("Not imported: {m}."),
                "/admin/import",
            )
            .await;
        }
    };
    let (ok, message) = if report.applied {
        (
            true,
            format!(
                "Imported {} row(s): {} new, {} updated, {} unchanged, {} added to the list; {} bad row(s) left out.",
                report.rows,
                report.counts.created,
                report.counts.updated,
                report.counts.unchanged,
                report.counts.added_to_list,
                report.bad_rows
            ),
        )
    } else {
        (
            false,
            format!(
                "Nothing was imported: {} bad row(s) and “all or nothing” was chosen.",
                report.bad_rows
            ),
        )
    };
    let to = match &terms.list {
        Some(l) => format!("/admin/subscribers?list={}", l.slug),
        None => "/admin/subscribers".into(),
    };
    done(&state, &session, ok, &message, &to).await
}
