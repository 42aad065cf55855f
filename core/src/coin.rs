//! Coins: KEM key pairs whose public half is signed by the owner's identity. One-time coins open
//! once; each owner also keeps one last-resort coin per tier for when the directory runs dry
//! (docs/protocol.md §2.1).

use rand_core::CryptoRng;
use serde::{Deserialize, Serialize};

use crate::crypto::sizes::MAX_PUBLIC_KEY;
use crate::crypto::{self, DeviceKey, Identity, PublicIdentity, PublicKeyBytes, SealedSecret};
use crate::vault::VaultEntry;
use crate::{Error, KeyId, Policy, Tier, UnixSeconds, UserId, protocol};

pub use crate::crypto::SignatureBytes;

/// Domain separation tag of the coin signature (docs/protocol.md).
pub const COIN_SIGNATURE_DOMAIN: &[u8] = b"AQM-coin-v2";

/// Bytes of the largest signed coin message.
pub const MAX_SIGNED: usize = COIN_SIGNATURE_DOMAIN.len() + 16 + 16 + 1 + 1 + 8 + MAX_PUBLIC_KEY;

/// What kind of coin this is. The byte is signed, so nobody but the owner can turn a one-time
/// coin into a last-resort one or back.
///
/// ```
/// use aqm_core::{coin::CoinKind, Error};
/// assert_eq!(CoinKind::try_from(0u8), Ok(CoinKind::OneTime));
/// assert_eq!(CoinKind::try_from(1u8), Ok(CoinKind::LastResort));
/// assert_eq!(CoinKind::try_from(2u8), Err(Error::UnsupportedCoinKind(2)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
#[repr(u8)]
pub enum CoinKind {
    /// Handed out at most once, burned when opened.
    OneTime = 0,
    /// Handed out only when the owner has no one-time coin of the tier left, to any number of
    /// senders; opening it does not burn it, and the vault refuses a replayed first message
    /// until it expires (7 days, [`protocol::LAST_RESORT_LIFETIME_SECS`]).
    LastResort = 1,
}

impl CoinKind {
    /// The pinned byte.
    pub const fn to_byte(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for CoinKind {
    type Error = Error;
    fn try_from(b: u8) -> Result<Self, Error> {
        match b {
            0 => Ok(CoinKind::OneTime),
            1 => Ok(CoinKind::LastResort),
            other => Err(Error::UnsupportedCoinKind(other)),
        }
    }
}

impl From<CoinKind> for u8 {
    fn from(k: CoinKind) -> u8 {
        k.to_byte()
    }
}

/// The public half of a coin, as published to the directory and cached by contacts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicCoin {
    /// The user who minted the coin and holds its secret.
    pub owner: UserId,
    /// The coin's key id.
    pub key_id: KeyId,
    /// The coin's tier.
    pub tier: Tier,
    /// One-time (the only kind v2 accepts).
    pub kind: CoinKind,
    /// Unix seconds after which nobody may use the coin (mint time + 30 days); signed.
    pub expires_at: UnixSeconds,
    /// The KEM public key.
    pub public_key: PublicKeyBytes,
    /// The owner's signature field over [`PublicCoin::signed_message`]: `ed25519 ‖ mldsa65` for
    /// GOLD, Ed25519 for SILVER and BRONZE.
    pub signature: SignatureBytes,
}

impl PublicCoin {
    /// `"AQM-coin-v2" ‖ owner ‖ key id ‖ tier byte ‖ kind byte ‖ expires_at (u64 BE) ‖ public
    /// key`, the bytes the owner signs.
    pub fn signed_message(
        owner: &UserId,
        key_id: &KeyId,
        tier: Tier,
        kind: CoinKind,
        expires_at: UnixSeconds,
        public_key: &PublicKeyBytes,
    ) -> heapless::Vec<u8, MAX_SIGNED> {
        let mut m = heapless::Vec::new();
        // MAX_SIGNED is the sum of the fixed parts and the largest `PublicKeyBytes`, so none of
        // these pushes can fail.
        let _ = m.extend_from_slice(COIN_SIGNATURE_DOMAIN);
        let _ = m.extend_from_slice(owner.as_bytes());
        let _ = m.extend_from_slice(key_id.as_bytes());
        let _ = m.push(tier.to_byte());
        let _ = m.push(kind.to_byte());
        let _ = m.extend_from_slice(&expires_at.to_be_bytes());
        let _ = m.extend_from_slice(public_key);
        m
    }

