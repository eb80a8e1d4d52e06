//! Configuration: every setting, read once at start-up by one loader and checked there.
//!
//! Each setting is a command-line flag with an environment variable behind it (clap's
//! `env`), so `newsdesk serve --help` lists every variable with its default. The flags
//! and variables are read as text and checked here, into the types the rest of the code
//! uses, with errors that name the variable: a bad value stops the start instead of
//! failing later. Where a value comes from (flag, variable, `.env` file, default) and the
//! rule for empty values live in [`load`].

mod delivery;
mod languages;
mod load;
mod mail;
mod observe;
mod retention;
mod templates;

pub use delivery::{DeliveryArgs, DeliverySettings};
pub use languages::LanguageArgs;
pub use load::{AFTER_HELP, Env, args_from, parse};
pub use mail::{
    DkimAlgorithm, DkimKey, DkimSettings, MailArgs, MailSettings, SmtpEndpoint, SmtpSecurity,
};
pub use observe::{LogFormat, ObserveArgs, ObserveSettings};
pub use retention::RetentionArgs;
pub use templates::TemplatesArgs;

use anyhow::{Context, bail};
use std::fmt;
use std::net::SocketAddr;

/// A database URL whose `Debug` and `Display` never show the password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        if s.starts_with("sqlite:")
            || s.starts_with("postgres://")
            || s.starts_with("postgresql://")
        {
            Ok(Self(s.to_owned()))
        } else {
            bail!(
                "DATABASE_URL must start with sqlite: or postgres:// (got {})",
                redact(s)
            )
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.0.starts_with("postgres")
    }

    /// The URL with its secret, for the driver only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with no password in it (for a command line an operator copies; the
    /// password comes from PGPASSWORD or ~/.pgpass there).
    pub fn without_password(&self) -> String {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(None);
                u.to_string()
            }
            _ => self.0.clone(),
        }
    }

    /// The file a SQLite URL names (`sqlite://newsdesk.db`, `sqlite:data/n.db`,
    /// `sqlite:///var/lib/newsdesk/newsdesk.db`, query ignored); `None` for PostgreSQL
    /// and for an in-memory database.
    pub fn sqlite_path(&self) -> Option<std::path::PathBuf> {
        if self.is_postgres() {
            return None;
        }
        let rest = self.0.strip_prefix("sqlite:")?;
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let path = rest.split('?').next().unwrap_or_default();
        if path.is_empty() || path == ":memory:" || self.0.contains("mode=memory") {
            return None;
        }
        Some(std::path::PathBuf::from(path))
    }
}

fn redact(s: &str) -> String {
    match url::Url::parse(s) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => s.to_owned(),
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.0))
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact(&self.0))
    }
}

