//! Power-fail test: long put/burn/purge sequences over an emulated NOR flash whose power is cut
//! at every k-th write or erase (the cut operation is left half done). After each cut the vault
//! is reopened ("reboot") and compared with a model:
//!
//! - no key burned (opened) is ever usable again, and its sealed secret is nowhere in the flash;
//! - no key reported stored is lost, and it comes back byte for byte;
//! - counters equal the model's exactly;
//! - an operation interrupted by the cut either happened completely or not at all.
//!
//! Every sequence runs under both of the emulator's [`CutModel`]s (a clean prefix of the cut
//! operation done, or any state in each word it touched). Scale is a parameter, read from the
//! environment, so CI runs a short pass and `firmware/soak.sh` a long one on fresh seeds:
//!
//! - `AQM_POWERFAIL_ROUNDS` (default 1): rounds of the nine `(seed, k)` sequences of
//!   `cut_every_kth_write_or_erase` and of the device test's sequence;
//! - `AQM_POWERFAIL_SEED` (default 0): added to every seed; round `r` adds `1000 * r` more;
//! - `AQM_POWERFAIL_MODEL` (`prefix`, `any` or `both`, the default).
//!
//! Each test prints the cuts its sequences survived and lists every failing sequence (seed,
//! k, model and the failed check) before it fails.

use std::collections::BTreeMap;

use aqm_core::crypto::{DeviceKey, SealedSecret, SecretSeed};
use aqm_core::store::VaultStore;
use aqm_core::vault::{KeyStatus, VaultEntry, VaultStats};
use aqm_core::{KeyId, Policy, Tier, TierCounts};
use aqm_firmware::flash::{CutModel, FlashError, PAGE_SIZE, RamFlash};
use aqm_firmware::{Error, FlashVault, StoredIdentity, VaultLayout};
use embedded_storage::nor_flash::NorFlashErrorKind;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

type Vault = FlashVault<RamFlash<Vec<u8>>, 128>;

const MAP_PAGES: u32 = 4;
const SLAB_PAGES: u32 = 3;

fn policy() -> Policy {
    Policy { vault_grace_secs: 300, burn_grace_secs: 60, ..Policy::DEFAULT }
}

/// The signed expiry of a key minted at `now`: a lifetime that differs from key to key (taken
/// from the key id, so the sequence draws nothing more from its RNG), so that a vault deriving
/// the deadline from `created_at` instead of the stored `expires_at` fails the model.
fn expiry(key_id: &KeyId, now: u64) -> u64 {
    now + 350 + 2 * u64::from(key_id.0[0])
}

/// Whether an ACTIVE key is past its vault deadline (`expires_at + vault_grace`) at `now`.
fn expired(k: &Key, now: u64) -> bool {
    now >= policy().vault_deadline(k.entry.expires_at)
}

/// The vault's layout for a flash with this cut model. The clean-prefix model runs on the
/// layout without an erase journal (what `aqm-sim` and the boards use), where the vault relies
/// on sequential-storage recognising a half-erased page; the any-state model needs the journal
/// (firmware/README.md, "Power cuts"), in the page after the slab.
fn layout(model: CutModel) -> VaultLayout {
    let plain = VaultLayout::contiguous(0, PAGE_SIZE as u32, MAP_PAGES, SLAB_PAGES);
    match model {
        CutModel::Prefix => plain,
        CutModel::AnyState { .. } => plain.with_erase_log((MAP_PAGES + SLAB_PAGES) * PAGE_SIZE as u32),
    }
}

fn is_power_loss(e: &Error) -> bool {
    matches!(e, Error::Flash(NorFlashErrorKind::Other))
}

#[derive(Clone, Debug)]
struct Key {
    entry: VaultEntry,
    burned_at: Option<u64>,
}

#[derive(Default)]
struct Model {
    keys: BTreeMap<KeyId, Key>,
    total_burned: u64,
    total_expired: u64,
    /// Sealed ciphertexts that must have been destroyed.
    destroyed: Vec<Vec<u8>>,
}

