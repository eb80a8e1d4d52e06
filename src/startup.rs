//! Building the application from settings, and running it until told to stop.

use crate::app::App;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::http::auth::hash_token;
use crate::http::{AppState, router};
use crate::store::Store;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    port: u16,
}

impl Application {
    /// Connects to the database, runs migrations, stores the bootstrap token and binds
    /// the listener (port 0 picks a free port).
    pub async fn build(mut settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let store =
            Store::connect(&settings.database_url, settings.database_max_connections).await?;
        store.migrate().await?;
        if let Some(token) = &settings.admin_token {
            store
                .users()
                .ensure_api_token(
                    "bootstrap (NEWSDESK_ADMIN_TOKEN)",
                    &hash_token(token.expose()),
                    clock.now(),
                )
                .await
                .context("storing the bootstrap admin token")?;
        }
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        if settings.base_url_from_bind {
            settings.base_url = format!("http://{}", listener.local_addr()?);
        }
        let state = AppState::new(App::new(store, settings, clock)?);
        Ok(Self {
            listener,
            state,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes the requests under way.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes.
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let watcher = tokio::spawn(watch_content_version(self.state.clone()));
        let (stop_workers, workers_stop) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        if self.state.settings.run_workers {
            let outbox = Arc::new(crate::delivery::Outbox::new(
                self.state.app().clone(),
                self.state.settings.delivery.clone(),
            ));
            workers.push(tokio::spawn(
                outbox.run(self.state.outbox_wake.clone(), workers_stop.clone()),
            ));
            let scheduler =
                crate::delivery::DigestScheduler::start(self.state.app().clone()).await?;
            workers.push(tokio::spawn(
                scheduler.run(self.state.lists_changed.clone(), workers_stop.clone()),
            ));
            // Unfinished digest builds resumed, old deliveries pruned.
            workers.push(tokio::spawn(crate::services::retention::run(
                self.state.app().clone(),
                workers_stop.clone(),
            )));
        }
        let app = router(self.state.clone());
        tracing::info!(
            address = %self.listener.local_addr()?,
            base_url = %self.state.settings.base_url,
            database = %self.state.settings.database_url,
            "newsdesk is serving"
        );
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await;
        watcher.abort();
        // The worker finishes the message in hand and gives back the rest.
        let _ = stop_workers.send(true);
        for w in workers {
            let _ = w.await;
        }
        self.state.store.close().await;
        served.context("serving HTTP")
    }
}

/// Another instance sharing the database may write; its writes reach this instance's
/// feed cache within a second through the content version.
async fn watch_content_version(state: AppState) {
    let mut seen = state.store.content().version().await.ok();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        match state.store.content().version().await {
            Ok(version) if Some(version) != seen => {
                if seen.is_some() {
                    state.cache.clear();
                }
                seen = Some(version);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(
                error = format!("{e:#}"),
                "could not read the content version"
            ),
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("stopping");
}
