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