/// A secret that prints as `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// For clap: a flag or variable holding a secret is kept as one from the start, so
    /// the parsed arguments can be printed with `{:?}` too.
    fn parse_arg(s: &str) -> Result<Self, std::convert::Infallible> {
        Ok(Self::new(s))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Every setting as given: a flag, or else its variable, or else its default. Flattened
/// into the command line's global options, so every command reads the same variables.
/// [`Config::settings`] checks it.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Server")]
pub struct Config {
    /// Where content is stored: sqlite://PATH (created when missing) or
    /// postgres://user:pass@host/db.
    #[arg(long, global = true, value_name = "URL", env = DATABASE_URL, hide_env_values = true,
        default_value = "sqlite://newsdesk.db", value_parser = Secret::parse_arg)]
    pub database_url: Secret,
    /// Database connection pool size (1 to 1000).
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "NEWSDESK_DATABASE_MAX_CONNECTIONS",
        hide_env_values = true,
        default_value = "10"
    )]
    pub database_max_connections: String,
    /// Address and port to listen on.
    #[arg(long, global = true, value_name = "ADDR", env = BIND, hide_env_values = true,
        default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Public URL used in feed links, ids, pages and mail [default: http:// + the bound
    /// address].
    #[arg(long, global = true, value_name = "URL", env = BASE_URL, hide_env_values = true)]
    pub base_url: Option<String>,
    /// Bootstrap bearer token for /api/v1, 16 characters or more; stored hashed.
    #[arg(long, global = true, value_name = "TOKEN", env = ADMIN_TOKEN, hide_env_values = true,
        value_parser = Secret::parse_arg)]
    pub admin_token: Option<Secret>,
    /// Site name in page headers and feed titles.
    #[arg(long, global = true, value_name = "NAME", env = SITE_NAME, hide_env_values = true,
        default_value = "newsdesk")]
    pub site_name: String,
    /// Items per feed page (1 to 1000).
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "NEWSDESK_FEED_PAGE_SIZE",
        hide_env_values = true,
        default_value = "50"
    )]
    pub feed_page_size: String,
    /// Largest API request body in bytes; larger ones get 413.
    #[arg(
        long,
        global = true,
        value_name = "BYTES",
        env = "NEWSDESK_MAX_BODY_BYTES",
        hide_env_values = true,
        default_value = "1048576"
    )]
    pub max_body_bytes: String,
    /// Largest CSV upload in bytes.
    #[arg(
        long,
        global = true,
        value_name = "BYTES",
        env = "NEWSDESK_MAX_IMPORT_BYTES",
        hide_env_values = true,
        default_value = "536870912"
    )]
    pub max_import_bytes: String,
    /// POST /subscribe requests allowed per client address per hour, counted in the
    /// database for every instance together; more get 429.
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "NEWSDESK_SUBSCRIBE_RATE_PER_HOUR",
        hide_env_values = true,
        default_value = "10"
    )]
    pub subscribe_rate_per_hour: String,
    /// on: serve runs the digest schedule and the delivery worker; off: it does not.
    #[arg(long, global = true, value_name = "on|off", env = WORKERS, hide_env_values = true,
        default_value = "on")]
    pub workers: String,
    /// on behind a reverse proxy: per-address limits and consent records use the last
    /// X-Forwarded-For entry. Leave off when clients reach newsdesk directly.
    #[arg(long, global = true, value_name = "on|off", env = TRUST_FORWARDED_FOR,
        hide_env_values = true, default_value = "off")]
    pub trust_forwarded_for: String,
    #[command(flatten)]
    pub mail: MailArgs,
    #[command(flatten)]
    pub delivery: DeliveryArgs,
    #[command(flatten)]
    pub observe: ObserveArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub templates: TemplatesArgs,
    #[command(flatten)]
    pub languages: LanguageArgs,
}

const DATABASE_URL: &str = "DATABASE_URL";
const BIND: &str = "NEWSDESK_BIND";
const BASE_URL: &str = "NEWSDESK_BASE_URL";
const ADMIN_TOKEN: &str = "NEWSDESK_ADMIN_TOKEN";
const SITE_NAME: &str = "NEWSDESK_SITE_NAME";
const WORKERS: &str = "NEWSDESK_WORKERS";
const TRUST_FORWARDED_FOR: &str = "NEWSDESK_TRUST_FORWARDED_FOR";

