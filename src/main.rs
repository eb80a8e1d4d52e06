#![forbid(unsafe_code)]

use clap::Parser;
use newsdesk::cli::Command;
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn")),
        )
        .init();
    let cli = newsdesk::cli::Cli::parse();
    // The server serves many clients at once: a thread per core. A one-off command is
    // one job: on a single thread its tasks hand work to each other without waking
    // another thread for every hand-over (the database has its own thread anyway).
    let mut builder = if matches!(cli.command, Command::Serve { .. }) {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("newsdesk: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(newsdesk::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("newsdesk: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
