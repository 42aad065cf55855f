//! Deterministic fixtures: three identities and pools of real coins, minted once per process from
//! a seeded ChaCha20 RNG and shared by every case (GOLD minting costs an ML-DSA-65 signature).

use std::sync::OnceLock;
use std::vec::Vec;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::coin::{self, MintedCoin, PublicCoin};
use crate::crypto::{DeviceKey, Identity, RegistrationProof};
use crate::inventory::ContactMeta;
use crate::vault::VaultEntry;
use crate::{Error, Priority, Tier, UnixSeconds, UserId};

/// A fixed, plausible "now" the cases start from (2023-11-14).
pub const T0: UnixSeconds = 1_700_000_000;
/// One day in seconds.
pub const DAY: u64 = 86_400;

/// Coins minted per tier (GOLD, SILVER, BRONZE) for [`Fixtures::bob`].
pub const BOB_POOL: [usize; 3] = [12, 16, 8];
/// Coins minted per tier for [`Fixtures::carol`].
pub const CAROL_POOL: [usize; 3] = [2, 16, 8];
/// Coins minted per tier for [`Fixtures::dave`].
pub const DAVE_POOL: [usize; 3] = [2, 4, 4];

/// One user with an identity and pre-minted coins of every tier.
pub struct Party {
    /// The user's identity (signs the coins).
    pub identity: Identity,
    proof: RegistrationProof,
    coins: [Vec<MintedCoin>; 3],
}

impl Party {
    fn mint(rng: &mut ChaCha20Rng, device_key: &DeviceKey, pool: [usize; 3]) -> Party {
        let identity = Identity::generate(rng);
        let coins = Tier::ALL.map(|tier| {
            (0..pool[tier.index()])
                .map(|_| match coin::mint(&identity, tier, device_key, T0, rng) {
                    Ok(m) => m,
                    Err(e) => panic!("minting a {tier} fixture coin failed: {e}"),
                })
                .collect()
        });
        let proof = match identity.registration_proof(rng) {
            Ok(p) => p,
            Err(e) => panic!("fixture registration proof: {e}"),
        };
        Party { identity, proof, coins }
    }

    /// The identity's proof of possession, for [`crate::store::DirectoryStore::register_identity`].
    pub fn proof(&self) -> &RegistrationProof {
        &self.proof
    }

    /// The user id.
    pub fn id(&self) -> UserId {
        self.identity.user_id()
    }

    /// The `i`-th minted coin of `tier` (public half and vault entry), distinct for every
    /// `(tier, i)`. Panics past the pool size, which is a bug in the calling case.
    pub fn minted(&self, tier: Tier, i: usize) -> &MintedCoin {
        let pool = &self.coins[tier.index()];
        pool.get(i).unwrap_or_else(|| panic!("fixture pool holds {} {tier} coins, case asked for #{i}", pool.len()))
    }

    /// The public half of the `i`-th coin of `tier`.
    pub fn coin(&self, tier: Tier, i: usize) -> &PublicCoin {
        &self.minted(tier, i).public
    }

    /// The vault entry of the `i`-th coin of `tier`, re-dated to a mint at `created_at` (its
    /// expiry moves with it).
    pub fn vault_entry(&self, tier: Tier, i: usize, created_at: UnixSeconds) -> VaultEntry {
        let mut e = self.minted(tier, i).vault.clone();
        e.created_at = created_at;
        e.expires_at = crate::protocol::coin_expiry(created_at);
        e
    }

    /// How many coins of `tier` the pool holds.
    pub fn pool(&self, tier: Tier) -> usize {
        self.coins[tier.index()].len()
    }

    /// This user as a contact of `priority`, registered at `now`.
    pub fn as_contact(&self, priority: Priority, now: UnixSeconds) -> ContactMeta {
        match ContactMeta::new(self.id(), priority, "fixture", now) {
            Ok(m) => m,
            Err(e) => panic!("fixture contact: {e}"),
        }
    }
}

/// Everything the cases share.
pub struct Fixtures {
    /// The device key every fixture vault entry is sealed under.
    pub device_key: DeviceKey,
    /// The main contact / coin owner.
    pub bob: Party,
    /// A second contact (usually a MATE).
    pub carol: Party,
    /// A third user, for foreign coins.
    pub dave: Party,
}

/// The fixtures, minted on first use (seed fixed, so every run sees the same coins).
pub fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(0xA04D_2026);
        let device_key = DeviceKey::random(&mut rng);
        let bob = Party::mint(&mut rng, &device_key, BOB_POOL);
        let carol = Party::mint(&mut rng, &device_key, CAROL_POOL);
        let dave = Party::mint(&mut rng, &device_key, DAVE_POOL);
        Fixtures { device_key, bob, carol, dave }
    })
}

/// A deterministic RNG for a case that needs fresh randomness (ids, keys).
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Unwrap a store result, failing the test with the store's own message.
#[track_caller]
pub fn must<T, E: core::fmt::Display>(r: Result<T, E>, what: &str) -> T {
    match r {
        Ok(v) => v,
        Err(e) => panic!("{what}: unexpected error: {e}"),
    }
}

/// Assert that a store result is the core refusal `want` (through [`crate::StoreError::as_core`]).
#[track_caller]
pub fn expect_core<T: core::fmt::Debug, E: crate::StoreError>(r: Result<T, E>, want: Error, what: &str) {
    match r {
        Ok(v) => panic!("{what}: expected {want:?}, got Ok({v:?})"),
        Err(e) => assert_eq!(e.as_core(), Some(&want), "{what}: expected {want:?}, got {e:?} ({e})"),
    }
}
