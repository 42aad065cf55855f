//! Prometheus metrics at `/metrics`: requests by route, method and status, latency histograms by
//! route, coins claimed by tier (one-time and last-resort apart), coins uploaded, and the connection pool's use.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::AppState;

/// Labels of a request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route template (`/v1/coins/fetch`), never the raw path (ids would explode it).
    pub route: String,
    /// HTTP method.
    pub method: String,
    /// Response status code.
    pub status: u16,
}

/// Labels of a route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// The route template.
    pub route: String,
}

/// Labels of a tier.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabels {
    /// GOLD, SILVER or BRONZE.
    pub tier: String,
}

fn latency_histogram() -> Histogram {
    // 0.25 ms … about 4 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
}

/// Every metric the server exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// One-time coins handed out by claims, by tier.
    pub claimed: Family<TierLabels, Counter>,
    /// Last-resort coins handed out by claims (not used up), by tier: how often owners run dry.
    pub last_resort: Family<TierLabels, Counter>,
    /// New coins stored by uploads.
    pub uploaded: Counter,
    pool_size: Gauge,
    pool_available: Gauge,
    pool_waiting: Gauge,
}

impl Metrics {
    /// A fresh registry with every metric registered, exporting the directory's claim `batches`.
    pub fn new(batches: &crate::directory::BatchStats) -> Arc<Metrics> {
        let mut registry = Registry::with_prefix("aqm");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        let claimed = Family::<TierLabels, Counter>::default();
        let last_resort = Family::<TierLabels, Counter>::default();
        let uploaded = Counter::default();
        let (pool_size, pool_available, pool_waiting) = (Gauge::default(), Gauge::default(), Gauge::default());
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("coins_claimed", "One-time coins handed out by claims", claimed.clone());
        registry.register(
            "last_resort_handed_out",
            "Last-resort coins handed out by claims (the owner had no one-time coin of the tier left)",
            last_resort.clone(),
        );
        registry.register("coins_uploaded", "New coins stored by uploads", uploaded.clone());
        registry.register("claim_transactions", "Claim transactions run", batches.transactions.clone());
        registry.register("claim_batched", "Claims those transactions carried", batches.claims.clone());
        registry.register("db_pool_connections", "PostgreSQL connections open in the pool", pool_size.clone());
        registry.register("db_pool_idle", "Idle PostgreSQL connections in the pool", pool_available.clone());
        registry.register("db_pool_waiting", "Requests waiting for a PostgreSQL connection", pool_waiting.clone());
        Arc::new(Metrics {
            registry,
            requests,
            latency,
            claimed,
            last_resort,
            uploaded,
            pool_size,
            pool_available,
            pool_waiting,
        })
    }

    /// The text exposition, with the pool gauges read now.
    pub fn render(&self, pool: &deadpool_postgres::Pool) -> String {
        let s = pool.status();
        self.pool_size.set(i64::try_from(s.size).unwrap_or(i64::MAX));
        self.pool_available.set(i64::try_from(s.available).unwrap_or(i64::MAX));
        self.pool_waiting.set(i64::try_from(s.waiting).unwrap_or(i64::MAX));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Middleware: count and time every request.
pub async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let start = Instant::now();
    let response = next.run(request).await;
    let m = &state.metrics;
    m.latency.get_or_create(&RouteLabels { route: route.clone() }).observe(start.elapsed().as_secs_f64());
    m.requests.get_or_create(&RequestLabels { route, method, status: response.status().as_u16() }).inc();
    response
}
