//! The store: the only module with SQL. One implementation over sqlx's `Any` driver
//! serves SQLite and PostgreSQL; the queries are written in the dialect both share
//! (`$n` parameters, `RETURNING`, `ON CONFLICT`, recursive CTEs), and where the two
//! differ the query asks its [`Backend`] for the piece that differs (`dialect.rs`:
//! `begin_write`, `skip_locked`, `json_ids`, ...). Migrations are kept per backend.
//!
//! [`Store`] holds the pool; its queries are cut by aggregate, each a small type that
//! borrows the store and is reached through it (`store.people().subscriber(id)`):
//!
//! - [`Content`] (`store.content()`): categories, items and the feed queries
//!   (`content.rs` reads, `items.rs` writes items).
//! - [`People`] (`store.people()`): partner institutions, subscribers and their history.
//! - [`Lists`] (`store.lists()`): mailing lists, memberships, the public subscription
//!   request and the preference page.
//! - [`Tokens`] (`store.tokens()`): subscriber tokens (confirm, unsubscribe,
//!   preferences) and the workflows that consume them.
//! - [`Digests`] (`store.digests()`): digests, the selection of their items, delivery
//!   counts and each subscriber's delivery history.
//! - [`Outbox`] (`store.outbox()`): claims, leases and marks of deliveries, what each
//!   reader was sent already; [`OutboxConnection`] is a worker's own connection for them.
//! - [`Users`] (`store.users()`): admin users, their sessions, API tokens.
//! - [`Import`] (`store.import()`): bulk subscriber imports in one transaction.
//! - [`Site`] (`store.site()`): settings kept in the database (the `tag:` id authority).
//! - [`Limits`] (`store.limits()`): limits shared by every instance (request budgets,
//!   sign-in locks of user names, once-per-database jobs), on the database's clock.
//! - [`Spools`] (`store.spools()`): admin import uploads between upload and apply.
//!
//! The entities these return (`Subscriber`, `MailingList`, `Digest`, `User`, ...) live
//! in `crate::domain`; only query and row types (`FeedQuery`, `ClaimedDelivery`,
//! `ImportSession`, ...) are defined here.

mod changes;
mod content;
mod dialect;
mod digest_build;
mod digests;
mod import;
mod items;
mod limits;
mod lists;
mod names;
mod outbox;
mod people;
mod site;
mod spools;
mod stats;
mod tokens;
mod users;

pub use changes::{CHANNEL, ContentChange, ContentEvents, Notice};
pub use content::{Content, FeedQuery, ItemFilter, ItemPage, Written};
pub use digest_build::{Exclusive, HELD_UNTIL, WaitingSend};
pub use digests::{Created, Digests};
pub use import::{Import, ImportCounts, ImportRow, ImportSession, ImportTerms};
pub use items::ItemHtml;
pub use limits::{Budget, Limits, NameLock};
pub use lists::Lists;
pub use outbox::{ClaimedDelivery, Outbox, OutboxConnection, SentRecord};
pub use people::{People, SubscriberFilter};
pub use site::Site;
pub use spools::{Spool, Spools};
pub use stats::{DeliveryStats, Stats};
pub use tokens::Tokens;
pub use users::{SessionRecord, Users};