    /// This coin's signed message.
    pub fn message(&self) -> heapless::Vec<u8, MAX_SIGNED> {
        Self::signed_message(&self.owner, &self.key_id, self.tier, self.kind, self.expires_at, &self.public_key)
    }

    /// Check sizes, that `owner` minted the coin, and its signature (both halves for GOLD).
    /// Says nothing about expiry: see [`PublicCoin::verify_fresh`].
    ///
    /// ```
    /// use aqm_core::{coin, crypto::{DeviceKey, Identity}, Error, Tier};
    /// let mut rng = rand::rng();
    /// let bob = Identity::generate(&mut rng);
    /// let mallory = Identity::generate(&mut rng);
    /// let dk = DeviceKey::random(&mut rng);
    /// let minted = coin::mint(&bob, Tier::Bronze, &dk, 0, &mut rng).unwrap();
    /// assert!(minted.public.verify(bob.public()).is_ok());
    /// assert_eq!(minted.public.verify(mallory.public()), Err(Error::WrongOwner));
    /// ```
    pub fn verify(&self, owner: &PublicIdentity) -> Result<(), Error> {
        if self.owner != owner.user_id {
            return Err(Error::WrongOwner);
        }
        let t = self.tier;
        if self.public_key.len() != t.public_key_len() {
            return Err(Error::BadLength {
                what: "coin public key",
                expected: t.public_key_len(),
                got: self.public_key.len(),
            });
        }
        if self.signature.len() != t.signature_len() {
            return Err(Error::BadLength {
                what: "coin signature",
                expected: t.signature_len(),
                got: self.signature.len(),
            });
        }
        owner.verify_field(&self.message(), &self.signature, t.hybrid_signature())
    }

    /// [`PublicCoin::verify`], and the coin must still be fresh at `now` under `policy`
    /// (`now + coin_min_life < expires_at`, else [`Error::CoinExpired`]).
    pub fn verify_fresh(&self, owner: &PublicIdentity, policy: &Policy, now: UnixSeconds) -> Result<(), Error> {
        self.check_fresh(policy, now)?;
        self.verify(owner)
    }

    /// Whether the coin may still be selected or handed out at `now`.
    pub fn check_fresh(&self, policy: &Policy, now: UnixSeconds) -> Result<(), Error> {
        if policy.coin_is_fresh(self.expires_at, now) { Ok(()) } else { Err(Error::CoinExpired) }
    }

    /// Whether this is the owner's last-resort coin (never cached, not burned by opening).
    pub fn is_last_resort(&self) -> bool {
        self.kind == CoinKind::LastResort
    }

