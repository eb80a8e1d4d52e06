//! `newsdesk subscribers import|export`: an adapter over `services::import`. A
//! refused import or export is a message on standard error and the service error's
//! exit code.

use super::SubscribersCommand;
use crate::domain::MailingList;
use crate::services::import::{ImportMode, ImportOptions, ImportReport, export_csv, import_csv};
use crate::services::{ServiceError, ServiceResult};
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::path::Path;

pub(super) async fn subscribers(
    store: &Store,
    command: SubscribersCommand,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let done = match command {
        SubscribersCommand::Import {
            file,
            list,
            dry_run,
            all_or_nothing,
            consent_source,
        } => match find_list(store, list.as_deref()).await {
            Ok(list) => {
                let options = ImportOptions {
                    list,
                    mode: if all_or_nothing {
                        ImportMode::AllOrNothing
                    } else {
                        ImportMode::GoodRows
                    },
                    dry_run,
                    consent_source,
                    via: crate::domain::JoinedVia::Import,
                };
                import(store, &file, &options, now).await
            }
            Err(e) => Err(e),
        },
        SubscribersCommand::Export { list, output } => {
            export(store, list.as_deref(), output.as_deref()).await
        }
    };
    // `main` reports a service's refusal with its exit code.
    done.map_err(anyhow::Error::new)
}

async fn find_list(store: &Store, slug: Option<&str>) -> ServiceResult<Option<MailingList>> {
    match slug {
        None => Ok(None),
        Some(slug) => {
            Ok(Some(store.lists().by_slug(slug).await?.ok_or_else(
                || ServiceError::not_found(format!("list {slug:?}")),
            )?))
        }
    }
}

fn io_error(what: String) -> impl FnOnce(std::io::Error) -> ServiceError {
    move |e| ServiceError::Internal(anyhow::Error::new(e).context(what))
}

async fn import(
    store: &Store,
    file: &Path,
    options: &ImportOptions,
    now: DateTime<Utc>,
) -> ServiceResult<()> {
    let handle =
        std::fs::File::open(file).map_err(io_error(format!("opening {}", file.display())))?;
    let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(size);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let report = import_csv(
        store,
        std::io::BufReader::with_capacity(1 << 16, handle),
        options,
        now,
        |b| bar.set_position(b),
    )
    .await?;
    bar.finish_and_clear();
    print_report(&report, started.elapsed().as_secs_f64());
    if report.bad_rows > 0 && !report.applied && !report.dry_run {
        std::process::exit(2);
    }
    Ok(())
}

fn print_report(report: &ImportReport, seconds: f64) {
    for bad in &report.bad_row_details {
        eprintln!("line {}: {} {}", bad.line, bad.email, bad.reason);
    }
    if report.bad_rows > report.bad_row_details.len() as u64 {
        eprintln!(
            "... and {} more bad rows",
            report.bad_rows - report.bad_row_details.len() as u64
        );
    }
    println!(
        "{} rows in {:.2}s ({:.0} rows/s): {} created, {} updated, {} unchanged, {} added to the list, {} bad{}",
        report.rows,
        seconds,
        report.rows as f64 / seconds.max(1e-9),
        report.counts.created,
        report.counts.updated,
        report.counts.unchanged,
        report.counts.added_to_list,
        report.bad_rows,
        match (report.dry_run, report.applied) {
            (true, _) => "; dry run, nothing changed",
            (false, true) => "",
            (false, false) => "; bad rows found, nothing changed (all or nothing)",
        }
    );
}

async fn export(store: &Store, list: Option<&str>, output: Option<&Path>) -> ServiceResult<()> {
    let list = find_list(store, list).await?.map(|l| l.id);
    let count = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .map_err(io_error(format!("creating {}", path.display())))?;
            let mut w = std::io::BufWriter::new(file);
            let n = export_csv(store, list, &mut w).await?;
            std::io::Write::flush(&mut w).map_err(io_error("writing the export".into()))?;
            n
        }
        None => export_csv(store, list, std::io::stdout().lock()).await?,
    };
    eprintln!("{count} subscribers exported");
    Ok(())
}
