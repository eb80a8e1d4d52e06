//! Configuration, read once from the environment at start-up and checked there.

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
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

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
    pub mail: crate::mail::MailSettings,
    /// How digests are delivered.
    pub delivery: crate::delivery::DeliverySettings,
    /// Run the digest schedule and the delivery worker inside `serve`.
    pub run_workers: bool,
    /// Behind a reverse proxy: take the client's address from the last
    /// `X-Forwarded-For` entry (the one the proxy added) for per-address limits.
    pub trust_forwarded_for: bool,
}

impl Settings {
    /// Reads the `NEWSDESK_*` variables and `DATABASE_URL`.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let database_url = DatabaseUrl::parse(
            &get("DATABASE_URL").unwrap_or_else(|| "sqlite://newsdesk.db".into()),
        )?;
        let bind: SocketAddr = get("NEWSDESK_BIND")
            .unwrap_or_else(|| "127.0.0.1:8080".into())
            .parse()
            .context("NEWSDESK_BIND must be an address such as 127.0.0.1:8080")?;
        let base_url_from_bind = get("NEWSDESK_BASE_URL").is_none();
        let base_url = match get("NEWSDESK_BASE_URL") {
            Some(u) => {
                let parsed =
                    url::Url::parse(&u).context("NEWSDESK_BASE_URL must be an absolute URL")?;
                if parsed.scheme() != "http" && parsed.scheme() != "https" {
                    bail!("NEWSDESK_BASE_URL must be an http or https URL");
                }
                u.trim_end_matches('/').to_owned()
            }
            None => format!("http://{bind}"),
        };
        let admin_token = match get("NEWSDESK_ADMIN_TOKEN") {
            Some(t) if t.len() < 16 => bail!("NEWSDESK_ADMIN_TOKEN must be at least 16 characters"),
            Some(t) => Some(Secret::new(t)),
            None => None,
        };
        let feed_page_size = parse_number(&get, "NEWSDESK_FEED_PAGE_SIZE", 50, 1, 1000)?;
        let database_max_connections =
            parse_number(&get, "NEWSDESK_DATABASE_MAX_CONNECTIONS", 10, 1, 1000)?;
        let max_body_bytes =
            parse_number(&get, "NEWSDESK_MAX_BODY_BYTES", 1_048_576, 1024, 1 << 30)? as usize;
        let max_import_bytes =
            parse_number(&get, "NEWSDESK_MAX_IMPORT_BYTES", 512 << 20, 1024, u32::MAX)? as usize;
        let subscribe_rate_per_hour =
            parse_number(&get, "NEWSDESK_SUBSCRIBE_RATE_PER_HOUR", 10, 1, 1_000_000)?;
        let mail = crate::mail::MailSettings::from_lookup(&get)?;
        let secs =
            |key: &str, default: u32, min: u32, max: u32| -> anyhow::Result<std::time::Duration> {
                Ok(std::time::Duration::from_secs(u64::from(parse_number(
                    &get, key, default, min, max,
                )?)))
            };
        let rate: f64 = match get("NEWSDESK_SEND_RATE") {
            None => 0.0,
            Some(v) => match v.trim().parse::<f64>() {
                Ok(r) if (0.0..=100_000.0).contains(&r) => r,
                _ => bail!(
                    "NEWSDESK_SEND_RATE must be messages per second from 0 (no limit) to 100000 (got {v:?})"
                ),
            },
        };
        let delivery = crate::delivery::DeliverySettings {
            concurrency: parse_number(
                &get,
                "NEWSDESK_SEND_CONCURRENCY",
                mail.pool_size.max(1),
                1,
                256,
            )? as usize,
            rate_per_second: rate,
            batch_size: parse_number(&get, "NEWSDESK_SEND_BATCH", 200, 1, 10_000)?,
            lease: secs("NEWSDESK_DELIVERY_LEASE_SECS", 60, 1, 3600)?,
            max_attempts: parse_number(&get, "NEWSDESK_SEND_MAX_ATTEMPTS", 8, 1, 100)?,
            retry_base: secs("NEWSDESK_RETRY_BASE_SECS", 60, 0, 86_400)?,
            retry_max: secs("NEWSDESK_RETRY_MAX_SECS", 3600, 0, 7 * 86_400)?,
            bounce_after: parse_number(&get, "NEWSDESK_BOUNCE_AFTER", 2, 1, 100)?,
            poll: std::time::Duration::from_millis(u64::from(parse_number(
                &get,
                "NEWSDESK_POLL_MS",
                1000,
                10,
                600_000,
            )?)),
        };
        let run_workers = match get("NEWSDESK_WORKERS").as_deref() {
            None | Some("on") => true,
            Some("off") => false,
            Some(other) => bail!("NEWSDESK_WORKERS must be on or off (got {other:?})"),
        };
        let trust_forwarded_for = match get("NEWSDESK_TRUST_FORWARDED_FOR").as_deref() {
            None | Some("off") => false,
            Some("on") => true,
            Some(other) => {
                bail!("NEWSDESK_TRUST_FORWARDED_FOR must be on or off (got {other:?})")
            }
        };
        let site_name = get("NEWSDESK_SITE_NAME").unwrap_or_else(|| "newsdesk".into());
        if site_name.trim().is_empty()
            || site_name.chars().count() > 200
            || site_name.chars().any(char::is_control)
        {
            bail!("NEWSDESK_SITE_NAME must be 1 to 200 characters without control characters");
        }
        Ok(Self {
            delivery,
            run_workers,
            trust_forwarded_for,
            max_import_bytes,
            subscribe_rate_per_hour,
            mail,
            site_name,
            base_url_from_bind,
            database_url,
            database_max_connections,
            bind,
            base_url,
            admin_token,
            feed_page_size,
            max_body_bytes,
        })
    }
}

fn parse_number(
    get: &impl Fn(&str) -> Option<String>,
    key: &str,
    default: u32,
    min: u32,
    max: u32,
) -> anyhow::Result<u32> {
    match get(key) {
        None => Ok(default),
        Some(v) => {
            let n: u32 = v
                .trim()
                .parse()
                .with_context(|| format!("{key} must be a whole number (got {v:?})"))?;
            if !(min..=max).contains(&n) {
                bail!("{key} must be between {min} and {max} (got {n})");
            }
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(s.feed_page_size, 50);
        assert!(s.admin_token.is_none());
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
    fn bad_values_are_named() {
        let cases = [
            ("DATABASE_URL", "mysql://x", "DATABASE_URL"),
            ("NEWSDESK_BIND", "nowhere", "NEWSDESK_BIND"),
            ("NEWSDESK_BASE_URL", "ftp://x", "NEWSDESK_BASE_URL"),
            ("NEWSDESK_ADMIN_TOKEN", "short", "NEWSDESK_ADMIN_TOKEN"),
            ("NEWSDESK_FEED_PAGE_SIZE", "0", "NEWSDESK_FEED_PAGE_SIZE"),
            ("NEWSDESK_FEED_PAGE_SIZE", "many", "NEWSDESK_FEED_PAGE_SIZE"),
        ];
        for (key, value, named) in cases {
            let err = format!("{:#}", settings(&[(key, value)]).unwrap_err());
            assert!(err.contains(named), "{key}={value}: {err}");
        }
    }
}
