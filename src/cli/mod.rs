//! The command line: `newsdesk serve [--demo] [--port N]`, `newsdesk migrate`,
//! `newsdesk demo`, and the subscriber, digest and user commands. Every command takes the
//! same settings ([`Config`]), as flags or their variables.

use crate::clock::{SharedClock, SystemClock};
use crate::config::{AFTER_HELP, Config, DatabaseUrl};
use crate::services::ServiceError;
use crate::startup::Application;
use crate::store::Store;
use clap::{Parser, Subcommand};

mod digest;
pub use digest::Interrupted;
mod subscribers;
mod templates;
pub mod users;

pub use templates::TemplatesCommand;

use digest::digest;
use std::sync::Arc;
use subscribers::subscribers;

#[derive(Debug, Parser)]
#[command(
    name = "newsdesk",
    version,
    about = "News items, categories and feeds, with an admin API",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the process's arguments, the variables from the process environment and
    /// `.env`. Like clap's `parse`, prints help or the error and exits when asked to or
    /// when the command line is wrong.
    pub fn from_env_and_args(env: &crate::config::Env) -> Self {
        crate::config::parse(std::env::args_os(), env).unwrap_or_else(|e| e.exit())
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (migrations run first).
    #[command(after_help = AFTER_HELP)]
    Serve {
        /// Load the demo content when the store is empty.
        #[arg(long)]
        demo: bool,
        /// Listen on this port instead of the port of the bind address.
        #[arg(long, value_name = "PORT")]
        port: Option<u16>,
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
    User(users::UserCommand),
    /// List the templates, check NEWSDESK_TEMPLATES_DIR, copy the built-ins out, or
    /// show the data a template is rendered with.
    #[command(subcommand)]
    Templates(TemplatesCommand),
    /// Copy the SQLite database to a new file while the service runs (a consistent
    /// snapshot); for PostgreSQL, prints the pg_dump command to use instead.
    Backup {
        /// The new file (must not exist yet).
        file: std::path::PathBuf,
    },
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
        /// Render it in this language (e.g. zh): the subscriber's digest as it would be
        /// in it, or a sample reader's (default: the subscriber's, or en).
        #[arg(long)]
        language: Option<String>,
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
    /// Prune the per-recipient rows of digests finished longer ago than
    /// NEWSDESK_DELIVERY_RETENTION_DAYS, keeping their totals (`serve` does it every
    /// hour).
    Prune,
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
    let mut settings = cli.config.settings()?;
    let clock: SharedClock = Arc::new(SystemClock);
    match cli.command {
        Command::Serve { demo, port } => {
            if let Some(port) = port {
                settings.set_port(port);
            }
            let app = Application::build(settings, clock.clone()).await?;
            let store = &app.state().store;
            if demo {
                report_demo(crate::demo::load(store, clock.now()).await?);
                users::demo_admin(store, &app.state().settings.base_url, clock.now()).await?;
            }
            users::first_start_hint(store).await?;
            app.run_until_stopped().await
        }
        Command::Migrate => {
            let store = Store::connect(&settings.database_url, 1).await?;
            store.migrate().await?;
            let ids = crate::app::fix_id_authority(&store, &settings, &clock).await?;
            println!("migrations are up to date on {}", settings.database_url);
            println!("entry ids are tag:{ids},...");
            Ok(())
        }
        Command::Subscribers(command) => {
            require_database(&settings.database_url)?;
            let store = Store::connect(&settings.database_url, 2).await?;
            store.migrate().await?;
            subscribers(&store, command, clock.now()).await
        }
        Command::Digest(command) => {
            require_database(&settings.database_url)?;
            let store = Store::connect(&settings.database_url, 4).await?;
            store.migrate().await?;
            let state = crate::app::App::new(store, settings, clock).await?;
            digest(&state, command).await
        }
        Command::User(command) => {
            require_database(&settings.database_url)?;
            let store = Store::connect(&settings.database_url, 1).await?;
            store.migrate().await?;
            users::run(&store, command, clock.now()).await
        }
        Command::Backup { file } => backup(&settings.database_url, &file).await,
        Command::Templates(command) => templates::run(&settings, command),
        Command::Demo => {
            let store = Store::connect(&settings.database_url, 1).await?;
            store.migrate().await?;
            report_demo(crate::demo::load(&store, clock.now()).await?);
            Ok(())
        }
    }
}

/// Only `serve`, `migrate` and `demo` create a database. The other commands work on one
/// that exists: run in the wrong folder, they say where they looked instead of making
/// an empty `newsdesk.db` there.
fn require_database(url: &DatabaseUrl) -> anyhow::Result<()> {
    let Some(path) = url.sqlite_path() else {
        return Ok(());
    };
    if path.exists() {
        return Ok(());
    }
    let looked = std::path::absolute(&path).unwrap_or(path);
    Err(ServiceError::NotFound(format!(
        "database at {} (DATABASE_URL is {url}); set DATABASE_URL or --database-url to \
         the service's database, or create one with `newsdesk migrate`",
        looked.display()
    ))
    .into())
}

/// `newsdesk backup FILE`: a consistent copy of a SQLite database, taken while the
/// service runs, checked before it is reported. The database is not migrated: a
/// backup taken before an upgrade is the old version's database.
async fn backup(url: &DatabaseUrl, file: &std::path::Path) -> anyhow::Result<()> {
    if url.is_postgres() {
        return Err(ServiceError::invalid(
            "DATABASE_URL",
            format!(
                "backup copies SQLite databases; for PostgreSQL use pg_dump: \
                 pg_dump --format=custom --file={} '{}' (the password from PGPASSWORD \
                 or ~/.pgpass); restore with pg_restore --clean --if-exists \
                 --no-owner --dbname=URL FILE",
                file.display(),
                url.without_password()
            ),
        )
        .into());
    }
    require_database(url)?;
    if file.exists() {
        return Err(ServiceError::invalid(
            "FILE",
            format!(
                "{} exists already; a backup is written to a new file",
                file.display()
            ),
        )
        .into());
    }
    let target = std::path::absolute(file).unwrap_or_else(|_| file.to_owned());
    let store = Store::connect(url, 1).await?;
    let copied = store.backup_into(&target).await;
    store.close().await;
    copied?;
    let (integrity, items) = Store::check_sqlite_file(&target).await?;
    if integrity != "ok" {
        anyhow::bail!(
            "the backup {} fails SQLite's integrity check: {integrity}",
            target.display()
        );
    }
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup of {url} written to {} ({bytes} bytes, {items} items, integrity_check ok)",
        target.display()
    );
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        // clap's own checks: no flag of a command clashes with a global setting's flag.
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_takes_a_port_that_replaces_the_port_of_the_bind_address() {
        let env = crate::config::Env::from_lookup(|k| {
            (k == "NEWSDESK_BIND").then(|| "0.0.0.0:8080".to_owned())
        });
        let cli: Cli = crate::config::parse(["newsdesk", "serve", "--port", "9090"], &env).unwrap();
        let Command::Serve { port, demo } = cli.command else {
            panic!("not serve: {:?}", cli.command)
        };
        assert_eq!((port, demo), (Some(9090), false));
        let mut settings = cli.config.settings().unwrap();
        settings.set_port(9090);
        assert_eq!(settings.bind.to_string(), "0.0.0.0:9090");
    }

    #[test]
    fn serve_help_names_each_variable_and_the_rule_for_empty_ones() {
        let mut cmd = Cli::command();
        cmd.build();
        let help = cmd
            .find_subcommand_mut("serve")
            .unwrap()
            .render_long_help()
            .to_string();
        for variable in [
            "DATABASE_URL",
            "NEWSDESK_BIND",
            "NEWSDESK_SMTP_URL",
            "NEWSDESK_POLL_MS",
        ] {
            assert!(help.contains(&format!("[env: {variable}]")), "{help}");
        }
        assert!(help.contains("An empty variable"), "{help}");
    }
}
