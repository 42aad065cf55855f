//! Power cuts in the last-resort steps of the flash vault (issue 14): a short script of puts,
//! opens of last-resort keys (each one stamped map write of the key's opens item), an open that
//! fills a key's record and retires it (the BURNED record, the slot zeroed, the opens item
//! removed), a burn and purges of last-resort keys that have opens, cut at every one of its
//! flash writes and erases in turn, under both cut models. After each reboot (`recover`):
//!
//! - the interrupted step happened completely or not at all: an open's digest is recorded or it
//!   is not, and a repeat of a recorded one is `Replay`;
//! - a retired, burned or purged key keeps no opens item, and its sealed secret is nowhere in the
//!   raw flash;
//! - counters equal the model's, every key's status and opens equal the model's;
//!
//! then the rest of the script runs and the same holds at its end, after one more reboot.

use std::collections::BTreeMap;

use aqm_core::coin::CoinKind;
use aqm_core::crypto::{DeviceKey, SealedSecret, SecretSeed};
use aqm_core::store::VaultStore;
use aqm_core::vault::{KeyStatus, OpenDigest, VaultEntry, VaultStats};
use aqm_core::{KeyId, Policy, Tier, TierCounts};
use aqm_firmware::flash::{CutModel, PAGE_SIZE, RamFlash};
use aqm_firmware::{Error, FlashVault, StoredIdentity, VaultLayout};
use embedded_storage::nor_flash::NorFlashErrorKind;
use rand::{Rng, RngExt, SeedableRng};
use rand_chacha::ChaCha20Rng;

type Vault = FlashVault<RamFlash<Vec<u8>>, 64>;

// Small enough that the script wraps the record map (page migrations and erases are cut too).
const MAP_PAGES: u32 = 2;
const SLAB_PAGES: u32 = 3;
/// Opens that fill a key's record under [`policy`].
const MAX_OPENS: u8 = 16;

fn policy() -> Policy {
    Policy {
        vault_grace_secs: 300,
        burn_grace_secs: 60,
        last_resort_max_opens: u32::from(MAX_OPENS),
        ..Policy::DEFAULT
    }
}

fn layout(model: CutModel) -> VaultLayout {
    let plain = VaultLayout::contiguous(0, PAGE_SIZE as u32, MAP_PAGES, SLAB_PAGES);
    match model {
        CutModel::Prefix => plain,
        CutModel::AnyState { .. } => plain.with_erase_log((MAP_PAGES + SLAB_PAGES) * PAGE_SIZE as u32),
    }
}

fn fresh_flash(model: CutModel) -> RamFlash<Vec<u8>> {
    let mut flash = RamFlash::new(vec![0xFF; ((MAP_PAGES + SLAB_PAGES + 1) as usize) * PAGE_SIZE]);
    flash.set_cut_model(model);
    flash
}

fn is_power_loss(e: &Error) -> bool {
    matches!(e, Error::Flash(NorFlashErrorKind::Other))
}

/// Power on, reopen, recover (recovery is not cut here: the vault-level soak cuts it).
fn reboot(vault: Vault) -> Vault {
    let mut flash = vault.into_flash();
    let model = flash.cut_model();
    flash.power_on();
    let v = Vault::open(flash, layout(model), policy()).expect("layout");
    v.recover().expect("recovery after a cut");
    v
}

fn digest(n: u8) -> OpenDigest {
    OpenDigest([n; 16])
}

#[derive(Clone, Debug)]
struct Key {
    entry: VaultEntry,
    burned: bool,
    opens: Vec<OpenDigest>,
}

#[derive(Default)]
struct Model {
    keys: BTreeMap<KeyId, Key>,
    /// Keys purged: gone, and with them their opens.
    gone: Vec<KeyId>,
    total_burned: u64,
    total_expired: u64,
    destroyed: Vec<Vec<u8>>,
}

impl Model {
    fn stats(&self) -> VaultStats {
        let mut active = TierCounts::default();
        for k in self.keys.values().filter(|k| !k.burned) {
            *active.get_mut(k.entry.tier) += 1;
        }
        VaultStats { active, total_burned: self.total_burned, total_expired: self.total_expired }
    }

