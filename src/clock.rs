//! Where "now" comes from. The service uses the system clock; tests pin it.
//!
//! Times that instances compare (leases, when a delivery is due, shared limits) are read
//! from the database's clock, never from this one (see `Backend::db_now_secs`). A test
//! clock that must move those too (a reader's local 08:00 in 2023, say) hands the store
//! a [`DatabaseShift`]: the store then reads the database's clock plus that many
//! seconds, so the database and the application agree on the test's "now" while every
//! comparison still happens in the database. The system clock has none: production SQL
//! reads the database's clock exactly as written.

use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

/// Where "now" comes from.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;

    /// For test clocks that move the database's clock along with their own: the
    /// seconds the store adds to the database's clock. `None` (the system clock, and
    /// test clocks that leave the database alone) reads it unchanged.
    fn database_shift(&self) -> Option<DatabaseShift> {
        None
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Whole seconds a test clock moves the database's clock by (shared with the store).
#[derive(Debug, Clone, Default)]
pub struct DatabaseShift(Arc<AtomicI64>);

impl DatabaseShift {
    pub fn secs(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Shifts the database's clock so that it shows `at` now (to the second).
    fn show(&self, at: DateTime<Utc>) {
        self.0
            .store(at.timestamp() - Utc::now().timestamp(), Ordering::SeqCst);
    }
}

/// A clock that only moves when told to. Made [`ManualClock::with_database`], it moves
/// the database's clock too: set to `at`, the database reads `at` and then runs on
/// from there in real time.
#[derive(Debug, Clone)]
pub struct ManualClock {
    at: Arc<Mutex<DateTime<Utc>>>,
    database: Option<DatabaseShift>,
}

impl ManualClock {
    /// A clock for the application alone; the database keeps its own time.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            at: Arc::new(Mutex::new(at)),
            database: None,
        }
    }

    /// A clock the database's clock follows (for tests of what falls due in the
    /// database: leases, a reader's local send time).
    pub fn with_database(at: DateTime<Utc>) -> Self {
        let shift = DatabaseShift::default();
        shift.show(at);
        Self {
            at: Arc::new(Mutex::new(at)),
            database: Some(shift),
        }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        *self.at.lock().unwrap_or_else(|e| e.into_inner()) = at;
        if let Some(shift) = &self.database {
            shift.show(at);
        }
    }

    pub fn advance(&self, by: chrono::Duration) {
        let now = self.now() + by;
        self.set(now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.at.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn database_shift(&self) -> Option<DatabaseShift> {
        self.database.clone()
    }
}

/// Real time moved by whole seconds, for runs that step through days in minutes
/// (`bench/localtime.sh`): it runs like the system clock between jumps, and the
/// database's clock jumps with it.
#[derive(Debug, Clone, Default)]
pub struct ShiftedClock {
    shift: DatabaseShift,
}

impl ShiftedClock {
    /// A clock that shows `at` now and runs on from there.
    pub fn starting_at(at: DateTime<Utc>) -> Self {
        let clock = Self::default();
        clock.shift.show(at);
        clock
    }

    /// Jumps to `at` (forward or back) and runs on from there.
    pub fn jump_to(&self, at: DateTime<Utc>) {
        self.shift.show(at);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(self.shift.secs())
    }

    fn database_shift(&self) -> Option<DatabaseShift> {
        Some(self.shift.clone())
    }
}

pub type SharedClock = Arc<dyn Clock>;

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_manual_clock_moves_the_database_only_when_made_to() {
        let at = Utc.with_ymd_and_hms(2023, 11, 6, 3, 0, 0).unwrap();
        assert!(ManualClock::new(at).database_shift().is_none());
        let clock = ManualClock::with_database(at);
        let shift = clock.database_shift().unwrap();
        let shown = Utc::now().timestamp() + shift.secs();
        assert!((shown - at.timestamp()).abs() <= 1, "{shown}");
        clock.advance(chrono::Duration::hours(2));
        let shown = Utc::now().timestamp() + shift.secs();
        assert!((shown - at.timestamp() - 7200).abs() <= 1, "{shown}");
        assert_eq!(clock.now(), at + chrono::Duration::hours(2));
    }

    #[test]
    fn a_shifted_clock_runs_from_where_it_jumped() {
        let at = Utc.with_ymd_and_hms(2023, 11, 5, 18, 0, 0).unwrap();
        let clock = ShiftedClock::starting_at(at);
        assert!((clock.now() - at).num_seconds().abs() <= 1);
        clock.jump_to(at + chrono::Duration::days(1));
        assert!(
            (clock.now() - at - chrono::Duration::days(1))
                .num_seconds()
                .abs()
                <= 1
        );
    }
}
