//! Who is calling: the bearer token of a registered user, or the admin token.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::ServerError;
use crate::token;
use aqm_core::UserId;

fn bearer(headers: &HeaderMap) -> Result<&str, ServerError> {
    let value = headers.get(AUTHORIZATION).ok_or(ServerError::Unauthorized)?;
    let value = value.to_str().map_err(|_| ServerError::Unauthorized)?;
    value.strip_prefix("Bearer ").map(str::trim).ok_or(ServerError::Unauthorized)
}

/// The registered user whose token the request carries.
pub async fn user(state: &AppState, headers: &HeaderMap) -> Result<UserId, ServerError> {
    let claim = token::parse(bearer(headers)?)?;
    state.directory.authenticate(&claim).await
}

/// Check the admin token (compared as SHA-256 digests in constant time). No admin token
/// configured → every admin call is refused.
pub fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), ServerError> {
    let Some(want) = &state.admin_token_hash else {
        return Err(ServerError::Forbidden("admin calls are disabled: start the server with --admin-token"));
    };
    let got: [u8; 32] = Sha256::digest(bearer(headers)?.as_bytes()).into();
    if bool::from(got.ct_eq(want)) { Ok(()) } else { Err(ServerError::Forbidden("not the admin token")) }
}
