#![forbid(unsafe_code)]

use newsdesk::cli::{Cli, Command};
use newsdesk::config::{Env, LogFormat};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    let env = match Env::process() {
        Ok(env) => env,
        Err(e) => {
            eprintln!("newsdesk: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = Cli::from_env_and_args(&env);
    let format = match LogFormat::parse(&cli.config.observe.log_format) {
        Ok(format) => format,
        Err(e) => {
            eprintln!("newsdesk: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // A digest sent by hand reports its progress itself: not a line per recipient retried.
    let default_filter = if matches!(cli.command, Command::Digest(_)) {
        "info,sqlx=warn,newsdesk::delivery=warn"
    } else {
        "info,sqlx=warn"
    };
    // Logs go to standard error, so that what a command prints (an export, a preview)
    // can be piped; colour only when a person is reading it. The server's lines (one
    // per request) are written in batches by a thread of their own.
    let filter = env
        .get("RUST_LOG")
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| EnvFilter::new(default_filter));
    let serving = matches!(cli.command, Command::Serve { .. });
    let logs = newsdesk::logging::init(filter, format, serving);
    // The server serves many clients at once: a thread per core. A one-off command is
    // one job: on a single thread its tasks hand work to each other without waking
    // another thread for every hand-over (the database has its own thread anyway).
    let mut builder = if serving {
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
    let result = runtime.block_on(newsdesk::cli::run(cli));
    // The lines still waiting are written before the error that ends the command.
    drop(logs);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => report(&e),
    }
}

/// An error as the command line reports it: a service's refusal in its own words with
/// its exit code (2 bad input, 3 not found, 4 conflict), anything else with its chain
/// of causes and 1.
fn report(e: &anyhow::Error) -> std::process::ExitCode {
    use newsdesk::services::ServiceError;
    // `digest send` stopped by a signal said what it left: 130 or 143.
    if let Some(stopped) = e.downcast_ref::<newsdesk::cli::Interrupted>() {
        return std::process::ExitCode::from(stopped.exit_code());
    }
    match e.downcast_ref::<ServiceError>() {
        Some(ServiceError::Internal(inner)) => eprintln!("newsdesk: {inner:#}"),
        Some(ServiceError::NotFound(what)) => eprintln!("newsdesk: there is no {what}"),
        Some(ServiceError::Invalid(errors)) => eprintln!("newsdesk: {errors}"),
        Some(other) => eprintln!("newsdesk: {other}"),
        None => {
            eprintln!("newsdesk: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    }
    std::process::ExitCode::from(
        e.downcast_ref::<ServiceError>()
            .map_or(1, ServiceError::exit_code),
    )
}
