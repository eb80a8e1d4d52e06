//! Which templates are in use: each built-in, overridden from `NEWSDESK_TEMPLATES_DIR`,
//! or refused (with the file's line and why), and the files the directory holds that
//! are no template. The digest preview on a list's page says the same for the mail
//! templates.

use super::page::{self, PageResult};
use super::session::Session;
use crate::http::AppState;
use crate::templates::{self, Problem, Status};
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

#[derive(Serialize)]
struct Entry {
    path: String,
    kind: &'static str,
    state: &'static str,
    badge: &'static str,
}

#[derive(Serialize)]
struct ProblemView {
    path: String,
    line: Option<usize>,
    reason: String,
}

impl From<&Problem> for ProblemView {
    fn from(p: &Problem) -> Self {
        Self {
            path: if p.path.is_empty() {
                p.file.clone()
            } else {
                p.path.clone()
            },
            line: p.line,
            reason: p.reason.clone(),
        }
    }
}

#[derive(Serialize)]
struct Body {
    dir: Option<String>,
    poll_secs: u64,
    entries: Vec<Entry>,
    problems: Vec<ProblemView>,
    ignored: Vec<String>,
}

pub async fn show(State(state): State<AppState>, session: Session) -> PageResult {
    let status = state.templates.status();
    let mut entries: Vec<Entry> = templates::catalog()
        .map(|(path, _)| path.to_owned())
        // Added language variants and label files of more languages.
        .chain(
            status
                .overridden
                .iter()
                .filter(|p| templates::catalog().all(|(b, _)| b != *p))
                .cloned(),
        )
        .map(|path| {
            let state = status.state_of(&path);
            Entry {
                kind: templates::kind_of(&path),
                badge: match state {
                    "overridden" => "ok",
                    "refused" => "failed",
                    _ => "skipped",
                },
                state,
                path,
            }
        })
        .collect();
    entries.sort_by_key(|e| e.state == "built-in");
    let body = Body {
        dir: status.dir.as_ref().map(|d| d.display().to_string()),
        poll_secs: templates::POLL_INTERVAL.as_secs(),
        entries,
        problems: status.refused.iter().map(ProblemView::from).collect(),
        ignored: status.ignored.clone(),
    };
    page::render(
        &state,
        &session,
        StatusCode::OK,
        "templates",
        "admin/templates",
        "Templates",
        &body,
    )
}

/// What the digest preview says of the mail templates (paths under `email/`).
#[derive(Debug, Serialize)]
pub struct MailTemplates {
    /// Whether `NEWSDESK_TEMPLATES_DIR` is set.
    pub dir: bool,
    pub overridden: Vec<String>,
    pub refused: Vec<String>,
}

impl MailTemplates {
    pub fn of(status: &Status) -> Self {
        let mail = |p: &str| p.starts_with("email/");
        Self {
            dir: status.dir.is_some(),
            overridden: status
                .overridden
                .iter()
                .filter(|p| mail(p))
                .cloned()
                .collect(),
            refused: status
                .refused
                .iter()
                .filter(|p| mail(&p.path))
                .map(|p| {
                    let v = ProblemView::from(p);
                    match v.line {
                        Some(line) => format!("{}, line {line}: {}", v.path, v.reason),
                        None => format!("{}: {}", v.path, v.reason),
                    }
                })
                .collect(),
        }
    }
}