impl Model {
    fn stats(&self) -> VaultStats {
        let mut active = TierCounts::default();
        for k in self.keys.values().filter(|k| k.burned_at.is_none()) {
            *active.get_mut(k.entry.tier) += 1;
        }
        VaultStats { active, total_burned: self.total_burned, total_expired: self.total_expired }
    }

    fn burn(&mut self, id: &KeyId, now: u64) {
        let k = self.keys.get_mut(id).expect("burned key is in the model");
        k.burned_at = Some(now);
        self.total_burned += 1;
        self.destroyed.push(k.entry.sealed.ciphertext.to_vec());
    }

    fn purge(&mut self, now: u64) {
        let p = policy();
        let mut gone = Vec::new();
        for (id, k) in &self.keys {
            match k.burned_at {
                None if expired(k, now) => gone.push((*id, true)),
                Some(at) if now.saturating_sub(at) >= p.burn_grace_secs => gone.push((*id, false)),
                _ => {}
            }
        }
        for (id, expired) in gone {
            let k = self.keys.remove(&id).unwrap();
            if expired {
                self.total_expired += 1;
                self.destroyed.push(k.entry.sealed.ciphertext.to_vec());
            }
        }
    }
}

enum Op {
    Put(VaultEntry),
    Burn(KeyId),
    Purge,
}

/// Reboot after a cut: power on, reopen, recover. Recovery writes too, so it may be cut again
/// (with the same interval, a few times); then the interval is lifted so the test makes progress.
fn reboot(vault: Vault, cut_every: Option<u32>) -> Vault {
    let mut flash = vault.into_flash();
    let model = flash.cut_model();
    for attempt in 0.. {
        flash.power_on();
        if let Some(k) = cut_every.filter(|_| attempt < 3) {
            flash.cut_power_after(k);
        }
        let v = Vault::open(flash, layout(model), policy()).expect("layout");
        match v.recover() {
            Ok(()) => {
                v.with_flash(|f| f.power_on()).unwrap();
                return v;
            }
            Err(e) => {
                assert!(is_power_loss(&e), "recovery failed with {e}");
                flash = v.into_flash();
            }
        }
    }
    unreachable!()
}

fn arm(vault: &Vault, cut: Option<u32>) {
    vault
        .with_flash(|f| {
            f.power_on();
            if let Some(k) = cut {
                f.cut_power_after(k);
            }
        })
        .unwrap();
}

fn check(vault: &Vault, model: &Model, now: u64) {
    assert_eq!(vault.stats().unwrap(), model.stats(), "counters drifted at t={now}");
    for (id, k) in &model.keys {
        match k.burned_at {
            None => {
                assert_eq!(vault.status(id).unwrap(), Some(KeyStatus::Active), "stored key lost");
                if !expired(k, now) {
                    let got = vault.get(id, now).unwrap().expect("stored key not usable");
                    assert_eq!(got, k.entry, "stored key changed");
                }
            }
            Some(_) => {
                assert_eq!(vault.status(id).unwrap(), Some(KeyStatus::Burned));
                assert_eq!(vault.get(id, now).unwrap(), None, "a burned key is usable again");
            }
        }
    }
    let mut active = Vec::new();
    vault.active_ids(None, &mut |id| active.push(id)).unwrap();
    active.sort();
    let want: Vec<KeyId> = model.keys.iter().filter(|(_, k)| k.burned_at.is_none()).map(|(id, _)| *id).collect();
    assert_eq!(active, want);
}

/// Every destroyed secret is gone from the raw flash (all word-aligned positions are searched
/// for the first 16 bytes of each destroyed sealed secret).
fn check_destroyed(flash: &RamFlash<Vec<u8>>, model: &Model) {
    let gone: std::collections::HashSet<&[u8]> = model.destroyed.iter().map(|ct| &ct[..16]).collect();
    let raw = flash.as_bytes();
    for at in (0..raw.len() - 16).step_by(4) {
        assert!(!gone.contains(&raw[at..at + 16]), "a burned or expired secret is still in flash at {at:#x}");
    }
}

