//! The serial protocol end to end, with the firmware running in-process over an emulated flash.

use aqm_core::crypto::{DeviceKey, encapsulate};
use aqm_core::store::VaultStore;
use aqm_core::{KeyId, Policy, Tier};
use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
use aqm_firmware::host::{FileFlash, InProcess};
use aqm_firmware::protocol::{self, Command, DeviceError, Reply, Request};
use aqm_firmware::{Approver, Client, Device, Error, FlashVault, NoButton, NoLed, VaultLayout};
use embedded_storage::nor_flash::MultiwriteNorFlash;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const PAGES: u32 = 12;

fn layout() -> VaultLayout {
    VaultLayout::contiguous(0, PAGE_SIZE as u32, 4, PAGES - 4)
}

type Link<F, A> = InProcess<F, 64, ChaCha20Rng, NoLed, A>;

fn device<F: MultiwriteNorFlash, A: Approver>(
    flash: F,
    key: [u8; 32],
    seed: u64,
    approver: A,
) -> Result<Link<F, A>, Error> {
    let vault = FlashVault::<F, 64>::open(flash, layout(), Policy::DEFAULT)?;
    let d = Device::new(vault, DeviceKey::from_bytes(key), ChaCha20Rng::seed_from_u64(seed), NoLed, approver)?;
    Ok(InProcess::new(d))
}

fn ram() -> RamFlash<Vec<u8>> {
    RamFlash::new(vec![0xFF; PAGES as usize * PAGE_SIZE])
}

const NOW: u64 = 1_700_000_000;

#[test]
fn mint_open_double_open_status() {
    let mut client = Client::new(device(ram(), [1; 32], 1, NoButton).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let info = client.info(NOW).unwrap();
    assert_eq!(info.protocol, protocol::PROTOCOL_VERSION);
    assert!(!info.approve_button);
    assert!(info.capacity >= 64);
    for tier in Tier::ALL {
        let mut coins = Vec::new();
        assert_eq!(client.mint(NOW, tier, 2, |c| coins.push(c)).unwrap(), 2);
        for coin in &coins {
            coin.verify(&info.identity).unwrap();
            assert_eq!(coin.tier, tier);
        }
        let (ct, ss) = encapsulate(tier, &coins[0].public_key, &mut rng).unwrap();
        // Wrong length: refused before anything changes.
        assert_eq!(
            client.open(NOW, coins[0].key_id, &ct[1..]).unwrap_err(),
            Error::Device(DeviceError::BadLength {
                expected: tier.ciphertext_len() as u32,
                got: tier.ciphertext_len() as u32 - 1,
            })
        );
        let got = client.open(NOW + 1, coins[0].key_id, &ct).unwrap();
        assert_eq!(&*got, ss.as_bytes());
        assert_eq!(
            client.open(NOW + 2, coins[0].key_id, &ct).unwrap_err(),
            Error::Device(DeviceError::KeyAlreadyBurned)
        );
    }
    assert_eq!(client.open(NOW, KeyId([7; 16]), &[0; 32]).unwrap_err(), Error::Device(DeviceError::KeyNotFound));
    let status = client.status(NOW + 3).unwrap();
    assert_eq!(status.stats.active.0, [1, 1, 1]);
    assert_eq!(status.stats.total_burned, 3);
    assert_eq!(status.usage.live_slots, 3);
    // The device clock never runs backwards.
    assert_eq!(client.status(NOW).unwrap().now, NOW + 3);
    // Burned coins go after their grace.
    assert_eq!(client.purge(NOW + 3 + 60).unwrap(), (0, 3));
    let status = client.status(NOW).unwrap();
    assert_eq!(status.stats.total_burned, 3);
    assert_eq!(status.usage.records, 3);
}

#[test]
fn bad_counts_and_malformed_frames_change_nothing() {
    let mut client = Client::new(device(ram(), [2; 32], 2, NoButton).unwrap());
    client.mint(NOW, Tier::Bronze, 1, |_| {}).unwrap();
    let before = client.status(NOW).unwrap();
    for count in [0, protocol::MAX_MINT + 1] {
        assert_eq!(
            client.mint(NOW, Tier::Bronze, count, |_| {}).unwrap_err(),
            Error::Device(DeviceError::BadCount { max: protocol::MAX_MINT })
        );
    }
    // Not COBS, not postcard.
    let r = client.send_raw(&[0x05, 0xFF, 0xFF, 0x00]).unwrap();
    assert_eq!(r.reply, Reply::Error(DeviceError::Malformed));
    assert_eq!(r.id, 0);
    // A valid frame whose command is unknown: the id is salvaged and echoed.
    let mut buf = [0u8; 64];
    let mut raw =
        postcard::to_slice(&Request { id: 4242, now: NOW, command: Command::Status }, &mut buf).unwrap().to_vec();
    let last = raw.len() - 1;
    raw[last] = 0x7F; // the command tag
    let mut framed = vec![0u8; 64];
    let n = cobs::encode(&raw, &mut framed);
    framed.truncate(n);
    framed.push(0);
    let r = client.send_raw(&framed).unwrap();
    assert_eq!((r.id, r.reply), (4242, Reply::Error(DeviceError::Malformed)));
    // A frame larger than the device accepts.
    let mut big = vec![1u8; protocol::MAX_REQUEST_FRAME + 10];
    big.push(0);
    let r = client.send_raw(&big).unwrap();
    assert_eq!(r.reply, Reply::Error(DeviceError::FrameTooLarge { max: protocol::MAX_REQUEST_FRAME as u32 }));
    // Nothing changed, and the link still works.
    assert_eq!(client.status(NOW).unwrap(), before);
}

struct Refuse;
impl Approver for Refuse {
    fn approve(&mut self) -> bool {
        false
    }
    fn required(&self) -> bool {
        true
    }
}

#[test]
fn an_unapproved_open_burns_nothing() {
    let mut client = Client::new(device(ram(), [3; 32], 3, Refuse).unwrap());
    assert!(client.info(NOW).unwrap().approve_button);
    let mut coins = Vec::new();
    client.mint(NOW, Tier::Silver, 1, |c| coins.push(c)).unwrap();
    let (ct, _) = encapsulate(Tier::Silver, &coins[0].public_key, &mut ChaCha20Rng::seed_from_u64(1)).unwrap();
    assert_eq!(client.open(NOW, coins[0].key_id, &ct).unwrap_err(), Error::Device(DeviceError::NotApproved));
    let s = client.status(NOW).unwrap();
    assert_eq!((s.stats.active.0, s.stats.total_burned), ([0, 1, 0], 0));
}

#[test]
fn file_flash_keeps_identity_and_coins_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("device.flash");
    let size = PAGES as usize * PAGE_SIZE;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (identity, coins) = {
        let mut client = Client::new(device(FileFlash::open(&path, size).unwrap(), [4; 32], 4, NoButton).unwrap());
        let mut coins = Vec::new();
        client.mint(NOW, Tier::Gold, 1, |c| coins.push(c)).unwrap();
        client.mint(NOW, Tier::Bronze, 2, |c| coins.push(c)).unwrap();
        (client.info(NOW).unwrap().identity, coins)
    };
    // A second run on the same file: same identity, the coins open, the counters survived.
    let mut client = Client::new(device(FileFlash::open(&path, size).unwrap(), [4; 32], 5, NoButton).unwrap());
    assert_eq!(client.info(NOW).unwrap().identity, identity);
    for coin in &coins {
        let (ct, ss) = encapsulate(coin.tier, &coin.public_key, &mut rng).unwrap();
        assert_eq!(&*client.open(NOW, coin.key_id, &ct).unwrap(), ss.as_bytes());
    }
    assert_eq!(client.status(NOW).unwrap().stats.total_burned, 3);
    drop(client);
    // Another device key cannot open this vault.
    let err = device(FileFlash::open(&path, size).unwrap(), [5; 32], 6, NoButton).err().unwrap();
    assert_eq!(err, Error::Core(aqm_core::Error::SealBroken));
    // A file of the wrong size is refused.
    assert!(FileFlash::open(&path, size + PAGE_SIZE).is_err());
}

