//! What a write changed, told to whoever keeps something derived from it (the HTTP
//! layer's feed and page caches, the digest scheduler), in this process and in every
//! other instance sharing the database.
//!
//! The store announces every write that changes what readers or the scheduler see:
//!
//! - inside the writing transaction, on PostgreSQL, with `pg_notify` on [`CHANNEL`]:
//!   PostgreSQL delivers it when (and only if) the transaction commits, to every
//!   session listening, in commit order (`crate::bridge` listens and passes it on);
//! - right after the commit, to this process's listeners ([`ContentEvents::publish`]),
//!   synchronously, before the writer gets its answer.
//!
//! Content writes also carry the site's content version (`site_state.content_version`,
//! moved on by every content write), so an instance can tell that it missed one (a
//! lost listener connection, another process on one SQLite file) and drop everything.

use super::{Backend, Store, StoreResult};
use serde::{Deserialize, Serialize};
use sqlx::{Any, Transaction};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, RwLock};

/// The PostgreSQL notification channel of every announcement.
pub const CHANNEL: &str = "newsdesk_changes";

/// PostgreSQL refuses payloads of 8000 bytes and more; a longer announcement says
/// "everything" instead.
const MAX_PAYLOAD: usize = 7900;

/// What a write changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentChange {
    /// Items of the categories with these slugs (ancestors included) changed.
    Categories(Vec<String>),
    /// The category tree changed: everything may read differently.
    Everything,
    /// The mailing list with this id was created, changed (its schedule, name, slug,
    /// categories) or deleted.
    List(i64),
    /// The published digests of the list with this id changed (one was built or
    /// cancelled): its archive pages.
    Digests(i64),
}

/// One announcement as it travels through PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// The process that wrote (its listeners heard of the write already).
    pub origin: String,
    /// The content version the write committed (content writes only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i64>,
    pub change: ContentChange,
}

impl Notice {
    /// The payload for `pg_notify`: JSON, under PostgreSQL's size limit.
    pub fn payload(&self) -> String {
        let json = serde_json::to_string(self).unwrap_or_default();
        if json.len() <= MAX_PAYLOAD {
            return json;
        }
        serde_json::to_string(&Notice {
            change: ContentChange::Everything,
            ..self.clone()
        })
        .unwrap_or_default()
    }

    pub fn parse(payload: &str) -> Option<Self> {
        serde_json::from_str(payload).ok()
    }
}

type Listener = Arc<dyn Fn(&ContentChange) + Send + Sync>;

/// Listeners told, synchronously and before the write's answer goes out, what changed:
/// a reader who asks right after a write gets the new feed. One per process, shared by
/// every clone of the store.
pub struct ContentEvents {
    listeners: RwLock<Vec<Listener>>,
    origin: String,
    versions: Mutex<Versions>,
}

impl Default for ContentEvents {
    fn default() -> Self {
        Self {
            listeners: RwLock::default(),
            origin: uuid::Uuid::new_v4().simple().to_string(),
            versions: Mutex::default(),
        }
    }
}

impl ContentEvents {
    pub fn subscribe(&self, listener: impl Fn(&ContentChange) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
    }

    /// Tells this process's listeners (only: other instances hear of a write through
    /// the database).
    pub fn publish(&self, change: ContentChange) {
        let listeners = self
            .listeners
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for listener in listeners {
            listener(&change);
        }
    }

    /// This process's name in notifications.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// This process knows what the content write that committed `version` changed.
    pub fn saw_version(&self, version: i64) {
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .saw(version);
    }

    /// The highest content version up to which this process knows every write.
    pub fn known_version(&self) -> i64 {
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .watermark
    }

    /// Counts every write up to `version` as known (after dropping everything).
    pub fn skip_to(&self, version: i64) {
        let mut v = self.versions.lock().unwrap_or_else(|e| e.into_inner());
        v.watermark = v.watermark.max(version);
        let watermark = v.watermark;
        v.ahead.retain(|x| *x > watermark);
        v.advance();
    }
}

/// Content versions this process heard of: every one up to `watermark`, and those in
/// `ahead` (heard of out of order, with a gap before them).
#[derive(Debug, Default)]
struct Versions {
    watermark: i64,
    ahead: BTreeSet<i64>,
}

impl Versions {
    fn saw(&mut self, version: i64) {
        if version > self.watermark {
            self.ahead.insert(version);
            self.advance();
        }
    }

    fn advance(&mut self) {
        while self.ahead.remove(&(self.watermark + 1)) {
            self.watermark += 1;
        }
    }
}

impl Store {
    /// The listeners of this process, shared by every clone of the store.
    pub fn events(&self) -> &Arc<ContentEvents> {
        &self.events
    }

    /// Inside a writing transaction: on PostgreSQL, a notification that goes out with
    /// the commit (and never without it). Nothing on SQLite (one process).
    pub(crate) async fn notify_in(
        &self,
        tx: &mut Transaction<'static, Any>,
        change: &ContentChange,
        version: Option<i64>,
    ) -> StoreResult<()> {
        if self.backend != Backend::Postgres {
            return Ok(());
        }
        let notice = Notice {
            origin: self.events.origin().to_owned(),
            version,
            change: change.clone(),
        };
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(notice.payload())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// After the commit: this process's listeners, and the version as known.
    pub(crate) fn announce_local(&self, change: ContentChange, version: Option<i64>) {
        self.events.publish(change);
        if let Some(v) = version {
            self.events.saw_version(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_advance_only_without_gaps() {
        let mut v = Versions::default();
        v.saw(1);
        v.saw(3);
        assert_eq!(v.watermark, 1);
        v.saw(2);
        assert_eq!(v.watermark, 3);
        v.saw(2);
        assert_eq!(v.watermark, 3);
    }

    #[test]
    fn a_notice_round_trips_and_a_long_one_says_everything() {
        let n = Notice {
            origin: "a".into(),
            version: Some(7),
            change: ContentChange::Categories(vec!["news".into()]),
        };
        assert_eq!(Notice::parse(&n.payload()), Some(n));
        let long = Notice {
            origin: "a".into(),
            version: Some(8),
            change: ContentChange::Categories(vec!["x".repeat(100); 100]),
        };
        let parsed = Notice::parse(&long.payload()).unwrap();
        assert_eq!(parsed.change, ContentChange::Everything);
        assert_eq!(parsed.version, Some(8));
        let list = Notice {
            origin: "b".into(),
            version: None,
            change: ContentChange::List(3),
        };
        assert_eq!(list.payload(), r#"{"origin":"b","change":{"list":3}}"#);
    }

    #[test]
    fn skipping_forgets_what_was_heard_below() {
        let events = ContentEvents::default();
        events.saw_version(5);
        assert_eq!(events.known_version(), 0);
        events.skip_to(4);
        assert_eq!(events.known_version(), 5);
    }
}
