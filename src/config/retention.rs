//! How long per-recipient delivery rows are kept.

use anyhow::{Context, bail};

/// The retention flags and variables as given; [`RetentionArgs::days`] checks them.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Digest retention")]
pub struct RetentionArgs {
    /// Days the per-recipient rows of a finished digest (its deliveries and what each
    /// reader was sent) are kept; then they are pruned and only the digest's totals
    /// stay. The links in a message (unsubscribe, preferences) work this long. 0 keeps
    /// them for ever; else at least 30.
    #[arg(
        long,
        global = true,
        value_name = "DAYS",
        env = RETENTION_DAYS,
        hide_env_values = true,
        default_value = "90"
    )]
    pub delivery_retention_days: String,
}

const RETENTION_DAYS: &str = "NEWSDESK_DELIVERY_RETENTION_DAYS";

impl RetentionArgs {
    /// The retention in days; `None`: kept for ever.
    pub fn days(&self) -> anyhow::Result<Option<u32>> {
        let value = self.delivery_retention_days.trim();
        let n: u32 = value.parse().with_context(|| {
            format!("{RETENTION_DAYS} must be a whole number of days (got {value:?})")
        })?;
        match n {
            0 => Ok(None),
            // An unsubscribe link must keep working for 30 days after the message.
            1..30 => bail!("{RETENTION_DAYS} must be 0 (keep for ever) or at least 30 (got {n})"),
            36_501.. => bail!("{RETENTION_DAYS} must be at most 36500 (got {n})"),
            n => Ok(Some(n)),
        }
    }
}
