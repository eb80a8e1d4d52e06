//! CSV import from a browser: upload, a preview of what would change and of every bad
//! row (line number and reason), then apply. The upload waits in a private spool
//! directory between the two steps, under a random name.

use super::page::{self, FormData, PageResult};
use super::session::{Session, done, random_token};
use crate::domain::{JoinedVia, Text};
use crate::http::AppState;
use crate::import::{FileError, ImportMode, ImportOptions, ImportReport, import_csv};
use crate::store::MailingList;
use axum::extract::{Multipart, State};
use axum::http::StatusCode;
use serde::Serialize;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tokio::io::AsyncWriteExt;

/// Uploads not applied within a day are removed.
const KEEP: Duration = Duration::from_secs(24 * 3600);

fn spool_dir() -> PathBuf {
    std::env::temp_dir().join("newsdesk-imports")
}

fn spool_path(id: &str) -> Option<PathBuf> {
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| spool_dir().join(format!("{id}.csv")))
}

fn sweep() {
    let Ok(entries) = std::fs::read_dir(spool_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > KEEP);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
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
    let lists = state
        .store
        .list_lists()
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
        slug => match state.store.list_by_slug(slug).await? {
            Some(l) => Some(l),
            None => return Ok(Err(format!("list: there is no list {slug:?}"))),
        },
    };
    let consent_source = match form.consent_source.trim() {
        "" => None,
        c => match Text::parse(c, 300, true, false) {
            Ok(t) => Some(t.into_string()),
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
    path: &std::path::Path,
    terms: &Terms,
    dry_run: bool,
) -> anyhow::Result<Result<ImportReport, String>> {
    let file = std::fs::File::open(path)?;
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
        Ok(r) => Ok(Ok(r)),
        Err(e) => match e.downcast::<FileError>() {
            Ok(file) => Ok(Err(file.0)),
            Err(e) => Err(e),
        },
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

pub async fn upload(
    State(state): State<AppState>,
    session: Session,
    mut multipart: Multipart,
) -> PageResult {
    sweep();
    let mut form = ImportForm::default();
    let mut saved: Option<(String, PathBuf, String)> = None;
    let refused = |form: ImportForm, error: String| {
        let (state, session) = (state.clone(), session.clone());
        async move {
            form_page(
                &state,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                form,
                Some(error),
            )
            .await
        }
    };
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => return refused(form, format!("The upload could not be read: {e}")).await,
        };
        let name = field.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" => {
                let file_name = field.file_name().unwrap_or("upload.csv").to_owned();
                // Streamed to the spool file: an upload costs disk, not memory.
                std::fs::create_dir_all(spool_dir()).map_err(anyhow::Error::from)?;
                let id = random_token();
                let path = spool_dir().join(format!("{id}.csv"));
                let mut out = tokio::fs::File::create(&path)
                    .await
                    .map_err(anyhow::Error::from)?;
                let limit = state.settings.max_import_bytes;
                let mut written = 0usize;
                let mut field = field;
                loop {
                    let chunk = match field.chunk().await {
                        Ok(Some(c)) => c,
                        Ok(None) => break,
                        Err(e) => {
                            let _ = std::fs::remove_file(&path);
                            return refused(form, format!("The file could not be read: {e}")).await;
                        }
                    };
                    written += chunk.len();
                    if written > limit {
                        drop(out);
                        let _ = std::fs::remove_file(&path);
                        return refused(
                            form,
                            format!("file: is larger than {} MB", limit / (1024 * 1024)),
                        )
                        .await;
                    }
                    out.write_all(&chunk).await.map_err(anyhow::Error::from)?;
                }
                out.flush().await.map_err(anyhow::Error::from)?;
                if written == 0 {
                    let _ = std::fs::remove_file(&path);
                    continue;
                }
                saved = Some((id, path, file_name));
            }
            "list" | "consent_source" | "mode" => {
                let value = field.text().await.unwrap_or_default();
                match name.as_str() {
                    "list" => form.list = value,
                    "consent_source" => form.consent_source = value,
                    _ => form.mode = value,
                }
            }
            _ => {}
        }
    }
    let Some((id, path, file_name)) = saved else {
        return refused(form, "file: choose a CSV file to upload".into()).await;
    };
    let terms = match terms(&state, &form).await? {
        Ok(t) => t,
        Err(m) => {
            let _ = std::fs::remove_file(&path);
            return refused(form, m).await;
        }
    };
    let report = match run(&state, &path, &terms, true).await? {
        Ok(r) => r,
        Err(m) => {
            let _ = std::fs::remove_file(&path);
            return refused(form, format!("file: {m}")).await;
        }
    };
    let shown = report.bad_row_details.len() as u64;
    let body = PreviewBody {
        upload: id,
        file_name,
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
    let Some(path) = spool_path(f.get("upload")).filter(|p| p.exists()) else {
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
    let outcome = run(&state, &path, &terms, false).await;
    let _ = std::fs::remove_file(&path);
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
