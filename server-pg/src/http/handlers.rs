//! The endpoints (docs/http-api.md). Each parses its input into the core's types, checks who is
//! calling, and hands the operation to [`crate::directory::PgDirectory`]; none states a rule.

use std::net::SocketAddr;

use aqm_core::directory::{IdempotencyKey, MAX_CLAIM};
use aqm_core::{Tier, UserId};
use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use super::errors::{from_json_rejection, from_query_rejection};
use super::metrics::TierLabels;
use super::{AppState, auth};
use crate::wire::*;
use crate::{ServerError, unix_now};

type ApiResult<T> = Result<Json<T>, ServerError>;

/// Name of the header that makes a retried fetch return the same coins.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

fn body<T>(state: &AppState, r: Result<Json<T>, JsonRejection>) -> Result<T, ServerError> {
    r.map(|Json(t)| t).map_err(|e| from_json_rejection(e, state.body_limit))
}

fn tier(text: &str) -> Result<Tier, ServerError> {
    text.parse().map_err(|_| ServerError::BadRequest(format!("coin_category {text:?} is not GOLD, SILVER or BRONZE")))
}

/// The client's `Idempotency-Key` (any 1–255 visible ASCII characters, a UUID is typical) as the
/// core's 16-byte key: the first 16 bytes of its SHA-256.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ServerError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else { return Ok(None) };
    let bad = || ServerError::BadRequest("Idempotency-Key must be 1 to 255 visible ASCII characters".into());
    let text = value.to_str().map_err(|_| bad())?;
    if text.is_empty() || text.len() > 255 {
        return Err(bad());
    }
    let digest = Sha256::digest(text.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    Ok(Some(key))
}

