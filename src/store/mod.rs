//! The store: the only module with SQL. One implementation over sqlx's `Any` driver
//! serves SQLite and PostgreSQL; the queries are written in the dialect both share
//! (`$n` parameters, `RETURNING`, `ON CONFLICT`, recursive CTEs), and where the two
//! differ the code asks `Backend`. Migrations are kept per backend.

mod content;
mod digests;
mod history;
mod import;
mod people;
mod tokens;
mod users;

pub use content::{Category, FeedQuery, ItemFilter, ItemPage, Written};
pub use digests::{
    ClaimedDelivery, Created, DeliveryCounts, Digest, DigestStatus, DigestTrigger, DigestWindow,
    FailedDelivery, OutboxConnection, Section, Selection, SentRecord,
};
pub use history::DeliveryRecord;
pub use import::{ImportCounts, ImportRow, ImportSession, ImportTerms};
pub use people::{
    MailingList, Membership, Partner, Subscriber, SubscriberEvent, SubscriberFilter,
    SubscriptionOutcome, TokenGrant, TokenPurpose,
};
pub use users::{Role, SessionRecord, User};

use crate::config::DatabaseUrl;
use anyhow::Context;
use chrono::{DateTime, TimeZone as _, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Executor};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// What can go wrong in a store call, told apart so the HTTP layer can answer well.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// The request clashes with what is stored (a taken slug, a non-empty category).
    #[error("{field}: {message}")]
    Conflict { field: String, message: String },
    /// The request names something that does not exist (an unknown category).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        Self::Other(anyhow::Error::new(e))
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Store {
    /// Connects to the database the URL names; a missing SQLite file is created.
    pub async fn connect(url: &DatabaseUrl, max_connections: u32) -> anyhow::Result<Self> {
        install_default_drivers();
        let backend = if url.is_postgres() {
            Backend::Postgres
        } else {
            Backend::Sqlite
        };
        let mut raw = url.expose().to_owned();
        if backend == Backend::Sqlite && !raw.contains("mode=") && !raw.contains(":memory:") {
            raw.push(if raw.contains('?') { '&' } else { '?' });
            raw.push_str("mode=rwc");
        }
        let options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL lets feeds be read while an item is written; the busy
                        // timeout makes a writer wait for another instead of failing.
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute("PRAGMA synchronous = NORMAL").await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 5000").await?;
                        // A large digest rewrites the same index pages thousands of
                        // times; checkpointing every 10,000 pages (40 MB of WAL)
                        // rather than SQLite's 1,000 copies each page back once per
                        // 40 MB, not once per 4 (a digest to 100,000 readers: 12%
                        // faster). The WAL file stays at most about that size.
                        conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(&raw)
            .await
            .with_context(|| format!("connecting to the database at {url}"))?;
        Ok(Self { pool, backend })
    }

    /// Runs the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&self.pool)
            .await
            .context("running database migrations")?;
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> anyhow::Result<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .context("pinging the database")?;
        Ok(())
    }

    /// A transaction that will write. On SQLite it takes the write lock at the start
    /// (`BEGIN IMMEDIATE`): a deferred one that reads first and writes later fails at
    /// once with "database is locked" when another writer came in between, whatever
    /// the busy timeout; taking the lock first makes it wait its turn instead.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

pub(crate) fn to_ts(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

pub(crate) fn from_ts(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

/// `$start, $start+1, ...` for `count` values, for `IN (...)` lists.
pub(crate) fn placeholders(start: usize, count: usize) -> String {
    (start..start + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Placeholders for `count` values bound in order, numbered from `start` on
/// PostgreSQL. SQLite gets anonymous `?`: it looks numbered parameters up by a linear
/// scan, which makes a statement with thousands of them quadratic.
pub(crate) fn positional(backend: Backend, start: usize, count: usize) -> String {
    match backend {
        Backend::Postgres => placeholders(start, count),
        Backend::Sqlite => vec!["?"; count].join(", "),
    }
}

/// A case-insensitive `LIKE` pattern, for `ESCAPE '\'`, that matches `text` anywhere,
/// with `%`, `_` and backslashes in `text` matched as themselves.
pub(crate) fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::UniqueViolation)
}
