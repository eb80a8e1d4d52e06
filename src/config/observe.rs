//! How the service is watched: the `/metrics` endpoint and the log format.

use super::Secret;
use anyhow::{Context, bail};
use std::net::SocketAddr;

/// How `/metrics` is served, and how logs are written.
#[derive(Debug, Clone, Default)]
pub struct ObserveSettings {
    /// `/metrics` on the main address, for requests that bear this token.
    pub metrics_token: Option<Secret>,
    /// `/metrics` on its own listener at this address (with the token too, when one is
    /// set); the main address then has no `/metrics`.
    pub metrics_bind: Option<SocketAddr>,
    pub log_format: LogFormat,
}

impl ObserveSettings {
    /// Whether `/metrics` is served at all: only when the operator chose how.
    pub fn metrics_enabled(&self) -> bool {
        self.metrics_token.is_some() || self.metrics_bind.is_some()
    }
}

/// How log lines are written to standard error.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// For people: one line per event, in colour on a terminal.
    #[default]
    Text,
    /// For log collectors: one JSON object per line.
    Json,
}

impl LogFormat {
    pub fn parse(value: &str) -> anyhow::Result<Self> {
        match value.trim() {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => bail!("{LOG_FORMAT} must be text or json (got {value:?})"),
        }
    }
}

/// The flags and variables as given; [`ObserveArgs::settings`] checks them.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Monitoring")]
pub struct ObserveArgs {
    /// Serve GET /metrics (Prometheus text format) to requests with
    /// `Authorization: Bearer TOKEN` (16 characters or more). Without this or
    /// --metrics-bind, /metrics is off (404).
    #[arg(long, global = true, value_name = "TOKEN", env = METRICS_TOKEN, hide_env_values = true,
        value_parser = Secret::parse_arg)]
    pub metrics_token: Option<Secret>,
    /// Serve GET /metrics on its own address and port (e.g. 127.0.0.1:9464) instead of
    /// the main one; with a metrics token set, it is required there too.
    #[arg(long, global = true, value_name = "ADDR", env = METRICS_BIND, hide_env_values = true)]
    pub metrics_bind: Option<String>,
    /// Log lines on standard error: text (for people; colour only on a terminal) or json
    /// (one JSON object per line).
    #[arg(long, global = true, value_name = "text|json", env = LOG_FORMAT,
        hide_env_values = true, default_value = "text")]
    pub log_format: String,
}

const METRICS_TOKEN: &str = "NEWSDESK_METRICS_TOKEN";
const METRICS_BIND: &str = "NEWSDESK_METRICS_BIND";
const LOG_FORMAT: &str = "NEWSDESK_LOG_FORMAT";

impl ObserveArgs {
    pub fn settings(&self) -> anyhow::Result<ObserveSettings> {
        let metrics_token = match &self.metrics_token {
            Some(t) if t.expose().trim().len() < 16 => {
                bail!("{METRICS_TOKEN} must be at least 16 characters")
            }
            Some(t)
                if t.expose()
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control()) =>
            {
                bail!("{METRICS_TOKEN} must not contain spaces or control characters")
            }
            other => other.clone(),
        };
        let metrics_bind = match &self.metrics_bind {
            Some(b) => Some(b.trim().parse().with_context(|| {
                format!("{METRICS_BIND} must be an address such as 127.0.0.1:9464")
            })?),
            None => None,
        };
        Ok(ObserveSettings {
            metrics_token,
            metrics_bind,
            log_format: LogFormat::parse(&self.log_format)?,
        })
    }
}
