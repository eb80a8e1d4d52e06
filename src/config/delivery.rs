//! How the digest outbox is worked: pace, batches, leases and retries.

use super::{MailSettings, number};
use anyhow::bail;
use std::time::Duration;

/// How the outbox is worked.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// Messages sent at once.
    pub concurrency: usize,
    /// Messages per second at most; 0 for no limit.
    pub rate_per_second: f64,
    /// Rows claimed at a time.
    pub batch_size: u32,
    /// How long claimed rows stay this worker's without renewal.
    pub lease: Duration,
    /// Tries before a temporary failure counts as failed.
    pub max_attempts: u32,
    /// First wait after a temporary failure; doubled each time, up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Permanent failures in a row that mark a subscriber bounced.
    pub bounce_after: u32,
    /// How often an idle worker looks for due rows.
    pub poll: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            concurrency: 4,
            rate_per_second: 0.0,
            batch_size: 200,
            lease: Duration::from_secs(60),
            max_attempts: 8,
            retry_base: Duration::from_secs(60),
            retry_max: Duration::from_secs(3600),
            bounce_after: 2,
            poll: Duration::from_secs(1),
        }
    }
}

/// The delivery flags and variables as given; [`DeliveryArgs::settings`] checks them.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Digest delivery")]
pub struct DeliveryArgs {
    /// Digest messages prepared and sent at once (1 to 256) [default: the SMTP pool size].
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "NEWSDESK_SEND_CONCURRENCY",
        hide_env_values = true
    )]
    pub send_concurrency: Option<String>,
    /// Digest messages per second at most, 0 for no limit.
    #[arg(long, global = true, value_name = "PER_SEC", env = SEND_RATE, hide_env_values = true,
        default_value = "0")]
    pub send_rate: String,
    /// Outbox rows a worker claims at a time.
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "NEWSDESK_SEND_BATCH",
        hide_env_values = true,
        default_value = "200"
    )]
    pub send_batch: String,
    /// Seconds claimed rows stay a worker's without renewal (after a crash, they return
    /// then).
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        env = "NEWSDESK_DELIVERY_LEASE_SECS",
        hide_env_values = true,
        default_value = "60"
    )]
    pub delivery_lease_secs: String,
    /// Tries before a temporary failure counts as failed.
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "NEWSDESK_SEND_MAX_ATTEMPTS",
        hide_env_values = true,
        default_value = "8"
    )]
    pub send_max_attempts: String,
    /// First wait after a temporary failure, in seconds; doubled each time.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        env = "NEWSDESK_RETRY_BASE_SECS",
        hide_env_values = true,
        default_value = "60"
    )]
    pub retry_base_secs: String,
    /// Longest wait after a temporary failure, in seconds.
    #[arg(
        long,
        global = true,
        value_name = "SECS",
        env = "NEWSDESK_RETRY_MAX_SECS",
        hide_env_values = true,
        default_value = "3600"
    )]
    pub retry_max_secs: String,
    /// Permanent failures in a row that mark a subscriber bounced.
    #[arg(
        long,
        global = true,
        value_name = "N",
        env = "NEWSDESK_BOUNCE_AFTER",
        hide_env_values = true,
        default_value = "2"
    )]
    pub bounce_after: String,
    /// How often an idle delivery worker looks for due rows, in milliseconds.
    #[arg(
        long,
        global = true,
        value_name = "MS",
        env = "NEWSDESK_POLL_MS",
        hide_env_values = true,
        default_value = "1000"
    )]
    pub poll_ms: String,
}

const SEND_RATE: &str = "NEWSDESK_SEND_RATE";

impl DeliveryArgs {
    /// Checks every value; the concurrency follows the SMTP pool unless given.
    pub fn settings(&self, mail: &MailSettings) -> anyhow::Result<DeliverySettings> {
        let secs = |key: &str, value: &str, min: u32, max: u32| -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(number(key, value, min, max)?.into()))
        };
        let concurrency = match &self.send_concurrency {
            Some(n) => number("NEWSDESK_SEND_CONCURRENCY", n, 1, 256)?,
            None => mail.pool_size.clamp(1, 256),
        };
        let rate_per_second = match self.send_rate.trim().parse::<f64>() {
            Ok(r) if (0.0..=100_000.0).contains(&r) => r,
            _ => bail!(
                "{SEND_RATE} must be messages per second from 0 (no limit) to 100000 (got {:?})",
                self.send_rate
            ),
        };
        Ok(DeliverySettings {
            concurrency: concurrency as usize,
            rate_per_second,
            batch_size: number("NEWSDESK_SEND_BATCH", &self.send_batch, 1, 10_000)?,
            lease: secs(
                "NEWSDESK_DELIVERY_LEASE_SECS",
                &self.delivery_lease_secs,
                1,
                3600,
            )?,
            max_attempts: number(
                "NEWSDESK_SEND_MAX_ATTEMPTS",
                &self.send_max_attempts,
                1,
                100,
            )?,
            retry_base: secs("NEWSDESK_RETRY_BASE_SECS", &self.retry_base_secs, 0, 86_400)?,
            retry_max: secs(
                "NEWSDESK_RETRY_MAX_SECS",
                &self.retry_max_secs,
                0,
                7 * 86_400,
            )?,
            bounce_after: number("NEWSDESK_BOUNCE_AFTER", &self.bounce_after, 1, 100)?,
            poll: Duration::from_millis(
                number("NEWSDESK_POLL_MS", &self.poll_ms, 10, 600_000)?.into(),
            ),
        })
    }
}
