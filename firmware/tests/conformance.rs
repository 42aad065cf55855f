//! The core's vault conformance kit, run on [`FlashVault`] over an emulated NOR flash
//! (nRF52840 geometry: 4 KiB pages, 4-byte words; 6 pages of records, 10 pages of secrets).

use aqm_core::Policy;
use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
use aqm_firmware::{FlashVault, VaultLayout};

fn fresh(policy: Policy) -> FlashVault<RamFlash<Vec<u8>>, 256> {
    let flash = RamFlash::new(vec![0xFF; 16 * PAGE_SIZE]);
    FlashVault::open(flash, VaultLayout::contiguous(0, PAGE_SIZE as u32, 6, 10), policy).expect("layout fits the flash")
}

// A secure element holds a vault only (its host keeps sessions, pins and the inventory), and
// the vault sits behind a RefCell over one flash: not `Sync`, so no concurrency cases.
aqm_core::conformance!(fresh; vault; nosync);
