//! Building the application from settings, and running it until told to stop.

use crate::app::App;
use crate::clock::SharedClock;
use crate::config::Settings;
use crate::http::auth::hash_token;
use crate::http::{AppState, router};
use crate::store::Store;
use anyhow::Context;
use std::sync::Arc;
use tokio::net::TcpListener;

pub struct Application {
    listener: TcpListener,
    /// `/metrics` on an address of its own (`NEWSDESK_METRICS_BIND`).
    metrics_listener: Option<TcpListener>,
    state: AppState,
    port: u16,
}

impl Application {
    /// Connects to the database, runs migrations, stores the bootstrap token and binds
    /// the listener (port 0 picks a free port).
    pub async fn build(mut settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        // A test clock may move the database's clock with its own (see `crate::clock`).
        let store = Store::connect(&settings.database_url, settings.database_max_connections)
            .await?
            .with_database_shift(clock.database_shift());
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
        let metrics_listener = match settings.observe.metrics_bind {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr} (NEWSDESK_METRICS_BIND)"))?,
            ),
            None => None,
        };
        if settings.base_url_from_bind {
            settings.base_url = format!("http://{}", listener.local_addr()?);
        }
        let state = AppState::new(App::new(store, settings, clock).await?);
        Ok(Self {
            listener,
            metrics_listener,
            state,
            port,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics`' own listener, when it has one.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .map(|a| a.port())
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
        let bridge = tokio::spawn(crate::bridge::run(self.state.app().clone()));
        let (stop_workers, workers_stop) = tokio::sync::watch::channel(false);
        let mut workers = Vec::new();
        // The template overrides are read again every few seconds; a change drops the
        // pages rendered with the old ones (this instance's only: each instance reads
        // its own directory).
        let events = self.state.content_events.clone();
        workers.push(tokio::spawn(self.state.templates.clone().watch(
            move || events.publish(crate::app::ContentChange::Everything),
            workers_stop.clone(),
        )));
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
        if let Some(listener) = self.metrics_listener {
            tracing::info!(address = %listener.local_addr()?, "serving /metrics");
            let metrics = crate::http::metrics::router()
                .layer(crate::http::observe::ObserveLayer::new(
                    self.state.metrics.clone(),
                ))
                .with_state(self.state.clone());
            let mut stop = workers_stop.clone();
            workers.push(tokio::spawn(async move {
                let served = axum::serve(listener, metrics)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stopped| *stopped).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "the /metrics listener stopped");
                }
            }));
        } else if self.state.settings.observe.metrics_token.is_some() {
            tracing::info!("serving /metrics on the main address, to bearers of the metrics token");
        }
        let served = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await;
        bridge.abort();
        // The worker finishes the message in hand and gives back the rest.
        let _ = stop_workers.send(true);
        for w in workers {
            let _ = w.await;
        }
        self.state.store.close().await;
        served.context("serving HTTP")
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