use crate::clock::DatabaseShift;
use crate::config::DatabaseUrl;
use anyhow::Context;
use chrono::{DateTime, TimeZone as _, Utc};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::{AnyPool, Connection as _, Executor};
use std::borrow::Cow;
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
    /// Who hears of this process's writes (see `changes.rs`).
    events: std::sync::Arc<ContentEvents>,
    /// A test clock's move of the database's clock (see `crate::clock`); `None` reads
    /// the database's clock as it is.
    shift: Option<DatabaseShift>,
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
        if backend == Backend::Postgres {
            check_postgres(url).await?;
        }
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
                        // 40 MB, not once per 4. The WAL file stays at most about that
                        // size.
                        conn.execute("PRAGMA wal_autocheckpoint = 10000").await?;
                    }
                    Ok(())
                })
            });
        let pool = options
            .connect(&raw)
            .await
            .with_context(|| format!("connecting to the database at {url}"))?;
        Ok(Self {
            pool,
            backend,
            events: Default::default(),
            shift: None,
        })
    }

    /// The store with the database's clock moved as a test clock says (see
    /// `crate::clock`): every time it reads from the database's clock, it reads that
    /// plus the shift. `None` leaves the clock and the SQL as they are.
    pub fn with_database_shift(mut self, shift: Option<DatabaseShift>) -> Self {
        self.shift = shift;
        self
    }

    /// The database's clock in whole seconds (see [`Backend::db_now_secs`]), moved by a
    /// test clock's shift when there is one.
    pub(crate) fn db_now_secs(&self) -> Cow<'static, str> {
        match &self.shift {
            None => Cow::Borrowed(self.backend.db_now_secs()),
            Some(shift) => Cow::Owned(format!(
                "({} + ({}))",
                self.backend.db_now_secs(),
                shift.secs()
            )),
        }
    }

    /// The database's clock in microseconds, moved like [`Store::db_now_secs`].
    pub(crate) fn db_now_us(&self) -> Cow<'static, str> {
        match &self.shift {
            None => Cow::Borrowed(self.backend.db_now_us()),
            Some(shift) => Cow::Owned(format!(
                "({} + ({}))",
                self.backend.db_now_us(),
                shift.secs() * 1_000_000
            )),
        }
    }

    /// Runs the migrations of this backend that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.backend
            .migrator()
            .run(&self.pool)
            .await
            .context("running database migrations")?;
        Ok(())
    }

    /// A consistent copy of a SQLite database in a new file, taken while the service
    /// reads and writes (`VACUUM INTO` reads in one transaction: the copy is one
    /// moment's state, compacted). PostgreSQL has `pg_dump` for this.
    pub async fn backup_into(&self, file: &std::path::Path) -> anyhow::Result<()> {
        if self.backend != Backend::Sqlite {
            anyhow::bail!("backup copies SQLite databases; use pg_dump for PostgreSQL");
        }
        let target = file
            .to_str()
            .context("the backup file's name is not valid UTF-8")?;
        sqlx::query("VACUUM INTO $1")
            .bind(target)
            .execute(&self.pool)
            .await
            .with_context(|| format!("writing the backup to {}", file.display()))?;
        Ok(())
    }

    /// Opens a SQLite file read-only and answers SQLite's `PRAGMA integrity_check`
    /// (`"ok"` when the file is sound) and how many items it holds.
    pub async fn check_sqlite_file(file: &std::path::Path) -> anyhow::Result<(String, i64)> {
        use sqlx::sqlite::SqliteConnectOptions;
        let options = SqliteConnectOptions::new().filename(file).read_only(true);
        let mut conn = sqlx::SqliteConnection::connect_with(&options)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let rows: Vec<String> = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_all(&mut conn)
            .await
            .context("PRAGMA integrity_check")?;
        let items: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM items")
            .fetch_one(&mut conn)
            .await
            .context("counting the items")?;
        conn.close().await?;
        Ok((rows.join("; "), items))
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

    /// A transaction that will write, begun as [`Backend::begin_write`] says.
    pub(crate) async fn write_tx(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Any>, sqlx::Error> {
        self.pool.begin_with(self.backend.begin_write()).await
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub fn content(&self) -> Content<'_> {
        Content { store: self }
    }

    pub fn people(&self) -> People<'_> {
        People { store: self }
    }

    pub fn lists(&self) -> Lists<'_> {
        Lists { store: self }
    }

    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { store: self }
    }

    pub fn digests(&self) -> Digests<'_> {
        Digests { store: self }
    }

    pub fn site(&self) -> Site<'_> {
        Site { store: self }
    }

    pub fn outbox(&self) -> Outbox<'_> {
        Outbox { store: self }
    }

    pub fn users(&self) -> Users<'_> {
        Users { store: self }
    }

    pub fn import(&self) -> Import<'_> {
        Import { store: self }
    }

    pub fn stats(&self) -> Stats<'_> {
        Stats { store: self }
    }

    pub fn limits(&self) -> Limits<'_> {
        Limits { store: self }
    }

    pub fn spools(&self) -> Spools<'_> {
        Spools { store: self }
    }
}

/// One direct connection before the pool: the pool retries a refused connection until
/// its acquire timeout and then says only `pool timed out`; this says why at once.
async fn check_postgres(url: &DatabaseUrl) -> anyhow::Result<()> {
    use sqlx::Connection as _;
    let attempt = tokio::time::timeout(
        Duration::from_secs(10),
        sqlx::AnyConnection::connect(url.expose()),
    )
    .await;
    let why = match attempt {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            return Ok(());
        }
        Ok(Err(e)) => connect_error(&e),
        Err(_) => "no answer within 10 s".to_owned(),
    };
    // The driver's own words could quote the URL; its password never goes out.
    let why = match url::Url::parse(url.expose()) {
        Ok(u) => match u.password().filter(|p| !p.is_empty()) {
            Some(password) => why.replace(password, "***"),
            None => why,
        },
        Err(_) => why,
    };
    anyhow::bail!("cannot connect to PostgreSQL at {url}: {why}")
}

/// A failed connection in words an operator can act on.
fn connect_error(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            "connection refused (is PostgreSQL running and listening on that host and port?)"
                .to_owned()
        }
        sqlx::Error::Database(db) => match db.code().as_deref() {
            // invalid_password, invalid_authorization_specification
            Some("28P01") | Some("28000") => {
                format!("authentication failed: {}", db.message())
            }
            // invalid_catalog_name
            Some("3D000") => format!(
                "no such database: {} (create it, e.g. `createdb NAME`)",
                db.message()
            ),
            _ => db.message().to_owned(),
        },
        other => other.to_string(),
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