    fn burn(&mut self, id: &KeyId) {
        let k = self.keys.get_mut(id).expect("in the model");
        k.burned = true;
        k.opens.clear();
        self.total_burned += 1;
        self.destroyed.push(k.entry.sealed.ciphertext.to_vec());
    }

    /// An accepted open: recorded, or (the record full) the key retired.
    fn open(&mut self, id: &KeyId, d: OpenDigest) {
        let k = self.keys.get_mut(id).expect("in the model");
        k.opens.push(d);
        if k.opens.len() >= usize::from(MAX_OPENS) {
            self.burn(id);
        }
    }

    fn purge(&mut self, now: u64) {
        let p = policy();
        let ids: Vec<KeyId> = self.keys.keys().copied().collect();
        for id in ids {
            let k = &self.keys[&id];
            let go = if k.burned { true } else { now >= p.vault_deadline(k.entry.expires_at) };
            if go {
                self.remove(&id);
            }
        }
    }

    fn remove(&mut self, id: &KeyId) {
        let k = self.keys.remove(id).unwrap();
        if !k.burned {
            self.total_expired += 1;
            self.destroyed.push(k.entry.sealed.ciphertext.to_vec());
        }
        self.gone.push(*id);
    }
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Put(usize),
    /// Open key `.0` with digest `.1` at time `.2`.
    Open(usize, u8, u64),
    Burn(usize, u64),
    Purge(u64),
}

/// Keys 0..3 last-resort (GOLD, SILVER, BRONZE), 3..6 one-time; 6..9 last-resort put after the
/// first purge. Key 0 is opened until its record is full (retired), key 1 opened and burned, key 2
/// opened and expired by the last purge, which also drops key 6's opens.
fn script() -> Vec<Step> {
    use Step::*;
    let mut s: Vec<Step> = (0..6).map(Put).collect();
    for n in 1..=MAX_OPENS {
        s.push(Open(0, n, 1_000 + u64::from(n)));
        s.push(Open(1, n, 1_000 + u64::from(n)));
    }
    // Key 1 got MAX_OPENS opens too: retired. Key 2 opens twice and is burned while it has opens.
    s.extend([Open(2, 1, 1_010), Open(2, 2, 1_011), Burn(2, 1_012), Burn(3, 1_012)]);
    s.push(Purge(1_100));
    s.extend((6..9).map(Put));
    s.extend([Open(6, 1, 1_200), Open(7, 1, 1_200), Open(7, 2, 1_201), Open(8, 9, 1_202)]);
    s.push(Purge(5_000));
    s
}

fn entries(rng: &mut ChaCha20Rng, dk: &DeviceKey) -> Vec<VaultEntry> {
    let tiers = [Tier::Gold, Tier::Silver, Tier::Bronze];
    (0..9)
        .map(|i| {
            let tier = tiers[i % 3];
            let kind = if (3..6).contains(&i) { CoinKind::OneTime } else { CoinKind::LastResort };
            let key_id = KeyId::random(rng);
            let mut seed = [0u8; 64];
            rng.fill_bytes(&mut seed);
            let seed = SecretSeed::from_slice(&seed[..tier.seed_len()]).unwrap();
            let sealed = SealedSecret::seal(dk, &key_id, tier, &seed, rng).unwrap();
            let created = if i < 6 { 1_000 } else { 1_150 };
            VaultEntry::new_active(key_id, tier, kind, sealed, created, created + 1_000 + i as u64)
        })
        .collect()
}

fn check(vault: &Vault, model: &Model, at: &str) {
    assert_eq!(vault.stats().unwrap(), model.stats(), "{at}: counters");
    for (id, k) in &model.keys {
        let want = if k.burned { KeyStatus::Burned } else { KeyStatus::Active };
        assert_eq!(vault.status(id).unwrap(), Some(want), "{at}: status");
        assert_eq!(vault.last_resort_opens(id).unwrap().digests(), &k.opens[..], "{at}: opens");
    }
    for id in &model.gone {
        assert_eq!(vault.status(id).unwrap(), None, "{at}: a purged key is back");
        assert!(vault.last_resort_opens(id).unwrap().is_empty(), "{at}: a purged key's opens survive");
    }
    let gone: std::collections::HashSet<&[u8]> = model.destroyed.iter().map(|ct| &ct[..16]).collect();
    vault
        .with_flash(|f| {
            let raw = f.as_bytes();
            for a in (0..raw.len() - 16).step_by(4) {
                assert!(
                    !gone.contains(&raw[a..a + 16]),
                    "{at}: a retired, burned or expired secret is in flash at {a:#x}"
                );
            }
        })
        .unwrap();
}