#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: DatabaseUrl,
    pub database_max_connections: u32,
    pub bind: SocketAddr,
    /// No trailing slash. Without `NEWSDESK_BASE_URL` it follows the address
    /// actually bound (see `base_url_from_bind`).
    pub base_url: String,
    /// True when `NEWSDESK_BASE_URL` was not given.
    pub base_url_from_bind: bool,
    pub admin_token: Option<Secret>,
    /// Shown in page headers and feed titles.
    pub site_name: String,
    pub feed_page_size: u32,
    /// Largest request body the API accepts, in bytes.
    pub max_body_bytes: usize,
    /// Largest CSV upload, in bytes.
    pub max_import_bytes: usize,
    /// Subscribe requests allowed per client address per hour.
    pub subscribe_rate_per_hour: u32,
    /// Where mail goes.
    pub mail: MailSettings,
    /// How digests are delivered.
    pub delivery: DeliverySettings,
    /// Run the digest schedule and the delivery worker inside `serve`.
    pub run_workers: bool,
    /// Behind a reverse proxy: take the client's address from the last
    /// `X-Forwarded-For` entry (the one the proxy added) for per-address limits.
    pub trust_forwarded_for: bool,
    /// `/metrics` and the log format.
    pub observe: ObserveSettings,
    /// Days the per-recipient rows of finished digests are kept (`None`: for ever).
    pub delivery_retention_days: Option<u32>,
    /// Template overrides (`NEWSDESK_TEMPLATES_DIR`), an absolute path; `None`: the
    /// built-in templates alone.
    pub templates_dir: Option<std::path::PathBuf>,
    /// The languages pages and feeds are read in, the default first.
    pub languages: crate::i18n::SiteLanguages,
}

impl Settings {
    /// The settings from the process environment and `.env`, without command-line flags.
    pub fn from_env() -> anyhow::Result<Self> {
        args_from::<Config>(&Env::process()?)?.settings()
    }

    /// The settings from the variables `get` gives (tests give a map), through the same
    /// parser as the command line.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        args_from::<Config>(&Env::from_lookup(get))?.settings()
    }

    /// Listens on `port` instead of the port of `NEWSDESK_BIND` (`serve --port`); a base
    /// URL that follows the bound address follows it.
    pub fn set_port(&mut self, port: u16) {
        self.bind.set_port(port);
        if self.base_url_from_bind {
            self.base_url = format!("http://{}", self.bind);
        }
    }
}

impl Config {
    /// Checks every value into the types the application uses.
    pub fn settings(&self) -> anyhow::Result<Settings> {
        let bind: SocketAddr = self
            .bind
            .trim()
            .parse()
            .with_context(|| format!("{BIND} must be an address such as 127.0.0.1:8080"))?;
        let base_url = match &self.base_url {
            Some(u) => Some(base_url(u)?),
            None => None,
        };
        let admin_token = match &self.admin_token {
            Some(t) if t.expose().len() < 16 => {
                bail!("{ADMIN_TOKEN} must be at least 16 characters")
            }
            other => other.clone(),
        };
        let mail = self.mail.settings()?;
        let delivery = self.delivery.settings(&mail)?;
        let templates_dir = self.templates.dir()?;
        Ok(Settings {
            database_url: DatabaseUrl::parse(self.database_url.expose())?,
            database_max_connections: number(
                "NEWSDESK_DATABASE_MAX_CONNECTIONS",
                &self.database_max_connections,
                1,
                1000,
            )?,
            base_url_from_bind: base_url.is_none(),
            base_url: base_url.unwrap_or_else(|| format!("http://{bind}")),
            bind,
            admin_token,
            site_name: site_name(&self.site_name)?,
            feed_page_size: number("NEWSDESK_FEED_PAGE_SIZE", &self.feed_page_size, 1, 1000)?,
            max_body_bytes: number(
                "NEWSDESK_MAX_BODY_BYTES",
                &self.max_body_bytes,
                1024,
                1 << 30,
            )? as usize,
            max_import_bytes: number(
                "NEWSDESK_MAX_IMPORT_BYTES",
                &self.max_import_bytes,
                1024,
                u32::MAX,
            )? as usize,
            subscribe_rate_per_hour: number(
                "NEWSDESK_SUBSCRIBE_RATE_PER_HOUR",
                &self.subscribe_rate_per_hour,
                1,
                1_000_000,
            )?,
            mail,
            delivery,
            run_workers: on_off(WORKERS, &self.workers)?,
            trust_forwarded_for: on_off(TRUST_FORWARDED_FOR, &self.trust_forwarded_for)?,
            observe: self.observe.settings()?,
            delivery_retention_days: self.retention.days()?,
            languages: self.languages.languages(templates_dir.as_deref())?,
            templates_dir,
        })
    }
}