#[test]
fn the_device_vault_is_a_vault_store() {
    let mut client = Client::new(device(ram(), [6; 32], 7, NoButton).unwrap());
    client.mint(NOW, Tier::Bronze, 3, |_| {}).unwrap();
    let link = client.into_inner();
    assert_eq!(link.device().vault().stats().unwrap().active.0, [0, 0, 3]);
}

/// Issue 14 on the device: a last-resort coin is minted and published (signed, kind
/// last-resort, mint + 7 days), opens first messages without being burned, refuses a replayed
/// first message with `Replay` (nothing changes), also after a reboot on the same flash; a
/// one-time coin beside it still burns.
#[test]
fn last_resort_coin_opens_many_refuses_replays_across_reboots() {
    let mut client = Client::new(device(ram(), [5; 32], 5, NoButton).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(55);
    let info = client.info(NOW).unwrap();
    let coin = client.mint_last_resort(NOW, Tier::Silver).unwrap();
    coin.verify_fresh(&info.identity, &Policy::DEFAULT, NOW).unwrap();
    assert_eq!(coin.kind, aqm_core::coin::CoinKind::LastResort);
    assert_eq!(coin.expires_at, aqm_core::protocol::last_resort_expiry(NOW));
    let (ct1, ss1) = encapsulate(Tier::Silver, &coin.public_key, &mut rng).unwrap();
    let (ct2, ss2) = encapsulate(Tier::Silver, &coin.public_key, &mut rng).unwrap();
    assert_eq!(&*client.open(NOW + 1, coin.key_id, &ct1).unwrap(), ss1.as_bytes());
    let before = client.status(NOW + 1).unwrap().stats;
    assert_eq!(client.open(NOW + 2, coin.key_id, &ct1).unwrap_err(), Error::Device(DeviceError::Replay));
    assert_eq!(client.status(NOW + 2).unwrap().stats, before, "a replay changes nothing");
    assert_eq!(before.active.get(Tier::Silver), 1);
    assert_eq!(before.total_burned, 0, "a last-resort open burns nothing");

    // Reboot: a new device on the same flash.
    let flash = client.into_inner().into_device().into_vault().into_flash();
    let mut client = Client::new(device(flash, [5; 32], 6, NoButton).unwrap());
    assert_eq!(client.open(NOW + 3, coin.key_id, &ct1).unwrap_err(), Error::Device(DeviceError::Replay));
    assert_eq!(&*client.open(NOW + 4, coin.key_id, &ct2).unwrap(), ss2.as_bytes());
    assert_eq!(client.open(NOW + 5, coin.key_id, &ct2).unwrap_err(), Error::Device(DeviceError::Replay));
    assert_eq!(client.status(NOW + 5).unwrap().stats, before);
    // A wrong-length ciphertext is refused before anything is recorded.
    let (ct3, ss3) = encapsulate(Tier::Silver, &coin.public_key, &mut rng).unwrap();
    assert!(matches!(client.open(NOW + 6, coin.key_id, &ct3[1..]), Err(Error::Device(DeviceError::BadLength { .. }))));
    assert_eq!(&*client.open(NOW + 7, coin.key_id, &ct3).unwrap(), ss3.as_bytes());
    // One-time coins still burn.
    let mut coins = Vec::new();
    client.mint(NOW + 8, Tier::Bronze, 1, |c| coins.push(c)).unwrap();
    let (ct, _) = encapsulate(Tier::Bronze, &coins[0].public_key, &mut rng).unwrap();
    client.open(NOW + 9, coins[0].key_id, &ct).unwrap();
    assert_eq!(client.open(NOW + 9, coins[0].key_id, &ct).unwrap_err(), Error::Device(DeviceError::KeyAlreadyBurned));
}

/// Issue 14 end to end on the flash device: it registers its identity at a directory (its own
/// proof of possession), publishes one SILVER one-time coin and its SILVER last-resort coin;
/// once the one-time coin is claimed, two new contacts still reach it through the last-resort
/// coin with different ciphertexts, the device opens both, and a replayed first message is
/// refused and changes nothing.
#[test]
fn a_dry_directory_still_reaches_the_device_through_its_last_resort_coin() {
    use aqm_core::UserId;
    use aqm_core::memory::MemoryStore;
    use aqm_core::store::DirectoryStore;

    let mut client = Client::new(device(ram(), [7; 32], 7, NoButton).unwrap());
    let mut rng = ChaCha20Rng::seed_from_u64(77);
    let info = client.info(NOW).unwrap();
    let owner = info.identity.user_id;
    let directory: MemoryStore = MemoryStore::new(Policy::DEFAULT);
    let proof = client.registration_proof(NOW).unwrap();
    directory.register_identity(&info.identity, &proof).unwrap();

    let mut one_time = Vec::new();
    client.mint(NOW, Tier::Silver, 1, |c| one_time.push(c)).unwrap();
    let last_resort = client.mint_last_resort(NOW, Tier::Silver).unwrap();
    let uploaded: Vec<_> = one_time.iter().cloned().chain([last_resort.clone()]).collect();
    assert_eq!(directory.upload(&owner, &uploaded, NOW).unwrap(), 2);

    let (carol, dave, erin) = (UserId([0xC0; 16]), UserId([0xD0; 16]), UserId([0xE0; 16]));
    let first = directory.claim(&owner, &carol, Tier::Silver, 1, None, NOW + 1).unwrap();
    assert_eq!(first.as_slice(), one_time.as_slice(), "one-time coins first");
    let (ct, ss) = encapsulate(Tier::Silver, &first[0].public_key, &mut rng).unwrap();
    assert_eq!(&*client.open(NOW + 1, first[0].key_id, &ct).unwrap(), ss.as_bytes());

    // No one-time SILVER coin is left: Dave and Erin each get the last-resort coin.
    let mut opened = Vec::new();
    for (who, at) in [(dave, NOW + 2), (erin, NOW + 3)] {
        let got = directory.claim(&owner, &who, Tier::Silver, 1, None, at).unwrap();
        assert_eq!(got.as_slice(), core::slice::from_ref(&last_resort), "the last-resort coin, not used up");
        got[0].verify_fresh(&info.identity, &Policy::DEFAULT, at).unwrap();
        let (ct, ss) = encapsulate(Tier::Silver, &got[0].public_key, &mut rng).unwrap();
        assert_eq!(&*client.open(at, got[0].key_id, &ct).unwrap(), ss.as_bytes());
        opened.push(ct);
    }
    assert_ne!(opened[0], opened[1], "two first messages, two ciphertexts");
    let before = client.status(NOW + 4).unwrap().stats;
    assert_eq!(
        (before.active.get(Tier::Silver), before.total_burned),
        (1, 1),
        "the one-time coin burned, not the last-resort one"
    );
    for ct in &opened {
        assert_eq!(client.open(NOW + 4, last_resort.key_id, ct).unwrap_err(), Error::Device(DeviceError::Replay));
    }
    assert_eq!(client.status(NOW + 4).unwrap().stats, before, "a refused replay changes nothing");
}
