//! Where SQLite and PostgreSQL differ, named once. A query that needs one of these
//! pieces asks its store's [`Backend`] for it; no SQL is edited after it is written.

use super::{Backend, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS, placeholders};
use sqlx::migrate::Migrator;

impl Backend {
    /// The migrations of this backend (migrations/sqlite, migrations/postgres).
    pub(crate) fn migrator(self) -> &'static Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// What begins a transaction that will write. On SQLite it takes the write lock at
    /// the start (`BEGIN IMMEDIATE`): a deferred one that reads first and writes later
    /// fails at once with "database is locked" when another writer came in between,
    /// whatever the busy timeout; taking the lock first makes it wait its turn instead.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Placeholders for `count` values bound in order, numbered from `start` on
    /// PostgreSQL. SQLite gets anonymous `?`: it looks numbered parameters up by a linear
    /// scan, which makes a statement with thousands of them quadratic.
    pub(crate) fn positional(self, start: usize, count: usize) -> String {
        match self {
            Backend::Postgres => placeholders(start, count),
            Backend::Sqlite => vec!["?"; count].join(", "),
        }
    }

    /// A subquery yielding the integers of the JSON array bound as parameter `$param`,
    /// for `IN (...)`: one parameter and one statement text for any number of ids.
    pub(crate) fn json_ids(self, param: usize) -> String {
        match self {
            Backend::Sqlite => format!("SELECT value FROM json_each(${param})"),
            Backend::Postgres => {
                format!("SELECT jsonb_array_elements_text(CAST(${param} AS TEXT)::jsonb)::bigint")
            }
        }
    }

    /// A `FROM` item with one row `v` per element of the JSON array bound as `$param`;
    /// `v.value ->> n` is the element's n-th field (see [`Backend::json_int`]).
    pub(crate) fn json_rows(self, param: usize) -> String {
        match self {
            Backend::Sqlite => format!("json_each(${param}) AS v"),
            Backend::Postgres => {
                format!("jsonb_array_elements(CAST(${param} AS TEXT)::jsonb) AS v(value)")
            }
        }
    }

    /// The cast that makes a `->>` field an integer (SQLite's already is one).
    pub(crate) fn json_int(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "::bigint",
        }
    }

    /// The aggregate that collects values into one JSON array.
    pub(crate) fn json_agg(self) -> &'static str {
        match self {
            Backend::Sqlite => "json_group_array",
            Backend::Postgres => "json_agg",
        }
    }

    /// The function that makes a JSON array of its arguments.
    pub(crate) fn json_array(self) -> &'static str {
        match self {
            Backend::Sqlite => "json_array",
            Backend::Postgres => "json_build_array",
        }
    }

    /// Locks the rows a claim selects, passing over those another transaction holds,
    /// so that instances sharing PostgreSQL take different rows at once. SQLite has one
    /// writer at a time, which the write transaction already is.
    pub(crate) fn skip_locked(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        }
    }

    /// Appended to a `SELECT` inside a write transaction that must hold the rows it
    /// read until it commits (nothing on SQLite, where the transaction holds the lock).
    pub(crate) fn for_update(self) -> &'static str {
        match self {
            Backend::Sqlite => "",
            Backend::Postgres => " FOR UPDATE",
        }
    }

    /// Whether rows can be locked one by one (`SELECT ... FOR UPDATE`); SQLite locks
    /// the whole database for a write transaction instead.
    pub(crate) fn locks_rows(self) -> bool {
        self == Backend::Postgres
    }

    /// Whether several statements may be sent as one request. SQLite runs a short
    /// transaction in one request to the connection's thread instead of one per
    /// statement; each request costs both threads a sleep and a wake-up.
    pub(crate) fn runs_batches(self) -> bool {
        self == Backend::Sqlite
    }

    /// The database's clock in whole seconds since 1970 (rounded down), as the
    /// timestamps of the tables are stored: what leases are written and compared with,
    /// so that an instance whose own clock is off neither takes rows another still
    /// holds nor thinks its own lease holds when it does not.
    pub(crate) fn db_now_secs(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST(strftime('%s', 'now') AS INTEGER)",
            Backend::Postgres => "CAST(FLOOR(EXTRACT(EPOCH FROM now())) AS BIGINT)",
        }
    }

    /// The database's clock in microseconds since 1970.
    pub(crate) fn db_now_us(self) -> &'static str {
        match self {
            Backend::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
            Backend::Postgres => "CAST(FLOOR(EXTRACT(EPOCH FROM now()) * 1000000) AS BIGINT)",
        }
    }

    /// The larger of two values (SQLite's scalar `max`, PostgreSQL's `GREATEST`).
    pub(crate) fn greatest(self) -> &'static str {
        match self {
            Backend::Sqlite => "max",
            Backend::Postgres => "GREATEST",
        }
    }
}
