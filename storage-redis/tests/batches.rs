//! Work larger than one batch: purge runs in atomic batches of 512 and contacts are listed 256
//! per round trip; the totals must still be exact.

mod common;

use aqm_core::inventory::ContactMeta;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::{Priority, Tier};
use common::{Mint, TestStore};

#[test]
fn purge_spans_several_batches_and_counts_every_key() {
    let s = TestStore::new("batch-purge");
    let mut mint = Mint::new(61);
    // A key minted at 0 stays until its expiry plus the vault grace.
    let ttl = aqm_core::protocol::COIN_LIFETIME_SECS + s.policy().vault_grace_secs;
    let old: Vec<_> = (0..1200).map(|_| mint.coin(Tier::Bronze, 0).vault).collect();
    let young: Vec<_> = (0..30).map(|_| mint.coin(Tier::Bronze, ttl).vault).collect();
    for e in old.iter().chain(&young) {
        s.put(e).unwrap();
    }
    // Burn some young ones: 20 burned and past their grace at purge time, 10 kept ACTIVE.
    for e in &young[..20] {
        s.burn(&e.key_id, ttl + 1).unwrap();
    }
    let report = s.purge(ttl + 1 + s.policy().burn_grace_secs).unwrap();
    assert_eq!((report.expired, report.deleted_burned), (1200, 20));
    let stats = s.stats().unwrap();
    assert_eq!(stats.active.get(Tier::Bronze), 10);
    assert_eq!((stats.total_expired, stats.total_burned), (1200, 20));
    let audit = s.audit().unwrap();
    assert!(audit.consistent(), "{audit:?}");
    assert_eq!(s.purge(ttl + 1_000).unwrap().expired, 0, "nothing left to purge");
}

#[test]
fn contacts_are_listed_and_collected_across_batches() {
    let s = TestStore::new("batch-contacts");
    let n = 600;
    let mut first = Mint::new(1_000);
    let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(62);
    let mut ids = vec![first.owner.user_id()];
    ids.extend((1..n).map(|_| aqm_core::UserId::random(&mut rng)));
    for (i, id) in ids.iter().copied().enumerate() {
        // Every other contact was last active long ago.
        let last = if i % 2 == 0 { 0 } else { 100 * 86_400 };
        s.register_contact(&ContactMeta::new(id, Priority::Mate, "c", last).unwrap()).unwrap();
    }
    // A real coin of the first contact, so the GC report counts a key and its bytes.
    s.store_coin(&ids[0], &first.coin(Tier::Silver, 0).public, 0).unwrap();
    let mut visited = 0;
    s.for_each_contact(&mut |_, _| visited += 1).unwrap();
    assert_eq!(visited, n);
    let now = 100 * 86_400 + 1;
    let dry = s.collect_garbage(now, true).unwrap();
    assert_eq!(dry.contacts_cleaned, (n / 2) as u32);
    assert_eq!(dry.keys_deleted, 1);
    assert_eq!(s.counts(&ids[0]).unwrap().total(), 1, "a dry run deletes nothing");
    let real = s.collect_garbage(now, false).unwrap();
    assert_eq!(real, dry);
    assert_eq!(s.counts(&ids[0]).unwrap().total(), 0);
    assert_eq!(s.contact(&ids[0]).unwrap().unwrap().priority, Priority::Stranger);
    assert_eq!(s.contact(&ids[1]).unwrap().unwrap().priority, Priority::Mate);
}
