//! The JSON bodies of the HTTP API (docs/http-api.md), shared by the service and the client, and their
//! conversions to and from the core's types. Binary fields are standard base64 with padding (as
//! the prototype's `base64.b64encode`), ids are lowercase hyphenated UUIDs, times Unix seconds.
//!
//! Request bodies refuse unknown fields: a client that sends a field the server does not know
//! is told so instead of having it silently ignored.

use aqm_core::coin::{CoinKind, PublicCoin};
use aqm_core::crypto::{PublicIdentity, RegistrationProof};
use aqm_core::{Tier, TierCounts, UserId};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::ServerError;

#[cfg(feature = "server")]
use utoipa::{IntoParams, ToSchema};

/// Most coins one upload request may carry.
pub const MAX_UPLOAD_COINS: usize = 100;

/// One published coin: an upload item, or a coin a fetch handed out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CoinJson {
    /// The coin's key id (UUID).
    pub key_id: String,
    /// `GOLD`, `SILVER` or `BRONZE`.
    pub coin_category: String,
    /// The KEM public key (1216, 1184 or 32 bytes by tier).
    pub public_key_b64: String,
    /// The owner's signature over the coin's signed bytes (GOLD: Ed25519 ‖ ML-DSA-65).
    pub signature_b64: String,
    /// Unix seconds after which nobody may use the coin; covered by the signature.
    pub expires_at: u64,
    /// 0 = one-time (handed out once); 1 = last-resort (the owner's one coin of the tier that a
    /// fetch returns, to every requester, only when no one-time coin is left; it is not used up).
    /// Covered by the signature: this byte is how a fetch marks a last-resort coin.
    #[serde(default)]
    #[cfg_attr(feature = "server", schema(minimum = 0, maximum = 1))]
    pub coin_kind: u8,
}

impl CoinJson {
    /// The JSON form of a coin.
    pub fn from_coin(c: &PublicCoin) -> CoinJson {
        CoinJson {
            key_id: c.key_id.to_string(),
            coin_category: c.tier.as_str().to_owned(),
            public_key_b64: STANDARD.encode(&c.public_key),
            signature_b64: STANDARD.encode(&c.signature),
            expires_at: c.expires_at,
            coin_kind: c.kind.to_byte(),
        }
    }

    /// The core coin this describes, owned by `owner`. Checks only its shape (ids, tier, sizes
    /// that fit); the signature is checked by the core against the owner's identity.
    pub fn to_coin(&self, owner: UserId) -> Result<PublicCoin, ServerError> {
        let key_id = self.key_id.parse().map_err(|_| bad(format!("key_id {:?} is not a UUID", self.key_id)))?;
        let tier: Tier = self
            .coin_category
            .parse()
            .map_err(|_| bad(format!("coin_category {:?} is not GOLD, SILVER or BRONZE", self.coin_category)))?;
        let kind = CoinKind::try_from(self.coin_kind)?;
        let public_key = decode_into("public_key_b64", &self.public_key_b64)?;
        let signature = decode_into("signature_b64", &self.signature_b64)?;
        Ok(PublicCoin { owner, key_id, tier, kind, expires_at: self.expires_at, public_key, signature })
    }
}

/// `POST /v1/coins/upload`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UploadRequest {
    /// The owner; must be the token's user.
    pub user_id: String,
    /// Up to [`MAX_UPLOAD_COINS`] coins, all signed by the owner's registered identity; one-time
    /// and last-resort coins may be mixed.
    pub coins: Vec<CoinJson>,
}

/// Reply to an upload.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
pub struct UploadResponse {
    /// Coins that were new (an upload is idempotent on owner and key id).
    pub inserted: u32,
}

/// `GET /v1/coins/fetch` parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, IntoParams))]
#[serde(deny_unknown_fields)]
pub struct FetchQuery {
    /// Whose coins to claim.
    pub target_user_id: String,
    /// Who claims them; must be the token's user.
    pub requester_id: String,
    /// `GOLD`, `SILVER` or `BRONZE`.
    pub coin_category: String,
    /// How many (default 1); the anti-drain quota may grant fewer.
    pub count: Option<u32>,
}

/// Coins handed out by a fetch, oldest first: one-time coins, or else the owner's last-resort coin
/// alone (`coin_kind` 1).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
pub struct FetchResponse {
    /// The coins: one-time ones, each now claimed by the requester; or the owner's last-resort
    /// coin, not claimed; empty when there is neither.
    pub coins: Vec<CoinJson>,
}

/// `GET /v1/coins/count` parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema, IntoParams))]
#[serde(deny_unknown_fields)]
pub struct CountQuery {
    /// Whose unclaimed coins to count.
    pub user_id: String,
}

/// Unclaimed one-time coins per tier (last-resort coins are not counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
pub struct CountResponse {
    /// GOLD coins left.
    pub gold: u32,
    /// SILVER coins left.
    pub silver: u32,
    /// BRONZE coins left.
    pub bronze: u32,
}

impl From<TierCounts> for CountResponse {
    fn from(c: TierCounts) -> Self {
        CountResponse { gold: c.get(Tier::Gold), silver: c.get(Tier::Silver), bronze: c.get(Tier::Bronze) }
    }
}

impl From<CountResponse> for TierCounts {
    fn from(c: CountResponse) -> Self {
        TierCounts([c.gold, c.silver, c.bronze])
    }
}

/// `POST /v1/admin/purge-stale`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PurgeStaleRequest {
    /// Unclaimed coins uploaded at least this many days ago are deleted (default: the policy's
    /// stale age). Coins too close to their expiry to be handed out are always deleted.
    pub max_age_days: Option<u32>,
}

