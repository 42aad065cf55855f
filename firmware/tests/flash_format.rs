//! The vault's format at rest (docs/architecture.md §4): golden images of each format, the supported one opens
//! and an older one is refused with both versions named and nothing written; expiry follows the
//! stored `expires_at`, across reboots.
//!
//! `golden/flash-v3.bin` is written by `examples/golden_flash.rs`; `golden/flash-v2.bin` was
//! written by the same example at format 2 (commit cea7848), `golden/flash-v1.bin` by the
//! format-v1 firmware (commit 7a3ff2c), with the same seeds and layout (2 record pages, 2 slot
//! pages; v2 and v3 with the erase journal page): an identity, a SILVER and two BRONZE coins,
//! one of them opened.

use aqm_core::crypto::{DeviceKey, SealedSecret, SecretSeed};
use aqm_core::store::VaultStore;
use aqm_core::vault::{PurgeReport, VaultEntry};
use aqm_core::{Error as CoreError, KeyId, Policy, Tier, TierCounts};
use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
use aqm_firmware::host::InProcess;
use aqm_firmware::{Client, Device, Error, FLASH_FORMAT, FlashVault, NoButton, NoLed, VaultLayout};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const GOLDEN_V1: &[u8] = include_bytes!("golden/flash-v1.bin");
const GOLDEN_V2: &[u8] = include_bytes!("golden/flash-v2.bin");
const GOLDEN_V3: &[u8] = include_bytes!("golden/flash-v3.bin");
const GOLDEN_USER: &str = "9a374450-4560-439e-8670-b7a17d492b27";

fn small() -> VaultLayout {
    VaultLayout::contiguous(0, PAGE_SIZE as u32, 2, 2)
}

#[test]
fn golden_v3_opens_with_its_identity_and_coins() {
    assert_eq!(FLASH_FORMAT, 3);
    let flash = RamFlash::new(GOLDEN_V3.to_vec());
    let layout = small().with_erase_log(4 * PAGE_SIZE as u32);
    let vault: FlashVault<_, 32> = FlashVault::open(flash, layout, Policy::DEFAULT).unwrap();
    let device = Device::new(vault, DeviceKey::from_bytes([0x11; 32]), ChaCha20Rng::seed_from_u64(9), NoLed, NoButton)
        .expect("a v3 image boots");
    assert_eq!(device.identity().user_id().to_string(), GOLDEN_USER);
    let mut client = Client::new(InProcess::new(device));
    let s = client.status(1_700_000_002).unwrap();
    assert_eq!((s.stats.active, s.stats.total_burned, s.stats.total_expired), (TierCounts([0, 1, 1]), 1, 0));
    // Booting a clean image repairs nothing: not a byte changed.
    let flash = client.into_inner().into_device().into_vault().into_flash();
    assert_eq!(flash.as_bytes(), GOLDEN_V3);
}

/// Records written before last-resort coins (no trailing kind byte) read as one-time coins.
#[test]
fn golden_v3_records_read_as_one_time_coins() {
    use aqm_core::coin::CoinKind;
    use aqm_core::store::VaultStore;
    let layout = small().with_erase_log(4 * PAGE_SIZE as u32);
    let vault: FlashVault<_, 32> =
        FlashVault::open(RamFlash::new(GOLDEN_V3.to_vec()), layout, Policy::DEFAULT).unwrap();
    let mut ids = Vec::new();
    vault.active_ids(None, &mut |id| ids.push(id)).unwrap();
    assert!(!ids.is_empty());
    for id in ids {
        let e = vault.get(&id, 1_700_000_002).unwrap().expect("an active v3 entry");
        assert_eq!(e.kind, CoinKind::OneTime, "{id}");
    }
}

/// Golden images of the formats this firmware refuses: (version, image, whether the image has
/// the erase journal page after the 4 vault pages).
const REFUSED: [(u32, &[u8], bool); 2] = [(1, GOLDEN_V1, false), (2, GOLDEN_V2, true)];

