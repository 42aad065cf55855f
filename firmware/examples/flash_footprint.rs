//! Bytes of NOR flash one stored coin costs in the flash vault, measured by programming an
//! emulated flash (nRF52840 geometry) and counting the bytes each step programs.
//!
//! ```text
//! cargo run -p aqm-firmware --features std --example flash_footprint
//! ```

use aqm_core::crypto::{DeviceKey, SealedSecret, SecretSeed};
use aqm_core::protocol::coin_expiry;
use aqm_core::store::VaultStore;
use aqm_core::vault::VaultEntry;
use aqm_core::{KeyId, Policy, Tier};
use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
use aqm_firmware::{FlashVault, SLOT_SIZE, VaultLayout};
use rand::{Rng, SeedableRng};

fn main() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let dk = DeviceKey::random(&mut rng);
    let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 8, 16);
    let vault: FlashVault<_, 256> =
        FlashVault::open(RamFlash::new(vec![0xFF; 24 * PAGE_SIZE]), layout, Policy::DEFAULT).expect("layout");
    vault.recover().expect("fresh flash");
    let written = |v: &FlashVault<RamFlash<Vec<u8>>, 256>| v.with_flash(|f| f.stats().bytes_written).expect("idle");
    let now = 1_700_000_000;
    println!("| Tier | Secret slot | Record (header + key + value) | Flash per stored coin | Burn writes |");
    println!("|------|-------------|-------------------------------|-----------------------|-------------|");
    for tier in Tier::ALL {
        let n = 40u64;
        let (mut put_bytes, mut burn_bytes) = (0, 0);
        for _ in 0..n {
            let key_id = KeyId::random(&mut rng);
            let mut seed = [0u8; 64];
            rng.fill_bytes(&mut seed);
            let seed = SecretSeed::from_slice(&seed[..tier.seed_len()]).expect("seed length");
            let sealed = SealedSecret::seal(&dk, &key_id, tier, &seed, &mut rng).expect("seal");
            let before = written(&vault);
            vault
                .put(&VaultEntry::new_active(
                    key_id,
                    tier,
                    aqm_core::coin::CoinKind::OneTime,
                    sealed,
                    now,
                    coin_expiry(now),
                ))
                .expect("put");
            let mid = written(&vault);
            vault.burn(&key_id, now).expect("burn");
            put_bytes += mid - before;
            burn_bytes += written(&vault) - mid;
        }
        vault.purge(now + 3600).expect("purge");
        let per_coin = put_bytes / n;
        println!(
            "| {tier} | {SLOT_SIZE} B | {} B | {per_coin} B | {} B |",
            per_coin - SLOT_SIZE as u64,
            burn_bytes / n
        );
    }
}