/// What a reboot after a cut in `step` shows; the model takes it, and it must be all or nothing.
fn settle(vault: &Vault, model: &mut Model, entries: &[VaultEntry], step: Step) {
    match step {
        Step::Put(i) => match vault.status(&entries[i].key_id).unwrap() {
            Some(KeyStatus::Active) => {
                model.keys.insert(entries[i].key_id, Key { entry: entries[i].clone(), burned: false, opens: vec![] });
            }
            None => {}
            other => panic!("interrupted put left {other:?}"),
        },
        Step::Open(i, n, _) => {
            let id = entries[i].key_id;
            let k = &model.keys[&id];
            let retires = k.opens.len() + 1 >= usize::from(MAX_OPENS);
            let opens = vault.last_resort_opens(&id).unwrap();
            match vault.status(&id).unwrap() {
                Some(KeyStatus::Burned) if retires => {
                    assert!(opens.is_empty(), "a retired key kept its opens");
                    model.open(&id, digest(n));
                }
                Some(KeyStatus::Active) if opens.digests() == &k.opens[..] => {}
                Some(KeyStatus::Active) if !retires && opens.contains(&digest(n)) => model.open(&id, digest(n)),
                other => panic!("interrupted open left {other:?} with {} opens", opens.len()),
            }
        }
        Step::Burn(i, _) => match vault.status(&entries[i].key_id).unwrap() {
            Some(KeyStatus::Burned) => model.burn(&entries[i].key_id),
            Some(KeyStatus::Active) => {}
            other => panic!("interrupted burn left {other:?}"),
        },
        Step::Purge(now) => {
            let ids: Vec<KeyId> = model.keys.keys().copied().collect();
            for id in ids {
                if vault.status(&id).unwrap().is_none() {
                    let k = &model.keys[&id];
                    assert!(k.burned || now >= policy().vault_deadline(k.entry.expires_at), "a live key vanished");
                    model.remove(&id);
                }
            }
        }
    }
}

