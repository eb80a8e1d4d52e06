//! Where an operator's template overrides are.

use anyhow::bail;
use std::path::PathBuf;

/// The templates flag and variable as given; [`TemplatesArgs::dir`] checks it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Templates")]
pub struct TemplatesArgs {
    /// A directory of template overrides laid out as the built-ins (web/item.hbs,
    /// email/digest.html.hbs, email/digest.labels.zh.json, ...; `newsdesk templates
    /// list` names them, `newsdesk templates export DIR` copies them out). A file found
    /// there replaces the built-in once it passes a strict check; a broken one stops
    /// the start. serve reads the directory again every 2 seconds.
    #[arg(long, global = true, value_name = "DIR", env = TEMPLATES_DIR, hide_env_values = true)]
    pub templates_dir: Option<String>,
}

const TEMPLATES_DIR: &str = "NEWSDESK_TEMPLATES_DIR";

impl TemplatesArgs {
    /// The directory, made absolute (so messages name the whole path); it must exist.
    pub fn dir(&self) -> anyhow::Result<Option<PathBuf>> {
        let Some(given) = self.templates_dir.as_deref().map(str::trim) else {
            return Ok(None);
        };
        let path = std::path::absolute(given).unwrap_or_else(|_| PathBuf::from(given));
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => Ok(Some(path)),
            Ok(_) => bail!(
                "{TEMPLATES_DIR} must be a directory ({} is not one)",
                path.display()
            ),
            Err(e) => bail!(
                "{TEMPLATES_DIR} must be a directory that exists ({}: {e})",
                path.display()
            ),
        }
    }
}
