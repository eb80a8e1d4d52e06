//! The application core: what the HTTP layer, the delivery workers and the command line
//! all work with. Nothing here knows about HTTP; `http/` reaches this through axum's
//! `FromRef` and keeps its own state (the feed cache) beside it.

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::mail::Mailer;
use crate::store::Store;
use crate::templates::Templates;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// The application core. Cloned for every request and worker, so it is one `Arc`.
#[derive(Clone)]
pub struct App(Arc<Core>);

/// The parts of the core.
pub struct Core {
    pub store: Store,
    pub mailer: Mailer,
    pub templates: Arc<Templates>,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
    /// Wakes the delivery worker when a digest was built.
    pub outbox_wake: Arc<Notify>,
    /// Tells the scheduler that lists changed.
    pub lists_changed: Arc<Notify>,
    /// Who wants to know when published content changed (the HTTP layer's caches).
    pub content_events: ContentEvents,
}

impl std::ops::Deref for App {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.0
    }
}

impl App {
    /// The core over a connected store, with the mail transport and templates the
    /// settings name.
    pub fn new(store: Store, settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let mailer = Mailer::new(&settings.mail)?;
        tracing::info!(mail = mailer.describe(), "mail transport");
        Ok(Self(Arc::new(Core {
            store,
            mailer,
            templates: Arc::new(Templates::load()?),
            clock,
            settings: Arc::new(settings),
            outbox_wake: Arc::new(Notify::new()),
            lists_changed: Arc::new(Notify::new()),
            content_events: ContentEvents::default(),
        })))
    }
}

/// What a write changed in the published content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentChange {
    /// Items of the categories with these slugs (ancestors included) changed.
    Categories(Vec<String>),
    /// The category tree changed: everything may read differently.
    Everything,
}

type Listener = Arc<dyn Fn(&ContentChange) + Send + Sync>;

/// Listeners told, synchronously and before the write's answer goes out, that content
/// changed: a reader who asks right after a write gets the new feed.
#[derive(Default)]
pub struct ContentEvents {
    listeners: RwLock<Vec<Listener>>,
}

impl ContentEvents {
    pub fn subscribe(&self, listener: impl Fn(&ContentChange) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(listener));
    }

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
}