/// The emulated flash of a test vault, erased, with the given cut model.
fn fresh_flash(model: CutModel) -> RamFlash<Vec<u8>> {
    // One page more than the vault uses: room for the erase journal.
    let mut flash = RamFlash::new(vec![0xFF; ((MAP_PAGES + SLAB_PAGES + 1) as usize) * PAGE_SIZE]);
    flash.set_cut_model(model);
    flash
}

/// The cut model named `name` for sequence `seed` (the any-state generator is seeded from it).
fn model(name: &str, seed: u64) -> CutModel {
    match name {
        "prefix" => CutModel::Prefix,
        _ => CutModel::AnyState { seed: seed ^ 0xA9_5EED },
    }
}

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

/// The scale of a run: rounds, first seed, models (see the module doc).
fn scale() -> (u64, u64, Vec<&'static str>) {
    let models = match std::env::var("AQM_POWERFAIL_MODEL").as_deref() {
        Ok("prefix") => vec!["prefix"],
        Ok("any") => vec!["any"],
        Ok("both") | Err(_) => vec!["prefix", "any"],
        Ok(other) => panic!("AQM_POWERFAIL_MODEL={other}: use prefix, any or both"),
    };
    (env_u64("AQM_POWERFAIL_ROUNDS", 1), env_u64("AQM_POWERFAIL_SEED", 0), models)
}

/// Run `sequence` for each `(seed, k)` under each model, catching failures so a soak reports
/// all of them; panics at the end if any failed. Returns the cuts survived.
fn sweep(what: &str, sequences: &[(u64, u32)], sequence: impl Fn(u64, u32, CutModel) -> usize) -> usize {
    let (rounds, first_seed, models) = scale();
    let mut survived = 0;
    let mut failures = Vec::new();
    let mut runs = 0;
    for round in 0..rounds {
        for name in &models {
            for &(seed, k) in sequences {
                let seed = first_seed + 1000 * round + seed;
                runs += 1;
                match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sequence(seed, k, model(name, seed)))) {
                    Ok(cuts) => survived += cuts,
                    Err(e) => {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        failures.push(format!("seed {seed}, k = {k}, model {name}: {msg}"));
                    }
                }
            }
        }
    }
    println!(
        "{what}: {runs} sequences ({rounds} rounds from seed {first_seed}, models {models:?}): \
         {survived} cuts survived, {} failures",
        failures.len()
    );
    for f in &failures {
        println!("  FAILED {f}");
    }
    assert!(failures.is_empty(), "{what}: {} of {runs} sequences failed:\n{}", failures.len(), failures.join("\n"));
    survived
}

/// After a reboot that interrupted `op`: the operation happened completely or not at all; the
/// model takes whichever it was (a purge's deletions are each atomic on their own).
fn settle(vault: &Vault, model: &mut Model, op: Op, now: u64) {
    match op {
        Op::Put(e) => match vault.status(&e.key_id) {
            Ok(Some(KeyStatus::Active)) => {
                model.keys.insert(e.key_id, Key { entry: e, burned_at: None });
            }
            Ok(None) => {}
            other => panic!("interrupted put left {other:?}"),
        },
        Op::Burn(id) => match vault.status(&id) {
            Ok(Some(KeyStatus::Burned)) => model.burn(&id, now),
            Ok(Some(KeyStatus::Active)) => {}
            other => panic!("interrupted burn left {other:?}"),
        },
        Op::Purge => {
            // Each deletion is atomic; those that happened are gone from the vault.
            let p = policy();
            let ids: Vec<KeyId> = model.keys.keys().copied().collect();
            for id in ids {
                if vault.status(&id).unwrap().is_none() {
                    let k = model.keys.remove(&id).unwrap();
                    match k.burned_at {
                        None => {
                            assert!(expired(&k, now), "live key vanished");
                            model.total_expired += 1;
                            model.destroyed.push(k.entry.sealed.ciphertext.to_vec());
                        }
                        Some(at) => assert!(now - at >= p.burn_grace_secs, "burned key deleted early"),
                    }
                }
            }
        }
    }
}

