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

/// Last-resort coins minted per tier for every party.
pub const LAST_RESORT_POOL: usize = 2;

/// One user with an identity and pre-minted coins of every tier.
pub struct Party {
    /// The user's identity (signs the coins).
    pub identity: Identity,
    proof: RegistrationProof,
    coins: [Vec<MintedCoin>; 3],
    /// Minted on first use: most cases never ask, and a GOLD mint costs an ML-DSA signature.
    last_resort: OnceLock<[Vec<MintedCoin>; 3]>,
    /// Seeds [`Party::last_resort`]'s mint, so every run sees the same coins.
    last_resort_seed: u64,
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
        // From the user id, not the shared RNG: the other fixtures stay what they always were.
        let id = identity.user_id().0;
        let last_resort_seed = u64::from_le_bytes([id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7]]);
        Party { identity, proof, coins, last_resort: OnceLock::new(), last_resort_seed }
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

    /// The `i`-th last-resort coin of `tier` (`i` < [`LAST_RESORT_POOL`]), minted at
    /// `T0 + i` days, so a later one replaces an earlier one.
    pub fn minted_last_resort(&self, tier: Tier, i: usize) -> &MintedCoin {
        let pool = &self.last_resort.get_or_init(|| self.mint_last_resort())[tier.index()];
        pool.get(i).unwrap_or_else(|| {
            panic!("fixture pool holds {} last-resort {tier} coins, case asked for #{i}", pool.len())
        })
    }

    /// [`LAST_RESORT_POOL`] last-resort coins per tier, the `i`-th minted at `T0 + i` days.
    fn mint_last_resort(&self) -> [Vec<MintedCoin>; 3] {
        let mut rng = rng(self.last_resort_seed);
        let device_key = &fixtures().device_key;
        Tier::ALL.map(|tier| {
            (0..LAST_RESORT_POOL)
                .map(|i| {
                    match coin::mint_last_resort(&self.identity, tier, device_key, T0 + i as u64 * DAY, &mut rng) {
                        Ok(m) => m,
                        Err(e) => panic!("minting a {tier} last-resort fixture coin failed: {e}"),
                    }
                })
                .collect()
        })
    }

    /// The public half of the `i`-th last-resort coin of `tier`.
    pub fn last_resort_coin(&self, tier: Tier, i: usize) -> &PublicCoin {
        &self.minted_last_resort(tier, i).public
    }

    /// The vault entry of the `i`-th last-resort coin of `tier`, as minted.
    pub fn last_resort_entry(&self, tier: Tier, i: usize) -> VaultEntry {
        self.minted_last_resort(tier, i).vault.clone()
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
