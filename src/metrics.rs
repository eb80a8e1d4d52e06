//! The process's own measurements, kept in atomics and written out in the Prometheus
//! text exposition format (version 0.0.4) by `GET /metrics`.
//!
//! A small registry of its own rather than a crate: the handful of series newsdesk has
//! are known in advance, the hot path (every request) is an atomic add after one map
//! lookup, and the output is exactly what `promtool check metrics` is shown in the tests.
//! What lives in the database (digests, deliveries, the outbox) is not counted here:
//! it is read at scrape time (`store.stats()`), so every instance sharing the database
//! reports the same truth.
//!
//! Recording is one call at each place something happens:
//! `app.metrics.feed_cache(hit)`, `app.metrics.sign_in_failed(reason)`,
//! `app.metrics.import_rows(&report)`, `mailer`'s own SMTP reply histogram
//! ([`Histogram::observe`]); the HTTP layer records every request
//! (`http::observe`).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

/// Bounds of the latency buckets, in seconds: from half a millisecond (a cached feed)
/// to half a minute (an SMTP server that stalls).
pub const LATENCY_BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram: counts per bucket, their sum and count.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }

    /// `_bucket`, `_sum` and `_count` lines; `labels` is `a="x",b="y"` or empty.
    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.buckets[LATENCY_BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {sum}", braces(labels));
        let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
    }
}

/// Counters told apart by one label whose values are fixed words (`&'static str`):
/// for rare events, so a lock is fine.
#[derive(Debug, Default)]
pub struct LabeledCounter {
    values: Mutex<BTreeMap<&'static str, u64>>,
}

impl LabeledCounter {
    pub fn add(&self, label: &'static str, n: u64) {
        *self
            .values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(label)
            .or_default() += n;
    }

    pub fn get(&self, label: &str) -> u64 {
        self.values
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(label)
            .copied()
            .unwrap_or(0)
    }

    fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let values = self.values.lock().unwrap_or_else(|e| e.into_inner());
        values.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

/// The HTTP methods told apart in the metrics; anything else counts as `other`.
const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other",
];

fn method_index(method: &axum::http::Method) -> usize {
    METHODS
        .iter()
        .position(|m| *m == method.as_str())
        .unwrap_or(METHODS.len() - 1)
}

/// One (route, method): its latency and its answers by status.
struct RouteSeries {
    latency: Histogram,
    /// Index `status - 100`, for 100 to 999.
    statuses: Box<[AtomicU64]>,
}