fn run(seed: u64, cut_every: Option<u32>, ops: usize, model: CutModel) -> (usize, u64) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let dk = DeviceKey::random(&mut rng);
    let mut vault = Vault::open(fresh_flash(model), layout(model), policy()).unwrap();
    // The device identity lives in the same record map as the keys: it must survive every cut.
    let identity = {
        let seed = SecretSeed::from_slice(&[7; 64]).unwrap();
        let sealed = SealedSecret::seal(&dk, &KeyId([0xEE; 16]), Tier::Silver, &seed, &mut rng).unwrap();
        StoredIdentity { user_id: aqm_core::UserId::random(&mut rng), sealed }
    };
    vault.set_identity(&identity).unwrap();
    let mut model = Model::default();
    let mut now = 1_000u64;
    let mut cuts = 0usize;
    let mut stuck = 0;
    arm(&vault, cut_every);
    for _ in 0..ops {
        now += rng.random_range(0..20);
        let active: Vec<KeyId> =
            model.keys.iter().filter(|(_, k)| k.burned_at.is_none() && !expired(k, now)).map(|(id, _)| *id).collect();
        let op = match rng.random_range(0..100) {
            0..55 if model.keys.len() < 60 => {
                let tier = [Tier::Gold, Tier::Silver, Tier::Bronze][rng.random_range(0..3)];
                let key_id = KeyId::random(&mut rng);
                let mut seed = [0u8; 64];
                rng.fill_bytes(&mut seed);
                let seed = SecretSeed::from_slice(&seed[..tier.seed_len()]).unwrap();
                let sealed = SealedSecret::seal(&dk, &key_id, tier, &seed, &mut rng).unwrap();
                Op::Put(VaultEntry::new_active(
                    key_id,
                    tier,
                    aqm_core::coin::CoinKind::OneTime,
                    sealed,
                    now,
                    expiry(&key_id, now),
                ))
            }
            0..92 if !active.is_empty() => Op::Burn(active[rng.random_range(0..active.len())]),
            _ => {
                now += rng.random_range(0..300);
                Op::Purge
            }
        };
        let result = match &op {
            Op::Put(e) => vault.put(e).map(|_| ()),
            Op::Burn(id) => vault.burn(id, now),
            Op::Purge => vault.purge(now).map(|_| ()),
        };
        match result {
            Ok(()) => {
                stuck = 0;
                match op {
                    Op::Put(e) => {
                        model.keys.insert(e.key_id, Key { entry: e, burned_at: None });
                    }
                    Op::Burn(id) => model.burn(&id, now),
                    Op::Purge => model.purge(now),
                }
            }
            Err(e) if is_power_loss(&e) => {
                cuts += 1;
                assert!(vault.with_flash(|f| f.power_lost()).unwrap(), "a flash error without a power cut: {e}");
                // An operation that needs more writes than the cut interval would never finish:
                // after a few tries let the next attempt run without a cut.
                stuck += 1;
                let next_cut = if stuck > 3 { None } else { cut_every };
                vault = reboot(vault, next_cut);
                settle(&vault, &mut model, op, now);
                check(&vault, &model, now);
                assert_eq!(vault.identity().unwrap().as_ref(), Some(&identity), "the identity was lost");
                vault.with_flash(|f| check_destroyed(f, &model)).unwrap();
                arm(&vault, next_cut);
            }
            Err(e) => panic!("unexpected error: {e}; usage {:?}; model {}", vault.usage(), model.keys.len()),
        }
    }
    // A final clean reboot: everything still holds.
    let vault = reboot(vault, None);
    check(&vault, &model, now);
    assert_eq!(vault.identity().unwrap().as_ref(), Some(&identity), "the identity was lost");
    vault.with_flash(|f| check_destroyed(f, &model)).unwrap();
    (cuts, model.total_burned)
}

