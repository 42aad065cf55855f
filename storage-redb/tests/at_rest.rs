//! At rest: the database file never holds a secret in clear. After minting coins of every tier
//! into the vault, caching public coins, saving sessions and burning some keys, the raw bytes of
//! the file contain none of the coins' secret seeds (recovered by opening the sealed secrets with
//! the device key), no identity seed and not the device key, while they do contain the public keys
//! and sealed blobs (so the scan is looking at real, uncompressed records).

use aqm_core::coin::{self, MintedCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::store::{Direction, InventoryStore, SessionBlob, SessionStore, VaultStore};
use aqm_core::{Policy, Priority, Tier};
use aqm_storage_redb::RedbStore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn database_file_holds_no_secret_in_clear() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vault.redb");
    let mut rng = ChaCha20Rng::seed_from_u64(0x5EC2E7);
    let bob = Identity::generate(&mut rng);
    let alice = Identity::generate(&mut rng);
    let dk = DeviceKey::random(&mut rng);
    let t0 = 1_700_000_000;

    let mut minted: Vec<MintedCoin> = Vec::new();
    {
        let store = RedbStore::open(&path, Policy::DEFAULT).expect("open");
        store
            .register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", t0).expect("meta"))
            .expect("register");
        for (tier, n) in [(Tier::Gold, 3), (Tier::Silver, 3), (Tier::Bronze, 2)] {
            for _ in 0..n {
                let m = coin::mint(&bob, tier, &dk, t0, &mut rng).expect("mint");
                store.put(&m.vault).expect("put");
                // Alice's side of the same device file: cache the public half.
                if store.counts(&bob.user_id()).expect("counts").get(tier) < Policy::DEFAULT.cap(Priority::Bestie, tier)
                {
                    store.store_coin(&bob.user_id(), &m.public, t0).expect("store");
                }
                minted.push(m);
            }
        }
        let blob = SessionBlob::from_slice(&[0xA5; 300]).expect("blob");
        store.save_session(&alice.user_id(), Direction::Send, &blob, None).expect("save");
        store
            .burn_and_save_session(&minted[0].public.key_id, t0 + 5, &alice.user_id(), &blob, None)
            .expect("burn+save");
        store.burn(&minted[3].public.key_id, t0 + 5).expect("burn");
        store.purge(t0 + 3600).expect("purge");
    }

    let bytes = std::fs::read(&path).expect("read database file");
    for m in &minted {
        let seed = m.vault.sealed.open(&dk, &m.public.key_id, m.public.tier).expect("open sealed seed");
        let s = seed.as_bytes();
        assert_eq!(s.len(), m.public.tier.seed_len());
        assert!(!contains(&bytes, s), "{} seed of {} found in clear", m.public.tier, m.public.key_id);
        // No 16-byte stretch of a seed either (e.g. half of ML-KEM's d‖z).
        for chunk in s.chunks(16) {
            assert!(!contains(&bytes, chunk), "part of a {} seed found in clear", m.public.tier);
        }
    }
    for id in [&bob, &alice] {
        assert!(!contains(&bytes, &id.secret().ed25519_seed), "identity Ed25519 seed in the file");
        assert!(!contains(&bytes, &id.secret().mldsa65_seed), "identity ML-DSA seed in the file");
    }
    assert!(!contains(&bytes, &dk.to_bytes()), "device key in the file");

    // Positive control: the scan sees real records.
    let unburned = &minted[1];
    assert!(contains(&bytes, &unburned.public.public_key), "public key of a cached coin not found");
    assert!(contains(&bytes, &unburned.vault.sealed.ciphertext), "sealed seed of an ACTIVE key not found");
}
