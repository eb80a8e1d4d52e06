//! `newsdesk subscribers import|export`.

use super::{SubscribersCommand, find_list};
use crate::store::Store;

pub(super) async fn subscribers(
    store: &Store,
    command: SubscribersCommand,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    use crate::import::{ImportMode, ImportOptions, import_csv};
    use anyhow::Context;
    match command {
        SubscribersCommand::Import {
            file,
            list,
            dry_run,
            all_or_nothing,
            consent_source,
        } => {
            let list = find_list(store, list.as_deref()).await?;
            let handle = std::fs::File::open(&file)
                .with_context(|| format!("opening {}", file.display()))?;
            let size = handle.metadata().map(|m| m.len()).unwrap_or(0);
            let bar = indicatif::ProgressBar::new(size);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
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
            let started = std::time::Instant::now();
            let report = import_csv(
                store,
                std::io::BufReader::with_capacity(1 << 16, handle),
                &options,
                now,
                |b| bar.set_position(b),
            )
            .await?;
            bar.finish_and_clear();
            let seconds = started.elapsed().as_secs_f64();
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
            if report.bad_rows > 0 && !report.applied && !report.dry_run {
                std::process::exit(2);
            }
            Ok(())
        }
        SubscribersCommand::Export { list, output } => {
            let list = find_list(store, list.as_deref()).await?;
            let count = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("creating {}", path.display()))?;
                    let mut w = std::io::BufWriter::new(file);
                    let n = crate::import::export_csv(store, list.map(|l| l.id), &mut w).await?;
                    std::io::Write::flush(&mut w)?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    crate::import::export_csv(store, list.map(|l| l.id), stdout.lock()).await?
                }
            };
            eprintln!("{count} subscribers exported");
            Ok(())
        }
    }
}