impl RouteSeries {
    fn new() -> Self {
        Self {
            latency: Histogram::default(),
            statuses: (100..1000).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

type ByMethod = [OnceLock<Arc<RouteSeries>>; METHODS.len()];

fn record_in(by_method: &ByMethod, method: &axum::http::Method, status: u16, elapsed: Duration) {
    let series = by_method[method_index(method)].get_or_init(|| Arc::new(RouteSeries::new()));
    series.latency.observe(elapsed);
    if let Some(slot) = status
        .checked_sub(100)
        .and_then(|i| series.statuses.get(usize::from(i)))
    {
        slot.fetch_add(1, Ordering::Relaxed);
    }
}

/// Requests by route template (`/feeds/{file}`, never the raw path: bounded, and free
/// of the tokens some paths carry), method and status.
#[derive(Default)]
pub struct HttpMetrics {
    routes: RwLock<HashMap<Box<str>, Arc<ByMethod>>>,
}

impl HttpMetrics {
    /// Counts one answered request.
    pub fn record(&self, route: &str, method: &axum::http::Method, status: u16, elapsed: Duration) {
        // The common case under the read lock alone; a route's first request adds it.
        if let Some(by_method) = self
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(route)
        {
            return record_in(by_method, method, status, elapsed);
        }
        let by_method = self
            .routes
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .entry(route.into())
            .or_insert_with(|| Arc::new(std::array::from_fn(|_| OnceLock::new())))
            .clone();
        record_in(&by_method, method, status, elapsed);
    }

    /// Requests counted for a route, method and status.
    pub fn requests(&self, route: &str, method: &str, status: u16) -> u64 {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let Some(i) = METHODS.iter().position(|m| *m == method) else {
            return 0;
        };
        routes
            .get(route)
            .and_then(|m| m[i].get())
            .and_then(|s| s.statuses.get(usize::from(status.checked_sub(100)?)))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn write(&self, out: &mut String) {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let mut sorted: Vec<(&str, &Arc<ByMethod>)> =
            routes.iter().map(|(k, v)| (k.as_ref(), v)).collect();
        sorted.sort_by_key(|(route, _)| *route);
        let each = |f: &mut dyn FnMut(String, &RouteSeries)| {
            for (route, by_method) in &sorted {
                for (i, series) in by_method.iter().enumerate() {
                    if let Some(series) = series.get() {
                        let labels =
                            format!("method=\"{}\",route=\"{}\"", METHODS[i], escape(route));
                        f(labels, series);
                    }
                }
            }
        };
        header(
            out,
            "newsdesk_http_requests_total",
            "counter",
            "HTTP requests answered, by route template, method and status.",
        );
        each(&mut |labels, series| {
            for (i, count) in series.statuses.iter().enumerate() {
                let count = count.load(Ordering::Relaxed);
                if count > 0 {
                    let status = i + 100;
                    let _ = writeln!(
                        out,
                        "newsdesk_http_requests_total{{{labels},status=\"{status}\"}} {count}"
                    );
                }
            }
        });
        header(
            out,
            "newsdesk_http_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to its answer's headers, by route template and method.",
        );
        each(&mut |labels, series| {
            series
                .latency
                .write(out, "newsdesk_http_request_duration_seconds", &labels)
        });
    }
}

/// What the process counts itself. One per application; cheap to share.
#[derive(Default)]
pub struct Metrics {
    pub http: HttpMetrics,
    feed_cache_hits: AtomicU64,
    feed_cache_misses: AtomicU64,
    /// Failed sign-ins to the admin pages, by reason.
    pub sign_in_failures: LabeledCounter,
    /// Rows of CSV imports, by outcome.
    pub import_rows: LabeledCounter,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// A feed request was answered from the cache (`true`) or rendered (`false`).
    pub fn feed_cache(&self, hit: bool) {
        let counter = if hit {
            &self.feed_cache_hits
        } else {
            &self.feed_cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn feed_cache_counts(&self) -> (u64, u64) {
        (
            self.feed_cache_hits.load(Ordering::Relaxed),
            self.feed_cache_misses.load(Ordering::Relaxed),
        )
    }

    /// A sign-in was refused; `reason` is one fixed word (`wrong`, `locked`, ...).
    pub fn sign_in_failed(&self, reason: &'static str) {
        self.sign_in_failures.add(reason, 1);
    }

    /// A CSV import ended: its good rows were applied or not (dry run, all or nothing
    /// with bad rows), its bad rows were refused.
    pub fn import_rows(&self, report: &crate::services::import::ImportReport) {
        let good = report.rows.saturating_sub(report.bad_rows);
        let outcome = if report.applied {
            "applied"
        } else {
            "not_applied"
        };
        self.import_rows.add(outcome, good);
        self.import_rows.add("bad", report.bad_rows);
    }

    /// Everything the process counts, in the text format.
    pub fn write(&self, out: &mut String) {
        self.http.write(out);
        header(
            out,
            "newsdesk_feed_cache_requests_total",
            "counter",
            "Feed requests answered from the in-memory cache (hit) or rendered (miss).",
        );
        let (hits, misses) = self.feed_cache_counts();
        let _ = writeln!(
            out,
            "newsdesk_feed_cache_requests_total{{result=\"hit\"}} {hits}"
        );
        let _ = writeln!(
            out,
            "newsdesk_feed_cache_requests_total{{result=\"miss\"}} {misses}"
        );
        header(
            out,
            "newsdesk_sign_in_failures_total",
            "counter",
            "Refused sign-ins to the admin pages, by reason.",
        );
        for (reason, n) in self.sign_in_failures.snapshot() {
            let _ = writeln!(
                out,
                "newsdesk_sign_in_failures_total{{reason=\"{reason}\"}} {n}"
            );
        }
        header(
            out,
            "newsdesk_import_rows_total",
            "counter",
            "Rows of CSV subscriber imports: good rows applied or not applied (dry run, all or nothing), bad rows.",
        );
        for (outcome, n) in self.import_rows.snapshot() {
            let _ = writeln!(
                out,
                "newsdesk_import_rows_total{{outcome=\"{outcome}\"}} {n}"
            );
        }
    }
}

/// The reason label of a refused sign-in, from the status it was answered with.
pub fn sign_in_reason(status: axum::http::StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "wrong",
        403 => "disabled",
        422 => "incomplete",
        // A locked account, or too many failures from the client's address.
        429 => "limited",
        _ => "other",
    }
}

/// The `# HELP` and `# TYPE` lines of a metric family.
pub fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// One sample line; `labels` is `a="x"` or empty.
pub fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

/// A histogram family with one label, e.g. SMTP replies by result.
pub fn write_histograms(
    out: &mut String,
    name: &str,
    help: &str,
    label: &str,
    series: &[(&str, &Histogram)],
) {
    header(out, name, "histogram", help);
    for (value, histogram) in series {
        histogram.write(out, name, &format!("{label}=\"{}\"", escape(value)));
    }
}

/// A label value as the text format wants it: backslash, quote and line feed escaped.
pub fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_is_cumulative_and_sums_seconds() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(20));
        h.observe(Duration::from_secs(60));
        let mut out = String::new();
        h.write(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.025\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"30\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{a=\"b\"} 60.02"), "{out}");
        assert!(out.contains("x_count{a=\"b\"} 3\n"), "{out}");
        assert_eq!(h.count(), 3);
    }

    #[test]
    fn requests_are_counted_by_route_method_and_status() {
        let m = HttpMetrics::default();
        let get = axum::http::Method::GET;
        m.record("/feeds/{file}", &get, 200, Duration::from_millis(1));
        m.record("/feeds/{file}", &get, 200, Duration::from_millis(1));
        m.record("/feeds/{file}", &get, 304, Duration::from_millis(1));
        m.record(
            "/feeds/{file}",
            &axum::http::Method::from_bytes(b"BREW").unwrap(),
            405,
            Duration::ZERO,
        );
        assert_eq!(m.requests("/feeds/{file}", "GET", 200), 2);
        assert_eq!(m.requests("/feeds/{file}", "other", 405), 1);
        let mut out = String::new();
        m.write(&mut out);
        assert!(out.contains(
            "newsdesk_http_requests_total{method=\"GET\",route=\"/feeds/{file}\",status=\"304\"} 1\n"
        ), "{out}");
        assert!(out.contains(
            "newsdesk_http_request_duration_seconds_count{method=\"GET\",route=\"/feeds/{file}\"} 3\n"
        ), "{out}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