    /// Bytes this coin occupies in an inventory (key, signature, ids, tier, kind and expiry).
    pub fn stored_bytes(&self) -> u64 {
        stored_bytes(self.tier)
    }
}

/// Bytes a cached coin of `tier` occupies: public key + signature + owner + key id + tier byte
/// + kind byte + expiry.
pub const fn stored_bytes(tier: Tier) -> u64 {
    (tier.public_key_len() + tier.signature_len() + 16 + 16 + 1 + 1 + 8) as u64
}

/// A freshly minted coin: the public half to publish, the sealed private half for the vault.
#[derive(Clone, Debug)]
pub struct MintedCoin {
    /// Publish this to the directory.
    pub public: PublicCoin,
    /// Store this in the owner's vault.
    pub vault: VaultEntry,
}

/// Mint one one-time coin of `tier` for `identity` at `now`: generate the key pair, sign the
/// public half with expiry `now` + 30 days ([`protocol::COIN_LIFETIME_SECS`]), seal the secret
/// seed under `device_key`.
pub fn mint<R: CryptoRng + ?Sized>(
    identity: &Identity,
    tier: Tier,
    device_key: &DeviceKey,
    now: UnixSeconds,
    rng: &mut R,
) -> Result<MintedCoin, Error> {
    mint_kind(identity, tier, CoinKind::OneTime, protocol::coin_expiry(now), device_key, now, rng)
}

/// Mint the owner's last-resort coin of `tier` at `now`: as [`mint`], but of kind
/// [`CoinKind::LastResort`] and expiring `now` + 7 days ([`protocol::LAST_RESORT_LIFETIME_SECS`]).
/// Keep one per published tier and mint the next when [`crate::vault::last_resort_due`] says so.
pub fn mint_last_resort<R: CryptoRng + ?Sized>(
    identity: &Identity,
    tier: Tier,
    device_key: &DeviceKey,
    now: UnixSeconds,
    rng: &mut R,
) -> Result<MintedCoin, Error> {
    mint_kind(identity, tier, CoinKind::LastResort, protocol::last_resort_expiry(now), device_key, now, rng)
}

fn mint_kind<R: CryptoRng + ?Sized>(
    identity: &Identity,
    tier: Tier,
    kind: CoinKind,
    expires_at: UnixSeconds,
    device_key: &DeviceKey,
    now: UnixSeconds,
    rng: &mut R,
) -> Result<MintedCoin, Error> {
    let key_id = KeyId::random(rng);
    let (seed, public_key) = crypto::generate_keypair(tier, rng);
    let owner = identity.user_id();
    let msg = PublicCoin::signed_message(&owner, &key_id, tier, kind, expires_at, &public_key);
    let signature = identity.sign_field(&msg, tier.hybrid_signature(), rng)?;
    let sealed = SealedSecret::seal(device_key, &key_id, tier, &seed, rng)?;
    Ok(MintedCoin {
        public: PublicCoin { owner, key_id, tier, kind, expires_at, public_key, signature },
        vault: VaultEntry::new_active(key_id, tier, kind, sealed, now, expires_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_tier_mints_verifies_and_opens() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
        let bob = Identity::generate(&mut rng);
        let dk = DeviceKey::random(&mut rng);
        for tier in Tier::ALL {
            let m = mint(&bob, tier, &dk, 100, &mut rng).unwrap();
            m.public.verify(bob.public()).unwrap();
            assert_eq!(m.public.signature.len(), tier.signature_len());
            assert_eq!(m.public.expires_at, 100 + protocol::COIN_LIFETIME_SECS);
            assert_eq!(m.vault.expires_at, m.public.expires_at);
            let p = Policy::DEFAULT;
            assert!(m.public.verify_fresh(bob.public(), &p, 100).is_ok());
            let late = m.public.expires_at - p.coin_min_life_secs;
            assert_eq!(m.public.verify_fresh(bob.public(), &p, late), Err(Error::CoinExpired));
            let seed = m.vault.sealed.open(&dk, &m.public.key_id, tier).unwrap();
            let (ct, ss) = crypto::encapsulate(tier, &m.public.public_key, &mut rng).unwrap();
            assert_eq!(crypto::decapsulate(tier, &seed, &ct).unwrap(), ss);
        }
    }

    #[test]
    fn forgeries_are_refused() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(12);
        let bob = Identity::generate(&mut rng);
        let dk = DeviceKey::random(&mut rng);
        for tier in Tier::ALL {
            let m = mint(&bob, tier, &dk, 0, &mut rng).unwrap();
            let mut c = m.public.clone();
            c.public_key[3] ^= 1;
            assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            let mut c = m.public.clone();
            c.signature[10] ^= 1;
            assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            let mut c = m.public.clone();
            c.key_id = KeyId::random(&mut rng);
            assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            let mut c = m.public.clone();
            c.signature.pop();
            assert!(matches!(c.verify(bob.public()), Err(Error::BadLength { .. })));
            // Expiry and kind are signed.
            let mut c = m.public.clone();
            c.expires_at += 1;
            assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            if tier == Tier::Gold {
                // Hybrid: a valid Ed25519 half does not save a bad ML-DSA-65 half, nor the reverse.
                let mut c = m.public.clone();
                c.signature[64 + 100] ^= 1;
                assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
                let mut c = m.public.clone();
                c.signature[0] ^= 1;
                assert_eq!(c.verify(bob.public()), Err(Error::BadSignature));
            }
            // A coin re-labelled with another tier of equal signature scheme is refused too.
            if tier == Tier::Silver {
                let mut c = m.public.clone();
                c.tier = Tier::Bronze;
                assert!(matches!(c.verify(bob.public()), Err(Error::BadLength { .. })));
            }
        }
    }
}