#[test]
fn no_cuts_baseline() {
    let (cuts, burned) = run(1, None, 600, CutModel::Prefix);
    assert_eq!(cuts, 0);
    assert!(burned > 50);
}

/// The nine sequences of one round: `(seed, k)`, the power cut at every k-th write or erase.
const SEQUENCES: [(u64, u32); 9] = [(2, 2), (3, 3), (4, 5), (5, 7), (6, 11), (7, 17), (8, 29), (9, 53), (10, 97)];

#[test]
fn cut_every_kth_write_or_erase() {
    let total = sweep("cut_every_kth_write_or_erase", &SEQUENCES, |seed, k, model| {
        let (cuts, _) = run(seed, Some(k), 400, model);
        assert!(cuts > 0, "k={k}: no cut happened");
        cuts
    });
    assert!(total > 200, "only {total} cuts");
}

// Issue 17: with a prefix-erasing flash these sequences end in "unreadable record map" without
// the workaround (sequential-storage's fetch_all_items does not repair a half-erased page; see
// vault.rs). Each flash format moves the cut points: the original sequences (seeds 11008 and
// 40010), and format 2's (23008 k = 29, 10010 k = 97), no longer reach the bug at format 3 (its
// stamps make every record longer). These two were found by running 60 rounds with the
// workaround disabled at format 3: 3 of 540 sequences failed (seeds 37008, 50008, 54008, all
// k = 29).
#[test]
fn issue_17_round_37_seed_37008_k_29() {
    run(37008, Some(29), 400, CutModel::Prefix);
}

#[test]
fn issue_17_round_50_seed_50008_k_29() {
    run(50008, Some(29), 400, CutModel::Prefix);
}

/// Format 2's two issue-17 sequences, kept: they must still recover on format 3.
#[test]
fn issue_17_format_2_sequences_recover() {
    run(23008, Some(29), 400, CutModel::Prefix);
    run(10010, Some(97), 400, CutModel::Prefix);
}

/// The two sequences the issue reported (round 11 and round 40 of the 60-round run), kept as they
/// were given: they must recover with every invariant intact on today's flash format too.
#[test]
fn issue_17_reported_sequences_recover() {
    run(11008, Some(29), 400, CutModel::Prefix);
    run(40010, Some(97), 400, CutModel::Prefix);
}

// Under the any-state model without the erase journal this sequence loses the identity: a cut
// erase leaves a record page reading as closed, and sequential-storage's repair then erases the
// newest page and migrates the garbage into it. The journal finishes the erase at boot. (Found
// by 40 rounds without the journal at flash format 3: 4 of 360 sequences failed, this one by
// losing the identity, 4006 k = 11 a stored key, 17008 k = 29 and 36009 k = 53 the record map;
// format 2's sequence, seed 12010 k = 97, and format 1's, 1024005 k = 7, no longer reach it.)
#[test]
fn any_state_seed_8006_k_11_keeps_the_identity() {
    run(8006, Some(11), 400, model("any", 8006));
}

/// The other sequences that fail without the journal at format 3, and format 2's.
#[test]
fn any_state_sequences_that_need_the_journal_recover() {
    for (seed, k) in [(4006, 11), (17008, 29), (36009, 53), (12010, 97)] {
        run(seed, Some(k), 400, model("any", seed));
    }
}

#[test]
fn flash_error_is_typed() {
    // The emulated flash refuses writes after a cut with a typed error.
    let mut f = RamFlash::new(vec![0xFF; PAGE_SIZE]);
    f.cut_power_after(1);
    use embedded_storage::nor_flash::NorFlash;
    assert_eq!(f.write(0, &[0; 4]), Err(FlashError::PowerLost));
}

/// The same through the device and its protocol: mint and open over the serial link while the
/// power is cut every k-th flash operation. A coin reported minted is never lost, a coin whose
/// secret came back never opens again, and the burned counter equals the burned coins.
#[test]
fn device_mint_and_open_survive_cuts() {
    let total = sweep("device_mint_and_open_survive_cuts", &[(0, 0)], |seed, _, model| device_run(seed, model));
    assert!(total > 20, "only {total} cuts");
}

