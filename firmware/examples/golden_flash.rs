//! Writes `firmware/tests/golden/flash-v3.bin`: a flash format v3 vault (identity, a SILVER and
//! two BRONZE coins, one of them opened) on the small layout `tests/flash_format.rs` opens, made
//! by the firmware itself from fixed seeds. Regenerate only when the format version changes
//! (then keep the old file as a refused format and bump the test). `flash-v2.bin` was written by
//! this example at format 2 (commit cea7848).
//!
//! ```text
//! cargo run -p aqm-firmware --features std --example golden_flash
//! ```

use aqm_core::crypto::{DeviceKey, encapsulate};
use aqm_core::{Policy, Tier};
use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
use aqm_firmware::host::InProcess;
use aqm_firmware::{Client, Device, FlashVault, NoButton, NoLed, VaultLayout};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn main() {
    // 2 record pages, 2 slot pages, the erase journal: as `tests/flash_format.rs` opens it.
    let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 2, 2).with_erase_log(4 * PAGE_SIZE as u32);
    let flash = RamFlash::new(vec![0xFF; 5 * PAGE_SIZE]);
    let vault: FlashVault<_, 32> = FlashVault::open(flash, layout, Policy::DEFAULT).expect("layout");
    let device = Device::new(vault, DeviceKey::from_bytes([0x11; 32]), ChaCha20Rng::seed_from_u64(1), NoLed, NoButton)
        .expect("first boot");
    let mut client = Client::new(InProcess::new(device));
    let now = 1_700_000_000;
    let mut coins = Vec::new();
    client.mint(now, Tier::Silver, 1, |c| coins.push(c)).expect("mint");
    client.mint(now, Tier::Bronze, 2, |c| coins.push(c)).expect("mint");
    let (ct, _) = encapsulate(Tier::Bronze, &coins[1].public_key, &mut ChaCha20Rng::seed_from_u64(2)).expect("kem");
    client.open(now + 1, coins[1].key_id, &ct).expect("open");
    println!("user id {}", client.info(now).expect("info").identity.user_id);
    for c in &coins {
        println!("{} {} expires at {}", c.tier, c.key_id, c.expires_at);
    }
    let flash = client.into_inner().into_device().into_vault().into_flash();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/flash-v3.bin");
    std::fs::write(path, flash.as_bytes()).expect("write the golden image");
    println!("wrote {path}");
}
