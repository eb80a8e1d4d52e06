//! Every request, feeds included, is counted for `/metrics` and logged once: method,
//! route template, status, bytes and duration, at `info` on the target
//! `newsdesk::access` (`RUST_LOG=info,newsdesk::access=off` silences it).
//!
//! The line names the route template (`/unsubscribe/{token}`), never the path or the
//! query: paths and queries may carry tokens. No header is logged.
//!
//! One layer around the whole router, so it sees axum's matched route. The cost per
//! request is one map lookup, a few atomic adds and, when the access log is on, one
//! log line; a body whose length is known (every feed) is logged at once, any other
//! when its last byte has gone out.

use crate::metrics::Metrics;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Method, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

/// The target of the access log lines.
pub const ACCESS_TARGET: &str = "newsdesk::access";

/// The route label of requests no route matched (answered by the 404 page).
pub const UNMATCHED: &str = "unmatched";

#[derive(Clone)]
pub struct ObserveLayer {
    metrics: Arc<Metrics>,
}

impl ObserveLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S, B> tower::Service<Request<B>> for Observe<S>
where
    S: tower::Service<Request<B>, Response = Response<Body>>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let record = Record {
            started: Instant::now(),
            route: req.extensions().get::<MatchedPath>().cloned(),
            method: req.method().clone(),
            metrics: self.metrics.clone(),
        };
        ObserveFuture {
            inner: self.inner.call(req),
            record: Some(record),
        }
    }
}

/// What is known of a request before its answer.
struct Record {
    started: Instant,
    route: Option<MatchedPath>,
    method: Method,
    metrics: Arc<Metrics>,
}

impl Record {
    fn route(&self) -> &str {
        self.route.as_ref().map_or(UNMATCHED, MatchedPath::as_str)
    }
}

pin_project_lite::pin_project! {
    pub struct ObserveFuture<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

impl<F, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<Body>, E>>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        let Some(record) = this.record.take() else {
            return Poll::Ready(result);
        };
        let response = match result {
            Ok(response) => response,
            Err(e) => return Poll::Ready(Err(e)),
        };
        let elapsed = record.started.elapsed();
        let status = response.status().as_u16();
        record
            .metrics
            .http
            .record(record.route(), &record.method, status, elapsed);
        if !tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO) {
            return Poll::Ready(Ok(response));
        }
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let pending = Pending {
            record,
            status,
            request_id,
            bytes: 0,
            logged: false,
        };
        if let Some(bytes) = response.body().size_hint().exact() {
            let mut pending = pending;
            pending.bytes = bytes;
            pending.log(elapsed);
            return Poll::Ready(Ok(response));
        }
        // A streamed body (a page compressed on the fly, an export): logged when it ends.
        let (parts, body) = response.into_parts();
        let counted = Body::new(CountedBody {
            inner: body,
            pending,
        });
        Poll::Ready(Ok(Response::from_parts(parts, counted)))
    }
}

/// An answer whose log line waits for the end of its body.
struct Pending {
    record: Record,
    status: u16,
    request_id: Option<String>,
    bytes: u64,
    logged: bool,
}

impl Pending {
    fn log(&mut self, elapsed: Duration) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        tracing::info!(
            target: ACCESS_TARGET,
            method = %self.record.method,
            route = self.record.route(),
            status = self.status,
            bytes = self.bytes,
            duration_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX),
            request_id = self.request_id.as_deref(),
            "request"
        );
    }
}

impl Drop for Pending {
    /// A body dropped before its end (the client went away) is logged with the bytes
    /// that went out.
    fn drop(&mut self) {
        let elapsed = self.record.started.elapsed();
        self.log(elapsed);
    }
}

struct CountedBody {
    inner: Body,
    pending: Pending,
}

impl HttpBody for CountedBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    self.pending.bytes += data.len() as u64;
                }
            }
            Some(Err(_)) | None => {
                let elapsed = self.pending.record.started.elapsed();
                self.pending.log(elapsed);
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