fn device_run(seed: u64, model: CutModel) -> usize {
    use aqm_core::crypto::encapsulate;
    use aqm_firmware::host::InProcess;
    use aqm_firmware::protocol::DeviceError;
    use aqm_firmware::{Client, Device, NoButton, NoLed};

    type Dev = Device<RamFlash<Vec<u8>>, 128, ChaCha20Rng, NoLed, NoButton>;
    type Link = Client<InProcess<RamFlash<Vec<u8>>, 128, ChaCha20Rng, NoLed, NoButton>>;
    fn boot(flash: RamFlash<Vec<u8>>, seed: u64) -> Link {
        let model = flash.cut_model();
        let vault = Vault::open(flash, layout(model), policy()).unwrap();
        let d: Dev =
            Device::new(vault, DeviceKey::from_bytes([8; 32]), ChaCha20Rng::seed_from_u64(seed), NoLed, NoButton)
                .expect("boot without cuts");
        Client::new(InProcess::new(d))
    }
    fn reboot(c: Link, seed: u64) -> Link {
        let mut flash = c.into_inner().into_device().into_vault().into_flash();
        flash.power_on();
        boot(flash, seed)
    }

    // Seed 0 is the sequence CI has always run.
    let mut rng = ChaCha20Rng::seed_from_u64(77 + seed);
    let mut client = boot(fresh_flash(model), 1 + seed);
    // A lost identity would be silently replaced at boot: compare it after every reboot.
    let user_id = client.io_mut().device().identity().user_id();
    let now = 1_000;
    // (coin, opened)
    let mut coins: Vec<(aqm_core::coin::PublicCoin, bool)> = Vec::new();
    let mut cuts = 0;
    for step in 0..300u64 {
        let k = [3, 5, 8, 13][(step % 4) as usize];
        client.io_mut().device().vault().with_flash(|f| f.cut_power_after(k)).unwrap();
        let open_idx = (coins.iter().filter(|c| !c.1).count() > 8 || step % 3 == 2)
            .then(|| coins.iter().position(|c| !c.1))
            .flatten();
        let result = match open_idx {
            None => {
                let mut got = Vec::new();
                let r = client.mint(now, Tier::Bronze, 1, |c| got.push(c));
                coins.extend(got.into_iter().map(|c| (c, false)));
                r.map(|_| ())
            }
            Some(i) => {
                let (ct, ss) = encapsulate(Tier::Bronze, &coins[i].0.public_key, &mut rng).unwrap();
                match client.open(now, coins[i].0.key_id, &ct) {
                    Ok(secret) => {
                        assert_eq!(&*secret, ss.as_bytes());
                        coins[i].1 = true;
                        Ok(())
                    }
                    Err(Error::Device(DeviceError::KeyAlreadyBurned)) => {
                        // Burned by an earlier open that a cut interrupted before the reply:
                        // the secret was never released, and it never will be.
                        coins[i].1 = true;
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let cut = client.io_mut().device().vault().with_flash(|f| f.power_lost()).unwrap();
        match result {
            Ok(()) if !cut => {}
            Ok(()) | Err(Error::Device(DeviceError::Flash)) => {
                cuts += 1;
                client = reboot(client, seed.wrapping_mul(1_000_003) + step + 2);
                assert_eq!(client.io_mut().device().identity().user_id(), user_id, "identity lost at step {step}");
            }
            Err(e) => panic!("unexpected error at step {step}: {e}"),
        }
        client.io_mut().device().vault().with_flash(|f| f.power_on()).unwrap();
    }
    client = reboot(client, seed.wrapping_mul(1_000_003) + 1_000);
    // Every coin reported minted is still there, opened ones are burned.
    let vault = client.io_mut().device().vault();
    let mut burned = 0;
    for (c, opened) in &coins {
        let s = vault.status(&c.key_id).unwrap();
        if *opened {
            assert_eq!(s, Some(KeyStatus::Burned));
            burned += 1;
        } else {
            assert!(matches!(s, Some(KeyStatus::Active) | Some(KeyStatus::Burned)), "a minted coin was lost");
            burned += usize::from(s == Some(KeyStatus::Burned));
        }
    }
    assert_eq!(vault.stats().unwrap().total_burned, burned as u64);
    // Opened coins never open again.
    for (c, _) in coins.iter().filter(|c| c.1).take(5) {
        let (ct, _) = encapsulate(Tier::Bronze, &c.public_key, &mut rng).unwrap();
        assert_eq!(client.open(now, c.key_id, &ct).unwrap_err(), Error::Device(DeviceError::KeyAlreadyBurned));
    }
    cuts
}

/// One scripted step of [`every_cut_point_of_a_short_script`]: the entry to put is taken from
/// the prepared list by index, a burn names a put's index (skipped when the model does not hold
/// that key ACTIVE, as after a put the cut undid), a purge runs at the given time.
#[derive(Clone, Copy)]
enum Step {
    Put(usize, u64),
    Burn(usize, u64),
    Purge(u64),
}

/// The script: 50 puts, 30 burns, 40 puts (more secrets than the slab has slots, so pages are
/// evacuated and erased), a purge that deletes the burned keys after their grace, one that
/// expires everything, 5 puts on the emptied vault. Each kind of step, its counter transition
/// and the slab's compaction are in it.
fn script() -> Vec<Step> {
    let mut steps: Vec<Step> = (0..50).map(|i| Step::Put(i, 1_000)).collect();
    steps.extend((0..30).map(|i| Step::Burn(i, 1_010)));
    steps.extend((50..90).map(|i| Step::Put(i, 1_020)));
    steps.push(Step::Purge(1_100));
    steps.push(Step::Purge(2_500));
    steps.extend((90..95).map(|i| Step::Put(i, 2_600)));
    steps
}

/// Cut the power at every single write or erase of [`script`] in turn (the j-th run cuts at
/// the j-th flash operation after the identity is stored), under each cut model: after the
/// reboot the interrupted step happened completely or not at all, the counters equal the model
/// (format 3 keeps them in the stamp of the newest item, so a cut between a step's commit and
/// its clean-up must not show in them), no burned or expired secret is left in the raw flash;
/// then the rest of the script runs and the same holds at its end.
///
/// The script makes about 1,000 flash operations and each cut replays it, so CI cuts at every
/// `AQM_POWERFAIL_STRIDE`-th one (default 7; offset `AQM_POWERFAIL_SEED` mod the stride, so
/// successive seeds cover the others): `AQM_POWERFAIL_STRIDE=1` cuts at every one (about a
/// minute on 2 cores).
#[test]
fn every_cut_point_of_a_short_script() {
    let mut rng = ChaCha20Rng::seed_from_u64(31);
    let dk = DeviceKey::random(&mut rng);
    let tiers = [Tier::Gold, Tier::Silver, Tier::Bronze];
    let entries: Vec<VaultEntry> = (0..95)
        .map(|i| {
            let tier = tiers[i % 3];
            let key_id = KeyId::random(&mut rng);
            let mut seed = [0u8; 64];
            rng.fill_bytes(&mut seed);
            let seed = SecretSeed::from_slice(&seed[..tier.seed_len()]).unwrap();
            let sealed = SealedSecret::seal(&dk, &key_id, tier, &seed, &mut rng).unwrap();
            let created = if i < 50 {
                1_000
            } else if i < 90 {
                1_020
            } else {
                2_600
            };
            VaultEntry::new_active(
                key_id,
                tier,
                aqm_core::coin::CoinKind::OneTime,
                sealed,
                created,
                expiry(&key_id, created),
            )
        })
        .collect();
    let identity = {
        let seed = SecretSeed::from_slice(&[7; 64]).unwrap();
        let sealed = SealedSecret::seal(&dk, &KeyId([0xEE; 16]), Tier::Silver, &seed, &mut rng).unwrap();
        StoredIdentity { user_id: aqm_core::UserId([3; 16]), sealed }
    };
    let steps = script();

    // Run the script from `from` on; `cut` arms a cut at that flash operation first. Returns
    // the step the cut interrupted (if one did).
    let play = |vault: &mut Vault, model: &mut Model, from: usize| -> Option<(usize, Op, u64)> {
        for (n, step) in steps.iter().enumerate().skip(from) {
            let (op, now) = match *step {
                Step::Put(i, now) => (Op::Put(entries[i].clone()), now),
                Step::Burn(i, now) => {
                    let id = entries[i].key_id;
                    if model.keys.get(&id).is_none_or(|k| k.burned_at.is_some()) {
                        continue;
                    }
                    (Op::Burn(id), now)
                }
                Step::Purge(now) => (Op::Purge, now),
            };
            let result = match &op {
                Op::Put(e) => vault.put(e),
                Op::Burn(id) => vault.burn(id, now),
                Op::Purge => vault.purge(now).map(|_| ()),
            };
            match result {
                Ok(()) => match op {
                    Op::Put(e) => {
                        model.keys.insert(e.key_id, Key { entry: e, burned_at: None });
                    }
                    Op::Burn(id) => model.burn(&id, now),
                    Op::Purge => model.purge(now),
                },
                Err(e) if is_power_loss(&e) => return Some((n, op, now)),
                Err(e) => panic!("step {n}: unexpected error {e}"),
            }
        }
        None
    };

    let (_, first_seed, models) = scale();
    let stride = env_u64("AQM_POWERFAIL_STRIDE", 7).max(1);
    for name in models {
        let model_of = |j: u64| model(name, 7_000 + j);
        // The uncut run: how many flash operations the script makes, and its end state.
        let mut vault = Vault::open(fresh_flash(model_of(0)), layout(model_of(0)), policy()).unwrap();
        vault.set_identity(&identity).unwrap();
        let before = vault.with_flash(|f| f.stats()).unwrap();
        let mut full = Model::default();
        assert!(play(&mut vault, &mut full, 0).is_none());
        let after = vault.with_flash(|f| f.stats()).unwrap();
        let total = (after.writes + after.erases) - (before.writes + before.erases);
        assert!(after.erases > before.erases, "the script erases slab or map pages");
        assert_eq!(full.total_burned, 30);
        assert!(full.total_expired >= 60, "{}", full.total_expired);
        check(&vault, &full, 2_600);

        let mut cuts = 0;
        for j in (1..=total).filter(|j| j % stride == first_seed % stride) {
            let m = model_of(j);
            let mut vault = Vault::open(fresh_flash(m), layout(m), policy()).unwrap();
            vault.set_identity(&identity).unwrap();
            arm(&vault, Some(u32::try_from(j).unwrap()));
            let mut model = Model::default();
            let (n, op, now) = play(&mut vault, &mut model, 0).unwrap_or_else(|| panic!("{name}: no cut at op {j}"));
            cuts += 1;
            vault = reboot(vault, None);
            settle(&vault, &mut model, op, now);
            let at = format!("{name}, cut at flash op {j} of {total} (step {n})");
            let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check(&vault, &model, now);
                assert_eq!(vault.identity().unwrap().as_ref(), Some(&identity), "the identity was lost");
                vault.with_flash(|f| check_destroyed(f, &model)).unwrap();
            }));
            assert!(checked.is_ok(), "{at}: after the reboot");
            assert!(play(&mut vault, &mut model, n + 1).is_none());
            let vault = reboot(vault, None);
            check(&vault, &model, 2_600);
            assert_eq!(vault.identity().unwrap().as_ref(), Some(&identity), "{at}: the identity was lost");
            vault.with_flash(|f| check_destroyed(f, &model)).unwrap();
        }
        println!(
            "every_cut_point_of_a_short_script ({name}): {cuts} cuts (every {stride}th of {total} flash operations) survived"
        );
        assert!(cuts >= total / stride, "{cuts} cuts");
    }
}
