//! Who is calling: the bearer token of a registered user, or the admin token.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::ServerError;
use crate::token::{self, TokenClaim};
use aqm_core::UserId;

fn bearer(headers: &HeaderMap) -> Result<&str, ServerError> {
    let value = headers.get(AUTHORIZATION).ok_or(ServerError::Unauthorized)?;
    let value = value.to_str().map_err(|_| ServerError::Unauthorized)?;
    value.strip_prefix("Bearer ").map(str::trim).ok_or(ServerError::Unauthorized)
}

/// The registered user whose token the request carries. A token checked against the database
/// is remembered for [`TOKEN_CACHE_TTL`], so a busy client pays the lookup once a minute rather
/// than on every request (tokens are never revoked today; a revocation would have to wait
/// out the TTL on every replica).
pub async fn user(state: &AppState, headers: &HeaderMap) -> Result<UserId, ServerError> {
    let claim = token::parse(bearer(headers)?)?;
    if state.tokens.lookup(&claim) {
        return Ok(claim.user);
    }
    let user = state.directory.authenticate(&claim).await?;
    state.tokens.remember(&claim);
    Ok(user)
}

/// How long a verified token is trusted without asking the database again.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(60);

/// Most tokens remembered; past it the cache starts over (a flood of new tokens cannot grow it).
const TOKEN_CACHE_MAX: usize = 100_000;

/// Verified tokens, by the SHA-256 of their secret (never the secret itself).
#[derive(Debug, Default)]
pub struct TokenCache {
    verified: Mutex<HashMap<[u8; 32], (UserId, Instant)>>,
}

impl TokenCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], (UserId, Instant)>> {
        self.verified.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `claim` was verified within the TTL.
    pub fn lookup(&self, claim: &TokenClaim) -> bool {
        self.lock().get(&claim.hash).is_some_and(|(user, at)| *user == claim.user && at.elapsed() < TOKEN_CACHE_TTL)
    }

    /// Remember a verified claim.
    pub fn remember(&self, claim: &TokenClaim) {
        let mut map = self.lock();
        if map.len() >= TOKEN_CACHE_MAX {
            map.clear();
        }
        map.insert(claim.hash, (claim.user, Instant::now()));
    }
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
