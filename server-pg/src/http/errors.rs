//! Every error as a JSON reply `{error, detail}` with the status that fits (docs/http-api.md; docs/architecture.md §6):
//! bad input is a 4xx that says what to fix, an outage a 503 with `Retry-After`, and a 500 only
//! for what is the server's own fault (logged, never with request secrets).

use aqm_core::Error as Core;
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ServerError;
use crate::wire::ErrorBody;

/// Seconds a client should wait before retrying after a 503.
pub const RETRY_AFTER_SECS: u64 = 1;

/// The status and stable error kind of an error.
pub fn classify(e: &ServerError) -> (StatusCode, &'static str) {
    match e {
        ServerError::Core(c) => match c {
            Core::UnknownTier(_)
            | Core::UnknownTierName
            | Core::BadId
            | Core::BadLength { .. }
            | Core::Malformed
            | Core::UnsupportedCoinKind(_)
            | Core::UnknownPriority(_)
            | Core::UnknownPriorityName => (StatusCode::BAD_REQUEST, "bad_request"),
            Core::BadPublicKey => (StatusCode::UNPROCESSABLE_ENTITY, "bad_public_key"),
            Core::BadSignature => (StatusCode::UNPROCESSABLE_ENTITY, "bad_signature"),
            Core::WrongOwner => (StatusCode::UNPROCESSABLE_ENTITY, "wrong_owner"),
            Core::WeakIdentityKey => (StatusCode::UNPROCESSABLE_ENTITY, "weak_identity_key"),
            Core::CoinExpired => (StatusCode::UNPROCESSABLE_ENTITY, "coin_expired"),
            Core::BadExpiry => (StatusCode::UNPROCESSABLE_ENTITY, "bad_expiry"),
            Core::UnknownUser => (StatusCode::NOT_FOUND, "unknown_user"),
            Core::KeyAlreadyExists => (StatusCode::CONFLICT, "already_registered"),
            Core::QuotaExceeded { .. } => (StatusCode::TOO_MANY_REQUESTS, "quota_exceeded"),
            Core::CapacityFull { .. } => (StatusCode::SERVICE_UNAVAILABLE, "capacity_full"),
            _ => (StatusCode::UNPROCESSABLE_ENTITY, "refused"),
        },
        ServerError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        ServerError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
        ServerError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        ServerError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        ServerError::AlreadyRegistered => (StatusCode::CONFLICT, "already_registered"),
        ServerError::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
        ServerError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        ServerError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        ServerError::Timeout => (StatusCode::SERVICE_UNAVAILABLE, "timeout"),
        ServerError::Database(_) | ServerError::Migration(_) | ServerError::Config(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
        ServerError::Remote { .. } | ServerError::Transport(_) => (StatusCode::BAD_GATEWAY, "upstream"),
    }
}

impl IntoResponse for ServerError {
    fn into_response(self) -> Response {
        let (status, error) = classify(&self);
        let detail = if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %self, "request failed");
            "internal error: the server logged it; retry, and report it if it persists".to_owned()
        } else {
            if status == StatusCode::SERVICE_UNAVAILABLE {
                tracing::warn!(error = %self, "answered 503");
            }
            self.to_string()
        };
        let mut response = (status, Json(ErrorBody { error: error.to_owned(), detail })).into_response();
        let headers = response.headers_mut();
        match &self {
            ServerError::Unavailable(_) | ServerError::Timeout | ServerError::Core(Core::CapacityFull { .. }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
            }
            ServerError::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            ServerError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

/// A JSON body that could not be read, as a typed error (axum's own replies are plain text).
pub fn from_json_rejection(r: axum::extract::rejection::JsonRejection, limit: usize) -> ServerError {
    use axum::extract::rejection::JsonRejection as J;
    match r {
        _ if r.status() == StatusCode::PAYLOAD_TOO_LARGE => ServerError::PayloadTooLarge { limit },
        J::MissingJsonContentType(_) => {
            ServerError::BadRequest("send the body with Content-Type: application/json".into())
        }
        J::JsonSyntaxError(e) => ServerError::BadRequest(format!("malformed JSON: {}", e.body_text())),
        J::JsonDataError(e) => ServerError::BadRequest(format!("invalid request body: {}", e.body_text())),
        other => ServerError::BadRequest(other.body_text()),
    }
}

/// Query parameters that could not be read, as a typed error.
pub fn from_query_rejection(r: axum::extract::rejection::QueryRejection) -> ServerError {
    ServerError::BadRequest(format!("invalid query parameters: {}", r.body_text()))
}
