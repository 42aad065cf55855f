//! The HTTP service: routes (docs/http-api.md), body limit, request timeout, metrics, and the server
//! loop with graceful shutdown.

pub mod auth;
pub mod errors;
pub mod handlers;
pub mod limits;
pub mod metrics;
pub mod openapi;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use sha2::{Digest, Sha256};
use tower::ServiceBuilder;

use crate::ServerError;
use crate::config::Config;
use crate::directory::PgDirectory;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The directory.
    pub directory: PgDirectory,
    /// SHA-256 of the admin token, if one is configured (the token itself is not kept).
    pub admin_token_hash: Option<[u8; 32]>,
    /// Largest request body.
    pub body_limit: usize,
    /// Registrations per client address.
    pub register_limiter: Arc<limits::RegisterLimiter>,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Tokens verified recently.
    pub tokens: Arc<auth::TokenCache>,
}

impl AppState {
    /// State for `directory` under `config`, with its claim batching turned on
    /// ([`PgDirectory::with_claim_batching`]; call on a tokio runtime).
    pub fn new(directory: PgDirectory, config: &Config) -> Result<AppState, ServerError> {
        let directory = directory.with_claim_batching(config.claim_batching())?;
        let metrics = metrics::Metrics::new(directory.batch_stats());
        Ok(AppState {
            directory,
            admin_token_hash: config.admin_token.as_deref().filter(|t| !t.is_empty()).map(|t| Sha256::digest(t).into()),
            body_limit: config.body_limit,
            register_limiter: Arc::new(limits::RegisterLimiter::new(config.register_per_minute)),
            metrics,
            tokens: Arc::new(auth::TokenCache::default()),
        })
    }
}

/// The router: every endpoint, with the body limit, the request timeout and metrics.
pub fn router(state: AppState, timeout: Duration) -> Router {
    let body_limit = state.body_limit;
    Router::new()
        .route("/v1/users", post(handlers::register))
        .route("/v1/users/{user_id}", get(handlers::get_user))
        .route("/v1/coins/upload", post(handlers::upload))
        .route("/v1/coins/fetch", get(handlers::fetch))
        .route("/v1/coins/count", get(handlers::count))
        .route("/v1/admin/purge-stale", post(handlers::purge_stale))
        .route("/v1/admin/hard-delete", post(handlers::hard_delete))
        .route("/v1/health", get(handlers::health))
        .route("/v1/openapi.json", get(handlers::openapi))
        .route("/metrics", get(handlers::metrics))
        .fallback(|| async { ServerError::NotFound.into_response() })
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async { ServerError::Timeout }))
                .timeout(timeout),
        )
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Connect to PostgreSQL, apply migrations, and serve until SIGTERM or Ctrl-C, then finish the
/// requests in flight.
pub async fn serve(config: Config) -> Result<(), ServerError> {
    let directory = PgDirectory::connect(&config.database_url, config.pool_size, config.policy())?;
    let applied = directory.migrate().await?;
    tracing::info!(applied = ?applied.applied, already = ?applied.already, "schema up to date");
    if config.admin_token.is_none() {
        tracing::warn!("no --admin-token: admin calls are refused");
    }
    let state = AppState::new(directory, &config)?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|e| ServerError::Config(format!("cannot listen on {}: {e}", config.bind)))?;
    let local = listener.local_addr().map_err(|e| ServerError::Config(e.to_string()))?;
    tracing::info!(%local, "aqm-server listening");
    // A line on stdout that scripts and tests wait for.
    println!("aqm-server listening on http://{local}");
    serve_on(listener, state, config.request_timeout(), shutdown_signal()).await?;
    tracing::info!("aqm-server stopped");
    Ok(())
}

/// Serve `state` on `listener` until `shutdown` completes, then finish the requests in flight
/// (what [`serve`] runs; tests run it in-process on a port of their own).
pub async fn serve_on(
    listener: tokio::net::TcpListener,
    state: AppState,
    timeout: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let app = router(state, timeout);
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| ServerError::Config(format!("server: {e}")))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}
