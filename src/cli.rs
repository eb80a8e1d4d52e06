//! The command line: `newsdesk serve [--demo]`, `newsdesk migrate`, `newsdesk demo`.

use crate::clock::{SharedClock, SystemClock};
use crate::settings::Settings;
use crate::startup::Application;
use crate::store::Store;
use clap::{Parser, Subcommand};
use std::sync::Arc;

#[derive(Debug, Parser)]
#[command(
    name = "newsdesk",
    version,
    about = "News items, categories and feeds, with an admin API"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrations run first).
    Serve {
        /// Load the demo content when the store is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Run the database migrations and exit.
    Migrate,
    /// Load the demo content into an empty store and exit.
    Demo,
    /// Manage subscribers.
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Import contacts from a UTF-8 CSV file (columns: email, name, partner, language,
    /// and any others, kept as attributes). Re-importing the same file changes nothing.
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
        /// Put every contact on this list.
        #[arg(long)]
        list: Option<String>,
        /// Report what would change; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply nothing unless every row is good (default: apply the good rows).
        #[arg(long)]
        all_or_nothing: bool,
        /// Stated consent (e.g. "signed partner agreement 2023"): contacts join a
        /// double opt-in list confirmed instead of pending.
        #[arg(long)]
        consent_source: Option<String>,
    },
    /// Export subscribers (everyone, or one list's members) as CSV.
    Export {
        #[arg(long)]
        list: Option<String>,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command {
        Command::Serve { demo } => {
            let app = Application::build(settings, clock.clone()).await?;
            if demo {
                report_demo(crate::demo::load(&app.state().store, clock.now()).await?);
            }
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let store = Store::connect(&settings.database_url, 1).await?;
            store.migrate().await?;
            println!("migrations are up to date on {}", settings.database_url);
            Ok(())
        }
        Command::Subscribers(command) => {
            let store = Store::connect(&settings.database_url, 2).await?;
            store.migrate().await?;
            subscribers(&store, command, clock.now()).await
        }
        Command::Demo => {
            let store = Store::connect(&settings.database_url, 1).await?;
            store.migrate().await?;
            report_demo(crate::demo::load(&store, clock.now()).await?);
            Ok(())
        }
    }
}

fn report_demo(loaded: crate::demo::Loaded) {
    match loaded {
        crate::demo::Loaded::Skipped => {
            tracing::info!("the store already holds content; demo content not loaded")
        }
        crate::demo::Loaded::Loaded { categories, items } => {
            tracing::info!(categories, items, "demo content loaded")
        }
    }
}

async fn find_list(
    store: &Store,
    slug: Option<&str>,
) -> anyhow::Result<Option<crate::store::MailingList>> {
    match slug {
        None => Ok(None),
        Some(slug) => match store.list_by_slug(slug).await? {
            Some(l) => Ok(Some(l)),
            None => anyhow::bail!("there is no list {slug:?}"),
        },
    }
}

async fn subscribers(
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