/// `POST /v1/admin/hard-delete`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct HardDeleteRequest {
    /// Claimed coins claimed at least this many hours ago are deleted (default: the policy's
    /// claim grace).
    pub grace_hours: Option<u32>,
}

/// Reply to an admin sweep.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
pub struct DeletedResponse {
    /// Rows deleted.
    pub deleted: u32,
}

/// `GET /v1/health`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
pub struct HealthResponse {
    /// `ok`, or `degraded` while PostgreSQL is unreachable.
    pub status: String,
    /// Whether a query reached PostgreSQL just now.
    pub db_connected: bool,
}

/// `POST /v1/users`: an identity and its proof of possession (docs/protocol.md).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The user's id (UUID).
    pub user_id: String,
    /// Ed25519 public key (32 bytes).
    pub ed25519_pk_b64: String,
    /// ML-DSA-65 public key (1952 bytes).
    pub mldsa65_pk_b64: String,
    /// Ed25519 signature over `"AQM-register-v2" ‖ user id ‖ ed25519 pk ‖ mldsa65 pk`.
    pub ed25519_sig_b64: String,
    /// ML-DSA-65 signature over the same bytes.
    pub mldsa65_sig_b64: String,
}

impl RegisterRequest {
    /// The request that registers `identity` with `proof`.
    pub fn new(identity: &PublicIdentity, proof: &RegistrationProof) -> RegisterRequest {
        RegisterRequest {
            user_id: identity.user_id.to_string(),
            ed25519_pk_b64: STANDARD.encode(identity.ed25519),
            mldsa65_pk_b64: STANDARD.encode(&identity.mldsa65),
            ed25519_sig_b64: STANDARD.encode(&proof.ed25519),
            mldsa65_sig_b64: STANDARD.encode(&proof.mldsa65),
        }
    }

    /// The identity and proof this request carries (shape only; the core verifies the proof).
    pub fn parse(&self) -> Result<(PublicIdentity, RegistrationProof), ServerError> {
        let identity = IdentityResponse {
            user_id: self.user_id.clone(),
            ed25519_pk_b64: self.ed25519_pk_b64.clone(),
            mldsa65_pk_b64: self.mldsa65_pk_b64.clone(),
        }
        .parse()?;
        let proof = RegistrationProof {
            ed25519: decode_into("ed25519_sig_b64", &self.ed25519_sig_b64)?,
            mldsa65: decode_into("mldsa65_sig_b64", &self.mldsa65_sig_b64)?,
        };
        Ok((identity, proof))
    }
}

/// Reply to a registration: the API token, shown this once (only its hash is stored).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
pub struct RegisterResponse {
    /// `Authorization: Bearer <token>` for every other call.
    pub token: String,
}

/// `GET /v1/users/{user_id}`: a registered public identity.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IdentityResponse {
    /// The user's id.
    pub user_id: String,
    /// Ed25519 public key (32 bytes).
    pub ed25519_pk_b64: String,
    /// ML-DSA-65 public key (1952 bytes).
    pub mldsa65_pk_b64: String,
}

impl IdentityResponse {
    /// The JSON form of an identity.
    pub fn from_identity(i: &PublicIdentity) -> IdentityResponse {
        IdentityResponse {
            user_id: i.user_id.to_string(),
            ed25519_pk_b64: STANDARD.encode(i.ed25519),
            mldsa65_pk_b64: STANDARD.encode(&i.mldsa65),
        }
    }

    /// The identity this describes; sizes checked, keys validated by the core where used.
    pub fn parse(&self) -> Result<PublicIdentity, ServerError> {
        let user_id = parse_user("user_id", &self.user_id)?;
        let ed = decode("ed25519_pk_b64", &self.ed25519_pk_b64)?;
        let ed25519 = <[u8; 32]>::try_from(ed.as_slice()).map_err(|_| aqm_core::Error::BadLength {
            what: "Ed25519 public key",
            expected: 32,
            got: ed.len(),
        })?;
        let mldsa65 = decode_into("mldsa65_pk_b64", &self.mldsa65_pk_b64)?;
        Ok(PublicIdentity { user_id, ed25519, mldsa65 })
    }
}

/// Every error reply: `{error, detail}`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "server", derive(ToSchema))]
pub struct ErrorBody {
    /// A stable machine-readable kind (`bad_request`, `bad_signature`, `quota_exceeded`, …).
    pub error: String,
    /// What went wrong and what to do, for a human.
    pub detail: String,
}

/// A user id field, or a 400 naming the field.
pub fn parse_user(field: &str, text: &str) -> Result<UserId, ServerError> {
    text.parse().map_err(|_| bad(format!("{field} {text:?} is not a UUID (8-4-4-4-12 hex digits)")))
}

fn bad(msg: String) -> ServerError {
    ServerError::BadRequest(msg)
}

fn decode(field: &str, b64: &str) -> Result<Vec<u8>, ServerError> {
    STANDARD.decode(b64).map_err(|e| bad(format!("{field} is not standard base64: {e}")))
}

/// Decode base64 into a bounded byte vector; too long for the field → `BadLength`.
fn decode_into<const N: usize>(field: &'static str, b64: &str) -> Result<heapless::Vec<u8, N>, ServerError> {
    // Refuse before decoding anything far larger than the field can hold.
    if b64.len() > N.div_ceil(3) * 4 + 4 {
        return Err(aqm_core::Error::BadLength { what: field, expected: N, got: b64.len() / 4 * 3 }.into());
    }
    let bytes = decode(field, b64)?;
    heapless::Vec::from_slice(&bytes)
        .map_err(|_| aqm_core::Error::BadLength { what: field, expected: N, got: bytes.len() }.into())
}
