//! The conformance kit on the in-memory reference store, plus the cases only a fixed-capacity
//! store has (a full table refuses with `CapacityFull` and changes nothing).

use aqm_core::memory::MemoryStore;
use aqm_core::store::{Direction, DirectoryStore, InventoryStore, SessionStore, VaultStore};
use aqm_core::testkit::fixtures::{T0, expect_core, fixtures, must};
use aqm_core::{Error, Policy, Priority, Tier, TierCounts, UserId};

/// Room for the kit's largest case: the inventory model keeps three contacts at their largest
/// caps (10 coins each). Boxed: a store of this size is too large to move around a test stack.
type KitStore = MemoryStore<64, 32>;

fn fresh(policy: Policy) -> Box<KitStore> {
    Box::new(KitStore::new(policy))
}

aqm_core::conformance!(fresh => |fx| &**fx; vault, session, pins, inventory, directory; sync);

/// Room for two of everything.
type Tiny = MemoryStore<2, 2, 2, 2, 2, 1, 1>;

#[test]
fn full_vault_refuses_and_changes_nothing() {
    let s = Tiny::default();
    let bob = &fixtures().bob;
    must(s.put(&bob.vault_entry(Tier::Gold, 0, T0)), "put");
    must(s.put(&bob.vault_entry(Tier::Gold, 1, T0)), "put");
    let before = must(s.stats(), "stats");
    let third = bob.vault_entry(Tier::Gold, 2, T0);
    expect_core(s.put(&third), Error::CapacityFull { what: "vault" }, "third put");
    assert_eq!(must(s.stats(), "stats"), before);
    assert_eq!(must(s.status(&third.key_id), "status"), None);
    // Burning and purging makes room again.
    must(s.burn(&bob.vault_entry(Tier::Gold, 0, T0).key_id, T0), "burn");
    must(s.purge(T0 + 60), "purge");
    must(s.put(&third), "put after purge");
}

#[test]
fn full_session_store_refuses_burn_and_save_atomically() {
    let s = Tiny::default();
    let e = fixtures().bob.vault_entry(Tier::Bronze, 0, T0);
    must(s.put(&e), "put");
    let blob = aqm_core::store::SessionBlob::from_slice(&[1, 2, 3]).expect("blob");
    let v = must(s.save_session(&UserId([1; 16]), Direction::Receive, &blob, None), "save");
    must(s.save_session(&UserId([2; 16]), Direction::Send, &blob, None), "save");
    let before = must(s.stats(), "stats");
    expect_core(
        s.burn_and_save_session(&e.key_id, T0 + 1, &UserId([3; 16]), &blob, None),
        Error::CapacityFull { what: "session store" },
        "burn_and_save with no room for the session",
    );
    assert_eq!(must(s.stats(), "stats"), before, "the key must not be burned either");
    assert!(must(s.get(&e.key_id, T0 + 1), "get").is_some());
    // Replacing an existing receive record needs no room.
    must(s.burn_and_save_session(&e.key_id, T0 + 1, &UserId([1; 16]), &blob, Some(v)), "burn_and_save");
}

#[test]
fn full_inventory_refuses_and_changes_nothing() {
    let s = Tiny::default();
    let f = fixtures();
    must(s.register_contact(&f.bob.as_contact(Priority::Bestie, T0)), "register");
    must(s.register_contact(&f.carol.as_contact(Priority::Mate, T0)), "register");
    expect_core(
        s.register_contact(&f.dave.as_contact(Priority::Mate, T0)),
        Error::CapacityFull { what: "inventory contacts" },
        "third contact",
    );
    must(s.store_coin(&f.bob.id(), f.bob.coin(Tier::Gold, 0), T0), "store");
    must(s.store_coin(&f.carol.id(), f.carol.coin(Tier::Silver, 0), T0), "store");
    expect_core(
        s.store_coin(&f.bob.id(), f.bob.coin(Tier::Gold, 1), T0),
        Error::CapacityFull { what: "inventory coins" },
        "third coin",
    );
    // Rule refusals come before capacity.
    expect_core(
        s.store_coin(&f.carol.id(), f.carol.coin(Tier::Gold, 0), T0),
        Error::BudgetExceeded { tier: Tier::Gold, cap: 0 },
        "MATE GOLD",
    );
    assert_eq!(must(s.counts(&f.bob.id()), "counts"), TierCounts([1, 0, 0]));
    assert!(must(s.contact(&f.dave.id()), "contact").is_none());
}

#[test]
fn full_directory_refuses_whole_batch() {
    let s = Tiny::default();
    let bob = &fixtures().bob;
    must(s.register_identity(bob.identity.public(), bob.proof()), "register");
    expect_core(
        s.register_identity(fixtures().carol.identity.public(), fixtures().carol.proof()),
        Error::CapacityFull { what: "directory identities" },
        "second identity",
    );
    let coins: Vec<_> = (0..3).map(|i| bob.coin(Tier::Bronze, i).clone()).collect();
    expect_core(s.upload(&bob.id(), &coins, T0), Error::CapacityFull { what: "directory coins" }, "three coins");
    assert_eq!(must(s.available(&bob.id()), "available"), TierCounts::default());
    assert_eq!(must(s.upload(&bob.id(), &coins[..2], T0), "upload"), 2);
    // One claim record: a second requester cannot claim until the window turns over.
    assert_eq!(must(s.claim(&bob.id(), &UserId([1; 16]), Tier::Bronze, 1, None, T0), "claim").len(), 1);
    expect_core(
        s.claim(&bob.id(), &UserId([2; 16]), Tier::Bronze, 1, None, T0),
        Error::CapacityFull { what: "directory claim records" },
        "second requester",
    );
    assert_eq!(must(s.available(&bob.id()), "available"), TierCounts([0, 0, 1]));
    let next = T0 + Policy::DEFAULT.claim_quota_window_secs;
    assert_eq!(must(s.claim(&bob.id(), &UserId([2; 16]), Tier::Bronze, 1, None, next), "claim").len(), 1);
}

#[test]
fn store_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<MemoryStore>();
    check::<Tiny>();
}