fn base_url(u: &str) -> anyhow::Result<String> {
    let parsed =
        url::Url::parse(u).with_context(|| format!("{BASE_URL} must be an absolute URL"))?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        bail!("{BASE_URL} must be an http or https URL");
    }
    Ok(u.trim_end_matches('/').to_owned())
}

fn site_name(name: &str) -> anyhow::Result<String> {
    if name.trim().is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        bail!("{SITE_NAME} must be 1 to 200 characters without control characters");
    }
    Ok(name.to_owned())
}

fn on_off(key: &str, value: &str) -> anyhow::Result<bool> {
    match value.trim() {
        "on" => Ok(true),
        "off" => Ok(false),
        _ => bail!("{key} must be on or off (got {value:?})"),
    }
}

/// A whole number from `min` to `max`; the error names the variable.
fn number(key: &str, value: &str, min: u32, max: u32) -> anyhow::Result<u32> {
    let n: u32 = value
        .trim()
        .parse()
        .with_context(|| format!("{key} must be a whole number (got {value:?})"))?;
    if !(min..=max).contains(&n) {
        bail!("{key} must be between {min} and {max} (got {n})");
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sqlite_url_names_its_file() {
        let path = |u: &str| DatabaseUrl::parse(u).unwrap().sqlite_path();
        assert_eq!(path("sqlite://newsdesk.db"), Some("newsdesk.db".into()));
        assert_eq!(path("sqlite:data/n.db?mode=rwc"), Some("data/n.db".into()));
        assert_eq!(
            path("sqlite:///var/lib/newsdesk/newsdesk.db"),
            Some("/var/lib/newsdesk/newsdesk.db".into())
        );
        assert_eq!(path("sqlite::memory:"), None);
        assert_eq!(path("postgres://u@h/db"), None);
    }
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> anyhow::Result<Settings> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn forwarded_for_is_trusted_only_when_asked() {
        assert!(!settings(&[]).unwrap().trust_forwarded_for);
        assert!(
            settings(&[("NEWSDESK_TRUST_FORWARDED_FOR", "on")])
                .unwrap()
                .trust_forwarded_for
        );
        let e = settings(&[("NEWSDESK_TRUST_FORWARDED_FOR", "yes")]).unwrap_err();
        assert!(
            e.to_string().contains("NEWSDESK_TRUST_FORWARDED_FOR"),
            "{e}"
        );
    }

    #[test]
    fn defaults_match_the_documented_contract() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database_url.expose(), "sqlite://newsdesk.db");
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.base_url, "http://127.0.0.1:8080");
        assert!(s.base_url_from_bind);
        assert!(s.admin_token.is_none());
        assert_eq!(s.site_name, "newsdesk");
        assert_eq!(s.feed_page_size, 50);
        assert_eq!(s.max_body_bytes, 1_048_576);
        assert_eq!(s.database_max_connections, 10);
        assert_eq!(s.max_import_bytes, 536_870_912);
        assert_eq!(s.subscribe_rate_per_hour, 10);
        assert!(s.run_workers);
        assert!(!s.trust_forwarded_for);
        assert_eq!(s.languages, crate::i18n::SiteLanguages::default());
        assert_eq!(s.languages.default_language().as_str(), "en");
        let d = &s.delivery;
        assert_eq!(d.concurrency, s.mail.pool_size as usize);
        assert_eq!(d.rate_per_second, 0.0);
        assert_eq!(d.batch_size, 200);
        assert_eq!(d.lease.as_secs(), 60);
        assert_eq!(d.max_attempts, 8);
        assert_eq!(d.retry_base.as_secs(), 60);
        assert_eq!(d.retry_max.as_secs(), 3600);
        assert_eq!(d.bounce_after, 2);
        assert_eq!(d.poll.as_millis(), 1000);
        assert!(s.templates_dir.is_none());
    }

    #[test]
    fn database_url_debug_hides_the_password() {
        let url =
            DatabaseUrl::parse("postgres://newsdesk:hunter2secret@db.example/newsdesk").unwrap();
        assert!(!format!("{url:?}").contains("hunter2secret"));
        assert!(!format!("{url}").contains("hunter2secret"));
        let s = settings(&[
            ("DATABASE_URL", "postgres://u:hunter2secret@h/db"),
            ("NEWSDESK_ADMIN_TOKEN", "a-very-secret-admin-token"),
        ])
        .unwrap();
        let debug = format!("{s:?}");
        assert!(!debug.contains("hunter2secret"), "{debug}");
        assert!(!debug.contains("a-very-secret-admin-token"), "{debug}");
    }

    #[test]
    fn the_parsed_arguments_hide_the_secrets_too() {
        let env = Env::from_lookup(|k| match k {
            "DATABASE_URL" => Some("postgres://u:hunter2secret@h/db".into()),
            "NEWSDESK_ADMIN_TOKEN" => Some("a-very-secret-admin-token".into()),
            "NEWSDESK_SMTP_URL" => Some("smtps://u:smtp-secret-pw@mail.example.edu".into()),
            _ => None,
        });
        let debug = format!("{:?}", args_from::<Config>(&env).unwrap());
        for secret in [
            "hunter2secret",
            "a-very-secret-admin-token",
            "smtp-secret-pw",
        ] {
            assert!(!debug.contains(secret), "{debug}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let cases = [
            ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
            ("NEWSDESK_BIND", "nowhere", "NEWSDESK_BIND"),
            ("NEWSDESK_BASE_URL", "ftp://x", "NEWSDESK_BASE_URL"),
            ("NEWSDESK_ADMIN_TOKEN", "short", "NEWSDESK_ADMIN_TOKEN"),
            ("NEWSDESK_FEED_PAGE_SIZE", "0", "NEWSDESK_FEED_PAGE_SIZE"),
            ("NEWSDESK_FEED_PAGE_SIZE", "1001", "NEWSDESK_FEED_PAGE_SIZE"),
            ("NEWSDESK_FEED_PAGE_SIZE", "many", "NEWSDESK_FEED_PAGE_SIZE"),
            ("NEWSDESK_WORKERS", "maybe", "NEWSDESK_WORKERS"),
            ("NEWSDESK_SITE_NAME", "a\u{7}b", "NEWSDESK_SITE_NAME"),
            ("NEWSDESK_SEND_RATE", "fast", "NEWSDESK_SEND_RATE"),
            ("NEWSDESK_POLL_MS", "5", "NEWSDESK_POLL_MS"),
            (
                "NEWSDESK_TEMPLATES_DIR",
                "/nonexistent/newsdesk-templates",
                "NEWSDESK_TEMPLATES_DIR",
            ),
            ("NEWSDESK_LANGUAGES", "en,fr", "NEWSDESK_LANGUAGES"),
            ("NEWSDESK_LANGUAGES", "en,en", "NEWSDESK_LANGUAGES"),
            ("NEWSDESK_LANGUAGES", "english", "NEWSDESK_LANGUAGES"),
        ];
        for (key, value, named) in cases {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }

    #[test]
    fn a_port_replaces_the_port_of_the_bind_address_and_of_a_derived_base_url() {
        let mut s = settings(&[]).unwrap();
        s.set_port(9999);
        assert_eq!(s.bind.to_string(), "127.0.0.1:9999");
        assert_eq!(s.base_url, "http://127.0.0.1:9999");
        let mut s = settings(&[("NEWSDESK_BASE_URL", "https://news.example.edu/")]).unwrap();
        s.set_port(9999);
        assert_eq!(s.base_url, "https://news.example.edu");
    }
}
