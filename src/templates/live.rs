//! The templates in use, and following `NEWSDESK_TEMPLATES_DIR` while `serve` runs.
//!
//! At start-up a refused override is an error: the command stops and names each file
//! with its line and reason. While the service runs, the directory is read again every
//! [`POLL_INTERVAL`] (by each instance: the directory is deployment configuration, and
//! several instances each read their own); when anything in it changed, the set is
//! checked again and swapped in whole. A file that is refused then is logged with its
//! line and reason, and the BUILT-IN template is used for it (not the override it had
//! before) until the file passes again. Renders under way finish with the set they
//! started with.

use super::overrides::{self, Scan, Status};
use super::{Builtin, RenderedMail, Templates};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How often `serve` reads the overrides directory again.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

/// The templates in use, swapped whole when the overrides change.
#[derive(Debug)]
pub struct LiveTemplates {
    builtin: Arc<Builtin>,
    dir: Option<PathBuf>,
    current: RwLock<Arc<Templates>>,
    /// Counts the swaps: a page rendered under an earlier count is not served again
    /// (the page cache compares it), so no page outlives the set it was rendered with,
    /// even before `watch`'s `on_change` has run.
    generation: AtomicU64,
    /// What the directory held when `current` was built.
    last: Mutex<Option<Scan>>,
}

impl LiveTemplates {
    /// The templates with the overrides in `dir`. Any file refused is an error that
    /// names each one (`FILE:LINE: reason`): a broken override stops the start, rather
    /// than a reader's mail.
    pub fn start(dir: Option<&Path>) -> anyhow::Result<Self> {
        let builtin = Arc::new(Builtin::load()?);
        let Some(dir) = dir else {
            return Ok(Self {
                current: RwLock::new(Arc::new(Templates::builtin_only(builtin.clone()))),
                builtin,
                dir: None,
                generation: AtomicU64::new(0),
                last: Mutex::new(None),
            });
        };
        let scan = overrides::scan(dir);
        let templates = overrides::build(&builtin, dir, &scan);
        let status = templates.status().clone();
        if !status.refused.is_empty() {
            let lines: Vec<String> = status.refused.iter().map(|p| format!("  {p}")).collect();
            anyhow::bail!(
                "NEWSDESK_TEMPLATES_DIR {}: {} file(s) refused; fix or remove each (without \
                 it the built-in template is used):\n{}",
                dir.display(),
                status.refused.len(),
                lines.join("\n")
            );
        }
        log_status(&status, None);
        Ok(Self {
            builtin,
            dir: Some(dir.to_owned()),
            current: RwLock::new(Arc::new(templates)),
            generation: AtomicU64::new(0),
            last: Mutex::new(Some(scan)),
        })
    }

    /// The set in use now; hold it for one render (a digest's batch, a page).
    pub fn current(&self) -> Arc<Templates> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many times the set was swapped; take it before a render and keep it with
    /// what the render made.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Which overrides are in use and which were refused.
    pub fn status(&self) -> Arc<Status> {
        self.current().status().clone()
    }

    pub fn render(&self, name: &str, data: &impl Serialize) -> anyhow::Result<String> {
        self.current().render(name, data)
    }

    pub fn render_email(
        &self,
        name: &str,
        language: &str,
        data: &impl Serialize,
    ) -> anyhow::Result<RenderedMail> {
        self.current().render_email(name, language, data)
    }

    /// Reads the directory again and, when anything in it changed, checks it and swaps
    /// the new set in (refused files logged, their built-ins used). `true` when swapped.
    pub fn reload(&self) -> bool {
        let Some(dir) = &self.dir else {
            return false;
        };
        let scan = overrides::scan(dir);
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.as_ref() == Some(&scan) {
            return false;
        }
        let mut templates = overrides::build(&self.builtin, dir, &scan);
        let before = self.status();
        log_status(templates.status(), Some(&before));
        {
            let mut current = self
                .current
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // The set knows its number, so a page rendered with it is kept under it.
            templates.set_generation(self.generation.load(Ordering::Acquire) + 1);
            *current = Arc::new(templates);
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
        *last = Some(scan);
        true
    }

    /// Reads the directory every [`POLL_INTERVAL`] until `stop`; `on_change` runs after
    /// each swap (to drop pages rendered with the old set). Returns at once without a
    /// directory.
    pub async fn watch(
        self: Arc<Self>,
        on_change: impl Fn() + Send + 'static,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        if self.dir.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.wait_for(|stopped| *stopped) => return,
            }
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.reload()).await {
                Ok(true) => on_change(),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "reading the template overrides failed"),
            }
        }
    }
}

/// Says what is in use: each refused file as an error (`FILE:LINE: reason`), ignored
/// files as warnings (new ones only, on a reload), the overrides in use.
fn log_status(status: &Status, before: Option<&Status>) {
    let dir = status
        .dir
        .as_deref()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    for problem in &status.refused {
        tracing::error!(
            templates_dir = %dir,
            "{problem}; refused: the built-in template is used until the file is fixed"
        );
    }
    for path in &status.ignored {
        if before.is_none_or(|b| !b.ignored.contains(path)) {
            tracing::warn!(
                templates_dir = %dir,
                "{path} in NEWSDESK_TEMPLATES_DIR is not a template (.hbs) or label file \
                 (.json): ignored"
            );
        }
    }
    let overridden = status.overridden.join(", ");
    match before {
        None => {
            tracing::info!(templates_dir = %dir, overridden = %overridden, "template overrides in use")
        }
        Some(_) => tracing::info!(
            templates_dir = %dir,
            overridden = %overridden,
            refused = status.refused.len(),
            "template overrides changed: read again"
        ),
    }
}
