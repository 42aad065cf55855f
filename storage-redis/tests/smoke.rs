mod common;

use aqm_core::inventory::ContactMeta;
use aqm_core::store::{InventoryStore, VaultStore};
use aqm_core::{Priority, Tier};
use common::{Mint, TestStore};

#[test]
fn smoke() {
    let s = TestStore::new("smoke");
    let mut m = Mint::new(1);
    let c = m.coin(Tier::Gold, 100);
    s.put(&c.vault).unwrap();
    assert_eq!(s.get(&c.vault.key_id, 101).unwrap().as_ref(), Some(&c.vault));
    s.burn(&c.vault.key_id, 102).unwrap();
    println!("{:?}", s.stats().unwrap());
    let bob = m.owner.user_id();
    s.register_contact(&ContactMeta::new(bob, Priority::Bestie, "bob", 100).unwrap()).unwrap();
    s.store_coin(&bob, &c.public, 100).unwrap();
    let got = s.select_coin(&bob, Tier::Gold, 101).unwrap().unwrap();
    assert_eq!(got.coin, c.public);
    println!("{:?}", s.audit().unwrap());
}
