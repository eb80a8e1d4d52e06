//! `GET /metrics`: the Prometheus text format, served only when the operator chose how
//! (`NEWSDESK_METRICS_TOKEN` on the main address, or `NEWSDESK_METRICS_BIND` for an
//! address of its own); otherwise the route does not exist (404).

use super::AppState;
use crate::metrics::{self, escape, header, sample};
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header as h};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// The database's part of a scrape waits this long at most: a scrape must not hang
/// behind a database that does not answer (it says `newsdesk_database_up 0` instead).
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The statuses reported even when no row has them, so a series does not come and go.
const DIGEST_STATUSES: [&str; 5] = ["sending", "sent", "skipped", "missed", "cancelled"];
const DELIVERY_STATUSES: [&str; 6] = [
    "pending",
    "sent",
    "failed",
    "skipped",
    "missed",
    "cancelled",
];

/// The router of `/metrics` alone, for the main router or a listener of its own.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", axum::routing::get(serve_metrics))
}

async fn serve_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.settings.observe.metrics_token
        && !bears(&headers, token.expose())
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(h::WWW_AUTHENTICATE, "Bearer realm=\"metrics\"")],
            "a metrics token is required\n",
        )
            .into_response();
    }
    let body = render(&state).await;
    (
        [(
            h::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// Whether the request bears the token, compared through hashes so the time taken
/// does not tell how much of a guess was right.
fn bears(headers: &HeaderMap, token: &str) -> bool {
    let Some(given) = headers
        .get(h::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    Sha256::digest(given.trim().as_bytes()) == Sha256::digest(token.as_bytes())
}

/// A gauge by status: every known status (0 when no row has it), then any other.
fn by_status(out: &mut String, name: &str, help: &str, known: &[&str], rows: &[(String, i64)]) {
    header(out, name, "gauge", help);
    for status in known {
        let n = rows
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        sample(out, name, &format!("status=\"{status}\""), n);
    }
    for (status, n) in rows.iter().filter(|(s, _)| !known.contains(&s.as_str())) {
        sample(out, name, &format!("status=\"{}\"", escape(status)), n);
    }
}

/// Everything, in the text format.
pub async fn render(state: &AppState) -> String {
    let mut out = String::with_capacity(16 * 1024);
    header(
        &mut out,
        "newsdesk_build_info",
        "gauge",
        "The running version; always 1.",
    );
    sample(
        &mut out,
        "newsdesk_build_info",
        &format!("version=\"{}\"", escape(env!("CARGO_PKG_VERSION"))),
        1,
    );
    state.metrics.write(&mut out);
    if let Some(replies) = state.mailer.smtp_replies() {
        metrics::write_histograms(
            &mut out,
            "newsdesk_smtp_reply_duration_seconds",
            "Time from handing a message to the SMTP server to its final reply, by result.",
            "result",
            &[
                ("accepted", &replies.accepted),
                ("temporary", &replies.temporary),
                ("permanent", &replies.permanent),
            ],
        );
    }
    let (size, idle) = state.store.stats().pool();
    header(
        &mut out,
        "newsdesk_database_pool_connections",
        "gauge",
        "Database connections the pool holds, in use or idle.",
    );
    let in_use = (size as usize).saturating_sub(idle);
    sample(
        &mut out,
        "newsdesk_database_pool_connections",
        "state=\"in_use\"",
        in_use,
    );
    sample(
        &mut out,
        "newsdesk_database_pool_connections",
        "state=\"idle\"",
        idle,
    );
    header(
        &mut out,
        "newsdesk_database_pool_max_connections",
        "gauge",
        "The most connections the pool opens (NEWSDESK_DATABASE_MAX_CONNECTIONS).",
    );
    sample(
        &mut out,
        "newsdesk_database_pool_max_connections",
        "",
        state.settings.database_max_connections,
    );
    let stats = tokio::time::timeout(DATABASE_TIMEOUT, state.store.stats().delivery()).await;
    let stats = match stats {
        Ok(Ok(stats)) => Some(stats),
        Ok(Err(e)) => {
            tracing::warn!(
                error = format!("{e:#}"),
                "metrics: cannot read the delivery counts"
            );
            None
        }
        Err(_) => {
            tracing::warn!("metrics: the database did not answer within 2 s");
            None
        }
    };
    header(
        &mut out,
        "newsdesk_database_up",
        "gauge",
        "1 when this scrape read the database's counts, 0 when the database did not answer.",
    );
    sample(
        &mut out,
        "newsdesk_database_up",
        "",
        u8::from(stats.is_some()),
    );
    let Some(stats) = stats else {
        return out;
    };
    by_status(
        &mut out,
        "newsdesk_digests",
        "Digests in the database, by status.",
        &DIGEST_STATUSES,
        &stats.digests,
    );
    by_status(
        &mut out,
        "newsdesk_deliveries",
        "Digest deliveries (one per message) in the database, by status.",
        &DELIVERY_STATUSES,
        &stats.deliveries,
    );
    let pending = stats
        .deliveries
        .iter()
        .find(|(s, _)| s == "pending")
        .map_or(0, |(_, n)| *n);
    header(
        &mut out,
        "newsdesk_outbox_depth",
        "gauge",
        "Deliveries still to send (pending, due or not).",
    );
    sample(&mut out, "newsdesk_outbox_depth", "", pending);
    header(
        &mut out,
        "newsdesk_outbox_due",
        "gauge",
        "Pending deliveries due now and not held by a worker.",
    );
    sample(&mut out, "newsdesk_outbox_due", "", stats.due);
    header(
        &mut out,
        "newsdesk_outbox_oldest_due_age_seconds",
        "gauge",
        "How long the oldest due delivery has been waiting; 0 when none is due.",
    );
    sample(
        &mut out,
        "newsdesk_outbox_oldest_due_age_seconds",
        "",
        stats.oldest_due_age_secs,
    );
    out
}