/// Register an identity with its proof of possession; the API token is returned this once.
#[utoipa::path(post, path = "/v1/users", request_body = RegisterRequest, tag = "users",
    responses(
        (status = 201, description = "registered", body = RegisterResponse),
        (status = 400, description = "malformed request", body = ErrorBody),
        (status = 409, description = "user id already registered", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "proof does not verify, or a weak key", body = ErrorBody),
        (status = 429, description = "too many registrations from this address", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub async fn register(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Result<Json<RegisterRequest>, JsonRejection>,
) -> Result<Response, ServerError> {
    let request = body(&state, request)?;
    let (identity, proof) = request.parse()?;
    let now = unix_now();
    state.register_limiter.check(peer.ip(), now)?;
    match state.directory.register(&identity, &proof, now).await? {
        crate::directory::Registered::New { token } => {
            tracing::info!(user = %identity.user_id, "registered identity");
            Ok((StatusCode::CREATED, Json(RegisterResponse { token })).into_response())
        }
        crate::directory::Registered::Existing => Err(ServerError::AlreadyRegistered),
    }
}

/// A registered public identity (how a receiver verifies a stranger's first message).
#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "users",
    params(("user_id" = String, Path, description = "the user's id (UUID)")),
    responses(
        (status = 200, description = "the identity", body = IdentityResponse),
        (status = 400, description = "not a UUID", body = ErrorBody),
        (status = 404, description = "no such user", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub async fn get_user(State(state): State<AppState>, Path(user_id): Path<String>) -> ApiResult<IdentityResponse> {
    let user = parse_user("user_id", &user_id)?;
    let identity = state.directory.identity(&user).await?.ok_or(aqm_core::Error::UnknownUser)?;
    Ok(Json(IdentityResponse::from_identity(&identity)))
}

/// Upload freshly minted coins of the token's user; every coin is verified against the
/// registered identity before any is stored (one bad coin refuses the batch). A last-resort
/// coin (`coin_kind` 1) replaces the owner's stored one of its tier when it expires later.
#[utoipa::path(post, path = "/v1/coins/upload", request_body = UploadRequest, tag = "coins",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "stored; `inserted` counts the new ones (a last-resort coin when it replaced the stored one or there was none)", body = UploadResponse),
        (status = 400, description = "malformed request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "user_id is not the token's user", body = ErrorBody),
        (status = 404, description = "owner not registered", body = ErrorBody),
        (status = 413, description = "body too large", body = ErrorBody),
        (status = 422, description = "a coin is forged, foreign, expired or expires too late for its kind", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub async fn upload(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<UploadRequest>, JsonRejection>,
) -> ApiResult<UploadResponse> {
    // Who is calling comes first: an unauthenticated caller learns nothing about its input.
    let caller = auth::user(&state, &headers).await?;
    let request = body(&state, request)?;
    let owner = parse_user("user_id", &request.user_id)?;
    if owner != caller {
        return Err(ServerError::Forbidden("user_id must be the token's user: upload only your own coins"));
    }
    if request.coins.len() > MAX_UPLOAD_COINS {
        return Err(ServerError::BadRequest(format!(
            "{} coins in one upload; send at most {MAX_UPLOAD_COINS} per request",
            request.coins.len()
        )));
    }
    let coins = request.coins.iter().map(|c| c.to_coin(owner)).collect::<Result<Vec<_>, _>>()?;
    let inserted = state.directory.upload(&owner, &coins, unix_now()).await?;
    state.metrics.uploaded.inc_by(u64::from(inserted));
    Ok(Json(UploadResponse { inserted }))
}

/// Claim up to `count` of the target's oldest unclaimed coins of a tier for the token's user;
/// when none is left, the target's last-resort coin of the tier (`coin_kind` 1), which stays
/// for the next requester. Either counts against the anti-drain quota. Send an
/// `Idempotency-Key` header: a retry with the same key returns the same coins.
#[utoipa::path(get, path = "/v1/coins/fetch", tag = "coins", params(FetchQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "makes a retry return the same coins")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "the coins handed out (maybe none): one-time coins, or else the owner's last-resort coin alone", body = FetchResponse),
        (status = 400, description = "malformed request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 403, description = "requester_id is not the token's user", body = ErrorBody),
        (status = 429, description = "anti-drain quota spent", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub async fn fetch(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<FetchQuery>, QueryRejection>,
) -> ApiResult<FetchResponse> {
    let caller = auth::user(&state, &headers).await?;
    let Query(q) = query.map_err(from_query_rejection)?;
    let owner = parse_user("target_user_id", &q.target_user_id)?;
    let requester = parse_user("requester_id", &q.requester_id)?;
    if requester != caller {
        return Err(ServerError::Forbidden("requester_id must be the token's user: claim only for yourself"));
    }
    let tier = tier(&q.coin_category)?;
    let count = q.count.unwrap_or(1);
    if count as usize > MAX_CLAIM * 8 {
        return Err(ServerError::BadRequest(format!("count {count} is too large: ask for at most {}", MAX_CLAIM * 8)));
    }
    let key = idempotency_key(&headers)?;
    let (claimed, replayed) = state.directory.claim_reporting(&owner, &requester, tier, count, key, unix_now()).await?;
    if !replayed {
        let labels = TierLabels { tier: tier.as_str().into() };
        let last_resort = claimed.iter().filter(|c| c.is_last_resort()).count() as u64;
        state.metrics.claimed.get_or_create(&labels).inc_by(claimed.len() as u64 - last_resort);
        if last_resort > 0 {
            state.metrics.last_resort.get_or_create(&labels).inc_by(last_resort);
        }
    }
    Ok(Json(FetchResponse { coins: claimed.iter().map(CoinJson::from_coin).collect() }))
}

/// Unclaimed one-time coins per tier of a user (a last-resort coin is not counted).
#[utoipa::path(get, path = "/v1/coins/count", tag = "coins", params(CountQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "counts", body = CountResponse),
        (status = 400, description = "malformed request", body = ErrorBody),
        (status = 401, description = "missing or invalid token", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub async fn count(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<CountQuery>, QueryRejection>,
) -> ApiResult<CountResponse> {
    auth::user(&state, &headers).await?;
    let Query(q) = query.map_err(from_query_rejection)?;
    let user: UserId = parse_user("user_id", &q.user_id)?;
    Ok(Json(state.directory.available(&user).await?.into()))
}

/// Admin: delete stale unclaimed coins.
#[utoipa::path(post, path = "/v1/admin/purge-stale", request_body = PurgeStaleRequest, tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "deleted", body = DeletedResponse),
        (status = 400, description = "malformed request", body = ErrorBody),
        (status = 401, description = "no token", body = ErrorBody),
        (status = 403, description = "not the admin token, or admin calls disabled", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub async fn purge_stale(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<PurgeStaleRequest>, JsonRejection>,
) -> ApiResult<DeletedResponse> {
    auth::admin(&state, &headers)?;
    let request = body(&state, request)?;
    let mut policy = state.directory.policy().clone();
    if let Some(days) = request.max_age_days {
        policy.directory_stale_secs = u64::from(days) * 86_400;
    }
    let deleted = state.directory.purge_stale_with(&policy, unix_now()).await?;
    tracing::info!(deleted, "purged stale coins");
    Ok(Json(DeletedResponse { deleted }))
}

/// Admin: delete claimed coins past their grace.
#[utoipa::path(post, path = "/v1/admin/hard-delete", request_body = HardDeleteRequest, tag = "admin",
    security(("admin" = [])),
    responses(
        (status = 200, description = "deleted", body = DeletedResponse),
        (status = 400, description = "malformed request", body = ErrorBody),
        (status = 401, description = "no token", body = ErrorBody),
        (status = 403, description = "not the admin token, or admin calls disabled", body = ErrorBody),
        (status = 503, description = "database unavailable", body = ErrorBody),
    ))]
pub async fn hard_delete(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<HardDeleteRequest>, JsonRejection>,
) -> ApiResult<DeletedResponse> {
    auth::admin(&state, &headers)?;
    let request = body(&state, request)?;
    let mut policy = state.directory.policy().clone();
    if let Some(hours) = request.grace_hours {
        policy.directory_claim_grace_secs = u64::from(hours) * 3_600;
    }
    let deleted = state.directory.hard_delete_claimed_with(&policy, unix_now()).await?;
    tracing::info!(deleted, "hard-deleted claimed coins");
    Ok(Json(DeletedResponse { deleted }))
}

/// Liveness and database reachability: 200 when PostgreSQL answers, 503 while it does not.
#[utoipa::path(get, path = "/v1/health", tag = "ops",
    responses(
        (status = 200, description = "serving", body = HealthResponse),
        (status = 503, description = "database unreachable", body = HealthResponse),
    ))]
pub async fn health(State(state): State<AppState>) -> Response {
    let db_connected = state.directory.ping().await;
    let status = if db_connected { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = HealthResponse { status: if db_connected { "ok" } else { "degraded" }.into(), db_connected };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<AppState>) -> Response {
    let text = state.metrics.render(state.directory.pool());
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text)
        .into_response()
}

/// The OpenAPI document, generated from these handlers' types.
pub async fn openapi() -> Response {
    Json(super::openapi::document()).into_response()
}