/// Run `steps` from `from`; returns the step a cut interrupted.
fn play(vault: &Vault, model: &mut Model, entries: &[VaultEntry], steps: &[Step], from: usize) -> Option<usize> {
    for (n, &step) in steps.iter().enumerate().skip(from) {
        let r = match step {
            Step::Put(i) => vault
                .put(&entries[i])
                .map(|()| {
                    model
                        .keys
                        .insert(entries[i].key_id, Key { entry: entries[i].clone(), burned: false, opens: vec![] })
                })
                .map(|_| ()),
            Step::Open(i, d, now) => {
                let id = entries[i].key_id;
                // Skipped when a cut undid what the open needs (the key's put, or an earlier
                // retirement made this one a refusal the model predicts).
                match model.keys.get(&id) {
                    Some(k) if !k.burned => {}
                    _ => continue,
                }
                match vault.open_last_resort(&id, &digest(d), now) {
                    Ok(retired) => {
                        model.open(&id, digest(d));
                        assert_eq!(retired, model.keys[&id].burned, "step {n}: retirement");
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            Step::Burn(i, now) => {
                let id = entries[i].key_id;
                match model.keys.get(&id) {
                    Some(k) if !k.burned => {}
                    _ => continue,
                }
                vault.burn(&id, now).map(|()| model.burn(&id))
            }
            Step::Purge(now) => vault.purge(now).map(|_| model.purge(now)),
        };
        match r {
            Ok(()) => {}
            Err(e) if is_power_loss(&e) => return Some(n),
            Err(e) => panic!("step {n} ({step:?}): unexpected error {e}"),
        }
    }
    None
}

fn test_identity(dk: &DeviceKey, rng: &mut ChaCha20Rng) -> StoredIdentity {
    let seed = SecretSeed::from_slice(&[7; 64]).unwrap();
    let sealed = SealedSecret::seal(dk, &KeyId([0xEE; 16]), Tier::Silver, &seed, rng).unwrap();
    StoredIdentity { user_id: aqm_core::UserId([3; 16]), sealed }
}

/// Play `steps` uncut, then once per flash operation of that run with the power cut right after
/// it: after each cut, reboot, settle the interrupted step, check the vault against the model,
/// play the rest and check again. Returns the uncut run's model and how many cuts were survived.
fn survive_every_cut(
    name: &str,
    model_of: fn(u64) -> CutModel,
    identity: &StoredIdentity,
    entries: &[VaultEntry],
    steps: &[Step],
    wraps: bool,
) -> (Model, u64) {
    // The uncut run: its flash operations and its end state.
    let m = model_of(0);
    let vault = Vault::open(fresh_flash(m), layout(m), policy()).unwrap();
    vault.set_identity(identity).unwrap();
    let before = vault.with_flash(|f| f.stats()).unwrap();
    let mut full = Model::default();
    assert!(play(&vault, &mut full, entries, steps, 0).is_none());
    let after = vault.with_flash(|f| f.stats()).unwrap();
    let total = (after.writes + after.erases) - (before.writes + before.erases);
    if wraps {
        assert!(after.erases > before.erases, "the script wraps the record map");
    }
    let vault = reboot(vault);
    check(&vault, &full, &format!("{name}, uncut"));

    for j in 1..=total {
        let m = model_of(j);
        let mut vault = Vault::open(fresh_flash(m), layout(m), policy()).unwrap();
        vault.set_identity(identity).unwrap();
        vault.with_flash(|f| f.cut_power_after(u32::try_from(j).unwrap())).unwrap();
        let mut model = Model::default();
        let n = play(&vault, &mut model, entries, steps, 0).unwrap_or_else(|| panic!("{name}: no cut at flash op {j}"));
        vault = reboot(vault);
        let at = format!("{name}, cut at flash op {j} of {total} (step {n}: {:?})", steps[n]);
        settle(&vault, &mut model, entries, steps[n]);
        check(&vault, &model, &at);
        assert_eq!(vault.identity().unwrap().as_ref(), Some(identity), "{at}: identity");
        assert!(play(&vault, &mut model, entries, steps, n + 1).is_none(), "{at}: no second cut");
        let vault = reboot(vault);
        check(&vault, &model, &format!("{at}, at the end"));
    }
    (full, total)
}

#[test]
fn every_cut_point_of_last_resort_opens_retirement_burn_and_purge() {
    let mut rng = ChaCha20Rng::seed_from_u64(14);
    let dk = DeviceKey::random(&mut rng);
    let entries = entries(&mut rng, &dk);
    let identity = test_identity(&dk, &mut rng);
    let steps = script();
    for (name, model_of) in [
        ("prefix", (|_| CutModel::Prefix) as fn(u64) -> CutModel),
        ("any", |j| CutModel::AnyState { seed: 14_000 + j }),
    ] {
        let (full, total) = survive_every_cut(name, model_of, &identity, &entries, &steps, true);
        // Keys 0 and 1 retired, 2 and 3 burned; then all purged, the rest expired.
        assert_eq!(full.total_burned, 4);
        assert_eq!(full.total_expired, 5);
        assert!(full.keys.is_empty());
        println!("last-resort script ({name}): {total} cuts (every flash operation) survived");
    }
}

/// A random script of the same steps from `rng`: every key put once (the last-resort ones
/// opened at random, any key burned now and then), up to five purges in between (each past
/// every earlier burn's grace), all before any key expires, and a final purge after every
/// expiry.
fn random_script(rng: &mut ChaCha20Rng) -> Vec<Step> {
    let last_resort: [usize; 6] = [0, 1, 2, 6, 7, 8];
    let mut order: Vec<usize> = (0..9).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.random_range(0..=i));
    }
    let (mut put, mut next_digest, mut now, mut purges) = (Vec::new(), [0u8; 9], 1_001u64, 0);
    let mut s = Vec::new();
    while s.len() < 60 {
        now += 1;
        let roll = rng.random_range(0..20);
        if !order.is_empty() && (put.is_empty() || roll < 5) {
            let i = order.pop().unwrap();
            put.push(i);
            s.push(Step::Put(i));
        } else if roll == 5 && purges < 5 {
            // Past every burn's grace, as the model's purge assumes; still before any expiry.
            purges += 1;
            now += policy().burn_grace_secs;
            s.push(Step::Purge(now));
        } else if roll < 8 {
            s.push(Step::Burn(put[rng.random_range(0..put.len())], now));
        } else {
            let open: Vec<usize> = put.iter().copied().filter(|i| last_resort.contains(i)).collect();
            if let Some(&i) = open.get(rng.random_range(0..open.len().max(1))) {
                next_digest[i] = next_digest[i].saturating_add(1);
                s.push(Step::Open(i, next_digest[i], now));
            }
        }
    }
    s.extend(order.into_iter().map(Step::Put));
    s.push(Step::Purge(5_000));
    s
}

/// The soak's half of this file (`firmware/soak.sh` runs it on seeds CI never uses): random
/// scripts (`AQM_POWERFAIL_ROUNDS`, default 1; seeds from `AQM_POWERFAIL_SEED`, default fixed),
/// each cut at every flash operation under both cut models.
#[test]
fn random_last_resort_scripts_survive_every_cut() {
    let rounds: u64 = std::env::var("AQM_POWERFAIL_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let first: u64 = std::env::var("AQM_POWERFAIL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(14_014);
    let mut cuts = [0u64; 2];
    for round in 0..rounds {
        let seed = first.wrapping_add(round);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let dk = DeviceKey::random(&mut rng);
        let entries = entries(&mut rng, &dk);
        let identity = test_identity(&dk, &mut rng);
        let steps = random_script(&mut rng);
        for (k, (name, model_of)) in [
            ("prefix", (|_| CutModel::Prefix) as fn(u64) -> CutModel),
            ("any", |j| CutModel::AnyState { seed: 0xA5A5_0000 ^ j }),
        ]
        .into_iter()
        .enumerate()
        {
            let (full, total) =
                survive_every_cut(&format!("seed {seed}, {name}"), model_of, &identity, &entries, &steps, false);
            assert!(full.keys.is_empty(), "seed {seed}: the final purge leaves nothing");
            cuts[k] += total;
        }
    }
    println!(
        "random last-resort scripts: {rounds} rounds from seed {first}: {} cuts (prefix), {} cuts (any state) survived",
        cuts[0], cuts[1]
    );
}

/// A first message opened before a reboot is a replay after it: the opens item survives the
/// power cycle; a new first message still opens, and nothing else changed.
#[test]
fn a_replayed_first_message_is_refused_after_a_reboot() {
    let mut rng = ChaCha20Rng::seed_from_u64(15);
    let dk = DeviceKey::random(&mut rng);
    let e = entries(&mut rng, &dk).swap_remove(1);
    assert!(e.is_last_resort());
    let m = CutModel::Prefix;
    let vault = Vault::open(fresh_flash(m), layout(m), policy()).unwrap();
    vault.put(&e).unwrap();
    assert!(!vault.open_last_resort(&e.key_id, &digest(1), 1_001).unwrap());
    let before = vault.stats().unwrap();
    let vault = reboot(vault);
    assert_eq!(vault.open_last_resort(&e.key_id, &digest(1), 1_002), Err(Error::Core(aqm_core::Error::Replay)));
    assert_eq!(vault.stats().unwrap(), before);
    assert_eq!(vault.last_resort_opens(&e.key_id).unwrap().digests(), &[digest(1)]);
    assert_eq!(vault.get(&e.key_id, 1_002).unwrap().as_ref(), Some(&e), "the key and its kind survive");
    assert!(!vault.open_last_resort(&e.key_id, &digest(2), 1_003).unwrap());
    let vault = reboot(vault);
    assert_eq!(vault.last_resort_opens(&e.key_id).unwrap().digests(), &[digest(1), digest(2)]);
}
