//! The application core: what the HTTP layer, the delivery workers and the command line
//! all work with. Nothing here knows about HTTP; `http/` reaches this through axum's
//! `FromRef` and keeps its own state (the feed cache) beside it.

use crate::clock::SharedClock;
use crate::config::Settings;
use crate::domain::IdAuthority;
use crate::mail::Mailer;
use crate::store::Store;
pub use crate::store::{ContentChange, ContentEvents};
use crate::templates::LiveTemplates;
use std::sync::Arc;
use tokio::sync::Notify;

/// The application core. Cloned for every request and worker, so it is one `Arc`.
#[derive(Clone)]
pub struct App(Arc<Core>);

/// The parts of the core.
pub struct Core {
    pub store: Store,
    pub mailer: Mailer,
    /// The templates in use: the built-ins with the overrides of
    /// `NEWSDESK_TEMPLATES_DIR` (followed while `serve` runs).
    pub templates: Arc<LiveTemplates>,
    pub clock: SharedClock,
    pub settings: Arc<Settings>,
    /// The authority of every `tag:` id, fixed in the database when it was created:
    /// ids do not follow `settings.base_url`.
    pub ids: IdAuthority,
    /// Wakes the delivery worker when a digest was built.
    pub outbox_wake: Arc<Notify>,
    /// Tells the scheduler to read every list again (a change to one list comes as a
    /// [`ContentChange::List`]; this is for when changes may have been missed).
    pub lists_changed: Arc<Notify>,
    /// Who wants to know what a write changed (the HTTP layer's caches, the scheduler):
    /// the store's, told of this process's writes by the store and of other instances'
    /// by `crate::bridge`.
    pub content_events: Arc<ContentEvents>,
    /// The digest jobs this process's scheduler has planned.
    pub planned: Arc<crate::delivery::schedule::Planned>,
    /// What the process counts for `/metrics`.
    pub metrics: Arc<crate::metrics::Metrics>,
}

impl std::ops::Deref for App {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.0
    }
}

impl App {
    /// The core over a connected (and migrated) store, with the mail transport and
    /// templates the settings name. The first start on a database fixes its id
    /// authority from the base URL; later starts read it back.
    pub async fn new(store: Store, settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let ids = fix_id_authority(&store, &settings, &clock).await?;
        let templates = LiveTemplates::start(settings.templates_dir.as_deref())?;
        // A site language without built-in words has them from the overrides (the
        // settings checked the file is there; here, that it was taken).
        let words = templates.current();
        if let Some(l) = settings
            .languages
            .all()
            .iter()
            .find(|l| !words.page_words().has(l.as_str()))
        {
            anyhow::bail!(
                "NEWSDESK_LANGUAGES {:?} has no page labels in use (web/labels.{}.json)",
                l.as_str(),
                crate::domain::primary_language(l.as_str())
            );
        }
        drop(words);
        let mailer = Mailer::new(&settings.mail)?;
        tracing::info!(mail = mailer.describe(), "mail transport");
        let content_events = store.events().clone();
        Ok(Self(Arc::new(Core {
            store,
            mailer,
            templates: Arc::new(templates),
            clock,
            settings: Arc::new(settings),
            ids,
            outbox_wake: Arc::new(Notify::new()),
            lists_changed: Arc::new(Notify::new()),
            content_events,
            planned: Default::default(),
            metrics: Arc::new(crate::metrics::Metrics::new()),
        })))
    }
}

/// The database's id authority; a database without one gets the host of the base URL
/// these settings name.
pub async fn fix_id_authority(
    store: &Store,
    settings: &Settings,
    clock: &SharedClock,
) -> anyhow::Result<IdAuthority> {
    let candidate = IdAuthority::from_base_url(&settings.base_url);
    let ids = store
        .site()
        .fix_id_authority(&candidate, clock.now())
        .await
        .map_err(anyhow::Error::from)?;
    if ids != candidate {
        tracing::info!(
            id_authority = %ids,
            base_url = %settings.base_url,
            "entry ids keep the authority fixed when the database was created"
        );
    }
    Ok(ids)
}
