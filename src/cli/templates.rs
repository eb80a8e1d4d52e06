//! `newsdesk templates list|check|export|sample`: what an operator needs to write
//! overrides for `NEWSDESK_TEMPLATES_DIR`.

use crate::config::Settings;
use crate::services::ServiceError;
use crate::templates::{self, Status};
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum TemplatesCommand {
    /// Every template and label file an override may replace, and with
    /// NEWSDESK_TEMPLATES_DIR set, which are overridden, refused (and why) or built in.
    List,
    /// Check NEWSDESK_TEMPLATES_DIR as serve does at start-up: exits 1 naming each
    /// refused file (FILE:LINE: reason).
    Check,
    /// Write the built-in templates and label files into DIR (created when missing;
    /// existing files are never overwritten), as a starting point for overrides.
    Export {
        /// Where to write them.
        dir: PathBuf,
    },
    /// Print the sample data a page or mail template is checked against: the variables
    /// it may use (e.g. `newsdesk templates sample email/digest.html.hbs`).
    Sample {
        /// The template's path, such as web/item.hbs.
        path: String,
    },
}

pub(super) fn run(settings: &Settings, command: TemplatesCommand) -> anyhow::Result<()> {
    match command {
        TemplatesCommand::List => {
            let status = settings
                .templates_dir
                .as_deref()
                .map(templates::check_dir)
                .unwrap_or_default();
            out(&listing(&status))
        }
        TemplatesCommand::Check => check(settings),
        TemplatesCommand::Export { dir } => export(&dir),
        TemplatesCommand::Sample { path } => sample(&path),
    }
}

/// Every path with what it is and whether it is in use; then the refused and ignored
/// files.
fn listing(status: &Status) -> String {
    let mut out = String::new();
    let added = status
        .overridden
        .iter()
        .filter(|p| templates::catalog().all(|(b, _)| b != p.as_str()));
    let paths: Vec<&str> = templates::catalog()
        .map(|(p, _)| p)
        .chain(added.map(String::as_str))
        .collect();
    out.push_str(&format!("{:<40} {:<14} {}\n", "PATH", "WHAT", "IN USE"));
    for path in paths {
        out.push_str(&format!(
            "{path:<40} {:<14} {}\n",
            templates::kind_of(path),
            status.state_of(path)
        ));
    }
    match &status.dir {
        None => {
            out.push_str("\nNEWSDESK_TEMPLATES_DIR is not set: the built-in templates are used.\n")
        }
        Some(dir) => {
            out.push_str(&format!("\nNEWSDESK_TEMPLATES_DIR is {}\n", dir.display()));
            for p in &status.refused {
                out.push_str(&format!("refused: {p}\n"));
            }
            for p in &status.ignored {
                out.push_str(&format!("ignored (not .hbs or .json): {p}\n"));
            }
        }
    }
    out
}

fn check(settings: &Settings) -> anyhow::Result<()> {
    let Some(dir) = settings.templates_dir.as_deref() else {
        return Err(ServiceError::invalid(
            "NEWSDESK_TEMPLATES_DIR",
            "is not set: there are no overrides to check",
        )
        .into());
    };
    let status = templates::check_dir(dir);
    for p in &status.ignored {
        eprintln!(
            "warning: {} is not a template (.hbs) or label file (.json): ignored",
            dir.join(p).display()
        );
    }
    if !status.refused.is_empty() {
        let lines: Vec<String> = status.refused.iter().map(ToString::to_string).collect();
        anyhow::bail!(
            "{} file(s) in {} refused:\n{}",
            status.refused.len(),
            dir.display(),
            lines.join("\n")
        );
    }
    println!(
        "{}: {} override(s) pass: {}",
        dir.display(),
        status.overridden.len(),
        if status.overridden.is_empty() {
            "none".to_owned()
        } else {
            status.overridden.join(", ")
        }
    );
    Ok(())
}

/// Writes every built-in into `dir`; refuses (writing nothing) when any file is there.
fn export(dir: &Path) -> anyhow::Result<()> {
    let existing: Vec<String> = templates::catalog()
        .map(|(path, _)| dir.join(path))
        .filter(|file| file.exists())
        .map(|file| file.display().to_string())
        .collect();
    if !existing.is_empty() {
        let more = match existing.len() {
            n if n > 3 => format!(" and {} more", n - 3),
            _ => String::new(),
        };
        return Err(ServiceError::invalid(
            "DIR",
            format!(
                "{}{more} exist already; nothing was written (existing files are never \
                 overwritten: export into a new directory)",
                existing[..existing.len().min(3)].join(", ")
            ),
        )
        .into());
    }
    let mut written = 0;
    for (path, text) in templates::catalog() {
        let file = dir.join(path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&file, text)?;
        written += 1;
    }
    println!(
        "wrote the {written} built-in templates and label files to {}.\n\
         Point NEWSDESK_TEMPLATES_DIR at it, and delete the files you do not change: a \
         copy left unchanged keeps this version of the built-in after an upgrade.",
        dir.display()
    );
    Ok(())
}

fn sample(path: &str) -> anyhow::Result<()> {
    let Some(json) = templates::sample_of(path) else {
        let why = match templates::kind_of(path) {
            "page partial" | "mail partial" => {
                "is a partial: it sees the data of the page or mail that uses it \
                 (`{{> name}}`); print that one's sample"
            }
            "digest labels" | "page labels" => {
                "is a label file: a JSON object of words, as the built-in"
            }
            _ => "is not a page or mail template (`newsdesk templates list` names them)",
        };
        return Err(ServiceError::invalid("PATH", format!("{path} {why}")).into());
    };
    let value: serde_json::Value = serde_json::from_str(json)?;
    out(&format!("{}\n", serde_json::to_string_pretty(&value)?))
}

/// Writes to standard output; a reader that went away (`| head`) is no error.
fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