#[test]
fn older_golden_images_are_refused_naming_both_versions_and_nothing_is_written() {
    for (version, image, has_log) in REFUSED {
        // With and without the journal page the boards use (for v1, a page past the image).
        for with_log in [false, true] {
            let mut mem = image.to_vec();
            let mut layout = small();
            if with_log {
                if !has_log {
                    mem.extend(std::iter::repeat_n(0xFF, PAGE_SIZE));
                }
                layout = layout.with_erase_log(4 * PAGE_SIZE as u32);
            }
            let before = mem.clone();
            let vault: FlashVault<_, 32> = FlashVault::open(RamFlash::new(mem), layout, Policy::DEFAULT).unwrap();
            let err = vault.recover().unwrap_err();
            assert_eq!(err, Error::FlashFormat { found: version, supported: 3 });
            let text = err.to_string();
            assert!(text.contains(&format!("format v{version}")) && text.contains("format v3"), "{text}");
            // Every later call refuses the same way, and the flash is untouched.
            assert_eq!(vault.stats().unwrap_err(), err);
            assert_eq!(vault.identity().unwrap_err(), err);
            assert_eq!(vault.into_flash().as_bytes(), &before[..]);
        }
        // The device refuses to boot on it.
        let vault: FlashVault<_, 32> =
            FlashVault::open(RamFlash::new(image.to_vec()), small(), Policy::DEFAULT).unwrap();
        let err = Device::new(vault, DeviceKey::from_bytes([0x11; 32]), ChaCha20Rng::seed_from_u64(9), NoLed, NoButton)
            .err()
            .expect("an older image does not boot");
        assert_eq!(err, Error::FlashFormat { found: version, supported: 3 });
    }
}

#[test]
fn an_erased_flash_is_formatted_before_anything_else() {
    let vault: FlashVault<_, 32> =
        FlashVault::open(RamFlash::new(vec![0xFF; 4 * PAGE_SIZE]), small(), Policy::DEFAULT).unwrap();
    vault.recover().unwrap();
    let flash = vault.into_flash();
    assert!(flash.as_bytes().iter().any(|b| *b != 0xFF), "the format record is written at first boot");
    // ... and an image holding only the format record reopens as an empty v3 vault.
    let vault: FlashVault<_, 32> = FlashVault::open(flash, small(), Policy::DEFAULT).unwrap();
    assert_eq!(vault.stats().unwrap(), Default::default());
    assert_eq!(vault.identity().unwrap(), None);
}

/// An entry whose expiry is NOT mint + 30 days: only a vault that keeps `expires_at` gets it right.
fn entry(key: u8, created_at: u64, expires_at: u64) -> VaultEntry {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(key));
    let dk = DeviceKey::from_bytes([0x22; 32]);
    let id = KeyId([key; 16]);
    let sealed = SealedSecret::seal(&dk, &id, Tier::Bronze, &SecretSeed::from_slice(&[key; 32]).unwrap(), &mut rng);
    VaultEntry::new_active(id, Tier::Bronze, aqm_core::coin::CoinKind::OneTime, sealed.unwrap(), created_at, expires_at)
}

#[test]
fn expiry_is_the_stored_expires_at_plus_the_grace_across_reboots() {
    let policy = Policy { vault_grace_secs: 50, ..Policy::DEFAULT };
    let layout = small().with_erase_log(4 * PAGE_SIZE as u32);
    let open = |flash| FlashVault::<_, 32>::open(flash, layout.clone(), policy.clone()).unwrap();
    let vault = open(RamFlash::new(vec![0xFF; 5 * PAGE_SIZE]));
    let (short, long) = (entry(1, 1_000, 1_100), entry(2, 1_000, 5_000));
    vault.put(&short).unwrap();
    vault.put(&long).unwrap();
    // A reboot: the deadline comes from the record in flash.
    let vault = open(vault.into_flash());
    assert_eq!(vault.get(&short.key_id, 1_149).unwrap().as_ref(), Some(&short));
    assert_eq!(vault.get(&short.key_id, 1_150).unwrap(), None);
    let refused = vault.burn(&short.key_id, 1_150).unwrap_err();
    assert_eq!(refused, Error::Core(CoreError::CoinExpired));
    assert_eq!(vault.purge(1_149).unwrap(), PurgeReport::default());
    assert_eq!(vault.purge(1_150).unwrap(), PurgeReport { expired: 1, deleted_burned: 0 });
    let vault = open(vault.into_flash());
    assert_eq!(vault.status(&short.key_id).unwrap(), None);
    assert_eq!(vault.get(&long.key_id, 5_049).unwrap().as_ref(), Some(&long));
    let s = vault.stats().unwrap();
    assert_eq!((s.active, s.total_expired), (TierCounts([0, 0, 1]), 1));
    // The expired secret is gone from the raw flash.
    let flash = vault.into_flash();
    let ct = &short.sealed.ciphertext[..16];
    assert!(!flash.as_bytes().windows(16).any(|w| w == ct), "an expired secret is still in flash");
}
