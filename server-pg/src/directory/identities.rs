//! Registered identities and API tokens.

use aqm_core::crypto::{PublicIdentity, RegistrationProof};
use aqm_core::{UnixSeconds, UserId, directory};
use subtle::ConstantTimeEq;

use super::rows::{user, uuid};
use super::{PgDirectory, to_i64};
use crate::ServerError;
use crate::token::{self, TokenClaim};

/// What a registration did.
#[derive(Clone, PartialEq, Eq)]
pub enum Registered {
    /// A new identity: its API token, to hand to the client this once.
    New {
        /// The token text.
        token: String,
    },
    /// This identity was already registered (nothing changed, no new token).
    Existing,
}

impl core::fmt::Debug for Registered {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The token is a credential: never in a log line.
        match self {
            Registered::New { .. } => f.write_str("Registered::New"),
            Registered::Existing => f.write_str("Registered::Existing"),
        }
    }
}

impl PgDirectory {
    /// Register `identity` once its proof of possession verifies (the core's
    /// [`directory::verify_registration`], run off the async threads: ML-DSA is slow). The same
    /// identity again → [`Registered::Existing`]; another identity under a registered user id →
    /// `KeyAlreadyExists`.
    pub async fn register(
        &self,
        identity: &PublicIdentity,
        proof: &RegistrationProof,
        now: UnixSeconds,
    ) -> Result<Registered, ServerError> {
        let (i, p) = (identity.clone(), proof.clone());
        tokio::task::spawn_blocking(move || directory::verify_registration(&i, &p))
            .await
            .map_err(|e| ServerError::Database(format!("verification task failed: {e}")))??;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .execute(
                "INSERT INTO identities (user_id, ed25519_pk, mldsa65_pk, registered_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id) DO NOTHING",
                &[
                    &uuid(&identity.user_id.0),
                    &identity.ed25519.as_slice(),
                    &identity.mldsa65.as_slice(),
                    &to_i64(now)?,
                ],
            )
            .await?;
        if inserted == 0 {
            drop(tx);
            return match self.identity(&identity.user_id).await? {
                Some(known) if known == *identity => Ok(Registered::Existing),
                _ => Err(aqm_core::Error::KeyAlreadyExists.into()),
            };
        }
        let (text, claim) = token::issue(&identity.user_id);
        tx.execute(
            "INSERT INTO api_tokens (user_id, token_hash, created_at) VALUES ($1, $2, $3)",
            &[&uuid(&claim.user.0), &claim.hash.as_slice(), &to_i64(now)?],
        )
        .await?;
        tx.commit().await?;
        Ok(Registered::New { token: text })
    }

    /// The registered identity of `user`.
    pub async fn identity(&self, user_id: &UserId) -> Result<Option<PublicIdentity>, ServerError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT user_id, ed25519_pk, mldsa65_pk FROM identities WHERE user_id = $1",
                &[&uuid(&user_id.0)],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        let ed: &[u8] = row.try_get(1)?;
        let ml: &[u8] = row.try_get(2)?;
        let corrupt = || ServerError::Database("corrupt identity row".into());
        Ok(Some(PublicIdentity {
            user_id: user(row.try_get(0)?),
            ed25519: <[u8; 32]>::try_from(ed).map_err(|_| corrupt())?,
            mldsa65: heapless::Vec::from_slice(ml).map_err(|_| corrupt())?,
        }))
    }

    /// The user a token belongs to, if its secret matches a stored hash (compared in constant
    /// time); otherwise [`ServerError::Unauthorized`].
    pub async fn authenticate(&self, claim: &TokenClaim) -> Result<UserId, ServerError> {
        let client = self.pool.get().await?;
        let rows =
            client.query("SELECT token_hash FROM api_tokens WHERE user_id = $1", &[&uuid(&claim.user.0)]).await?;
        let mut ok = subtle::Choice::from(0);
        for row in &rows {
            let stored: &[u8] = row.try_get(0)?;
            ok |= stored.ct_eq(&claim.hash);
        }
        if bool::from(ok) { Ok(claim.user) } else { Err(ServerError::Unauthorized) }
    }
}
