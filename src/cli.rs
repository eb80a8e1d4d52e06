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
    /// Preview or send a list's digest by hand.
    #[command(subcommand)]
    Digest(DigestCommand),
    /// Manage the people who sign in to the admin pages at /admin.
    #[command(subcommand)]
    User(crate::users::UserCommand),
}

#[derive(Debug, Subcommand)]
pub enum DigestCommand {
    /// Render a digest without sending or storing anything.
    Preview {
        #[arg(long)]
        list: String,
        /// ISO week, e.g. 2023-W45.
        #[arg(long)]
        period: String,
        /// Render it as this subscriber would get it.
        #[arg(long)]
        subscriber: Option<String>,
        #[arg(long, value_enum, default_value = "text")]
        format: PreviewFormat,
    },
    /// Build a digest (once) and deliver it, with a progress bar; run again to finish
    /// one that was interrupted.
    Send {
        #[arg(long)]
        list: String,
        #[arg(long)]
        period: String,
        /// Report who would get what; send and store nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum PreviewFormat {
    Html,
    Text,
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
                let store = &app.state().store;
                report_demo(crate::demo::load(store, clock.now()).await?);
                crate::users::demo_admin(store, &app.state().settings.base_url, clock.now())
                    .await?;
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
        Command::Digest(command) => {
            let store = Store::connect(&settings.database_url, 4).await?;
            store.migrate().await?;
            let state = crate::startup::build_state(store, settings, clock)?;
            digest(&state, command).await
        }
        Command::User(command) => {
            let store = Store::connect(&settings.database_url, 1).await?;
            store.migrate().await?;
            crate::users::run(&store, command, clock.now()).await
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

async fn digest(state: &crate::http::AppState, command: DigestCommand) -> anyhow::Result<()> {
    use crate::domain::{Email, IsoWeek};
    use crate::store::{Created, DigestTrigger};
    let (list, period) = match &command {
        DigestCommand::Preview { list, period, .. } | DigestCommand::Send { list, period, .. } => {
            (list, period)
        }
    };
    let list = find_list(&state.store, Some(list))
        .await?
        .expect("a list was named");
    let period = IsoWeek::parse(period).map_err(|e| anyhow::anyhow!("--period {e}"))?;
    match command {
        DigestCommand::Preview {
            subscriber, format, ..
        } => {
            let subscriber = match subscriber {
                None => None,
                Some(e) => {
                    let email =
                        Email::parse(&e).map_err(|m| anyhow::anyhow!("--subscriber {m}"))?;
                    Some(
                        state
                            .store
                            .subscriber_by_email(&email.key())
                            .await?
                            .ok_or_else(|| anyhow::anyhow!("there is no subscriber {email}"))?,
                    )
                }
            };
            match crate::digest::preview(state, &list, period, subscriber.as_ref()).await? {
                None => println!("Nothing new for this reader in {period}."),
                Some(r) => match format {
                    PreviewFormat::Html => println!("{}", r.html),
                    PreviewFormat::Text => println!("Subject: {}\n\n{}", r.subject, r.text),
                },
            }
            Ok(())
        }
        DigestCommand::Send { dry_run: true, .. } => {
            let plan = crate::digest::dry_run(state, &list, period).await?;
            println!(
                "{} {}: {} item(s){}",
                plan.list,
                plan.period,
                plan.items,
                if plan.skipped {
                    " (would be skipped: fewer than the list's minimum)"
                } else {
                    ""
                }
            );
            for t in &plan.coming_up {
                println!("  coming up: {t}");
            }
            for t in &plan.news {
                println!("  news: {t}");
            }
            let getting = plan.recipients.iter().filter(|r| r.items > 0).count();
            for r in &plan.recipients {
                println!("  {} <- {} item(s)", r.email, r.items);
            }
            println!(
                "{getting} of {} confirmed member(s) would get a message; nothing was sent or stored",
                plan.recipients.len()
            );
            Ok(())
        }
        DigestCommand::Send { .. } => {
            let now = state.clock.now();
            let digest = match crate::digest::build(
                &state.store,
                &list,
                period,
                DigestTrigger::Manual,
                None,
                now,
            )
            .await?
            {
                Created::New(d) => d,
                Created::Existing(d) => {
                    eprintln!(
                        "{} {}: a digest exists already ({:?}); finishing its deliveries",
                        list.slug, d.period, d.status
                    );
                    d
                }
            };
            if !digest.note.is_empty() {
                eprintln!("{}", digest.note);
            }
            let outbox = Arc::new(crate::digest::outbox::Outbox::new(
                state.clone(),
                state.settings.delivery.clone(),
            ));
            let counts = state.store.delivery_counts(digest.id).await?;
            let total = counts.pending
                + counts.sending
                + counts.sent
                + counts.failed
                + counts.skipped
                + counts.cancelled;
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {pos}/{len} messages {per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            let done_before = counts.sent + counts.failed + counts.skipped + counts.cancelled;
            bar.set_position(done_before);
            // The outbox works batch after batch without a pause; the bar follows it.
            let ticker = {
                let (bar, outbox) = (bar.clone(), outbox.clone());
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                        bar.set_position(done_before + outbox.finished());
                    }
                })
            };
            loop {
                let outcome = outbox.run_until_idle().await?;
                if outcome.claimed == 0 {
                    // Counted only when nothing was due: counting a large digest after
                    // every batch would cost more than the batch.
                    let counts = state.store.delivery_counts(digest.id).await?;
                    if counts.pending + counts.sending == 0 {
                        break;
                    }
                    // Rows waiting for a retry, or held by another worker's lease.
                    tokio::time::sleep(state.settings.delivery.poll).await;
                }
            }
            ticker.abort();
            state.store.complete_digests(state.clock.now()).await?;
            bar.finish_and_clear();
            let c = state.store.delivery_counts(digest.id).await?;
            println!(
                "{} {}: {} sent, {} failed, {} skipped (nothing new), {} cancelled",
                list.slug, digest.period, c.sent, c.failed, c.skipped, c.cancelled
            );
            for f in state.store.failed_deliveries(digest.id, 100).await? {
                eprintln!(
                    "  failed: {} after {} attempt(s): {}",
                    f.email, f.attempts, f.error
                );
            }
            Ok(())
        }
    }
}
