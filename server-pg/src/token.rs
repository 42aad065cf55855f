//! API tokens: `<user_id>.<secret>`, where the secret is 32 random bytes in unpadded base64url.
//!
//! The server stores only SHA-256 of the secret, keyed by the user id the token names, so a
//! leaked database holds no working token and the lookup goes by `user_id`, the schema's
//! distribution key.

use aqm_core::UserId;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::Rng;
use sha2::{Digest, Sha256};

use crate::ServerError;

/// Secret bytes in a token.
pub const SECRET_LEN: usize = 32;

/// A parsed token: the user it names and the SHA-256 of its secret.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenClaim {
    /// The user the token says it belongs to (checked against the stored hash).
    pub user: UserId,
    /// SHA-256 of the secret, as stored.
    pub hash: [u8; 32],
}

impl core::fmt::Debug for TokenClaim {
    // Never print the hash: with it an attacker could test guesses offline.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "TokenClaim({})", self.user)
    }
}

/// A new token for `user`: the text to hand to the client once, and what to store.
pub fn issue(user: &UserId) -> (String, TokenClaim) {
    let mut secret = [0u8; SECRET_LEN];
    rand::rng().fill_bytes(&mut secret);
    let text = format!("{user}.{}", URL_SAFE_NO_PAD.encode(secret));
    let hash = Sha256::digest(secret).into();
    (text, TokenClaim { user: *user, hash })
}

/// Parse a token's text (without the `Bearer ` prefix).
///
/// ```
/// let user = aqm_core::UserId([7; 16]);
/// let (text, claim) = aqm_server::token::issue(&user);
/// assert_eq!(aqm_server::token::parse(&text).unwrap(), claim);
/// assert!(aqm_server::token::parse("not-a-token").is_err());
/// ```
pub fn parse(text: &str) -> Result<TokenClaim, ServerError> {
    let (user, secret) = text.split_once('.').ok_or(ServerError::Unauthorized)?;
    let user: UserId = user.parse().map_err(|_| ServerError::Unauthorized)?;
    let secret = URL_SAFE_NO_PAD.decode(secret).map_err(|_| ServerError::Unauthorized)?;
    if secret.len() != SECRET_LEN {
        return Err(ServerError::Unauthorized);
    }
    Ok(TokenClaim { user, hash: Sha256::digest(&secret).into() })
}
