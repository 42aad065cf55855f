//! The core's `Messenger` against a running server through `HttpDirectory`: Bob publishes,
//! Alice pre-fetches into her inventory (every coin verified against Bob's identity) and writes
//! to him; Carol, a STRANGER with nothing cached, reaches Bob by one on-demand fetch; Bob opens
//! both and burns their coins.

mod common;

use aqm_core::coin;
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::ContactMeta;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
use aqm_core::pins::Trust;
use aqm_core::store::{DirectoryStore, InventoryStore, PinStore, VaultStore};
use aqm_core::{DeviceContext, Policy, Priority, Tier, TierCounts};
use aqm_server::client::HttpDirectory;
use aqm_server::unix_now;
use common::server::TestServer;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

#[test]
fn prefetch_send_and_on_demand_fetch_through_the_server() {
    let server_rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let server = server_rt.block_on(TestServer::start(&[]));
    let directory = HttpDirectory::new(&server.base, Policy::DEFAULT).expect("client");
    let mut rng = ChaCha20Rng::seed_from_u64(20);
    let (alice, bob, carol) =
        (Identity::generate(&mut rng), Identity::generate(&mut rng), Identity::generate(&mut rng));
    let (alice_dk, bob_dk, carol_dk) =
        (DeviceKey::random(&mut rng), DeviceKey::random(&mut rng), DeviceKey::random(&mut rng));
    let stores: [Box<MemoryStore<64, 32>>; 3] = std::array::from_fn(|_| Box::new(MemoryStore::new(Policy::DEFAULT)));
    let [alice_store, bob_store, carol_store] = &stores;
    for who in [&alice, &bob, &carol] {
        directory.register_identity(who.public(), &who.registration_proof(&mut rng).expect("proof")).expect("register");
    }

    // Bob mints 5/4/1 plus one spare BRONZE for the stranger, keeps the secrets, publishes.
    let now = unix_now();
    let mut public = Vec::new();
    for (tier, n) in [(Tier::Gold, 5), (Tier::Silver, 4), (Tier::Bronze, 2)] {
        for _ in 0..n {
            let m = coin::mint(&bob, tier, &bob_dk, now, &mut rng).expect("mint");
            bob_store.put(&m.vault).expect("vault");
            public.push(m.public);
        }
    }
    assert_eq!(directory.upload(&bob.user_id(), &public, now).expect("upload"), 11);

    // Alice: Bob is a BESTIE; prefetch fills her inventory to the caps, one BRONZE stays.
    alice_store
        .register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "Bob", now).expect("meta"))
        .expect("contact");
    alice_store.pin_identity(bob.public(), Trust::Exchanged).expect("pin");
    bob_store.pin_identity(alice.public(), Trust::Exchanged).expect("pin");
    let a = Messenger::new(&**alice_store, &alice, &alice_dk);
    let report = a.prefetch(&directory, &bob.user_id(), Some([1; 16]), now).expect("prefetch");
    assert_eq!((report.stored, report.rejected), (TierCounts([5, 4, 1]), 0));
    assert_eq!(directory.available(&bob.user_id()).expect("count"), TierCounts([0, 0, 1]));

    let b = Messenger::new(&**bob_store, &bob, &bob_dk);
    let sent = match a
        .send(&bob.user_id(), &DeviceContext::HOME_WIFI, b"hi Bob", SendOptions::default(), now, &mut rng)
        .expect("send")
    {
        SendOutcome::Sent(s) => s,
        other => panic!("expected a send, got {other:?}"),
    };
    assert_eq!(sent.tier, Tier::Gold);
    let got = b.receive(&sent.envelope.to_vec().expect("encode"), now, &mut rng).expect("receive");
    assert_eq!(&got.plaintext[..], b"hi Bob");

    // Carol: nothing cached, Bob not even a contact; pinned from the directory, she reaches him
    // with the one coin left, fetched on demand.
    let c = Messenger::new(&**carol_store, &carol, &carol_dk);
    c.pin_from_directory(&directory, &bob.user_id()).expect("pin from directory");
    let sent = c
        .send_or_fetch(
            &directory,
            &bob.user_id(),
            &DeviceContext::HOME_WIFI,
            b"hello, stranger here",
            SendOptions::default(),
            Some([2; 16]),
            now,
            &mut rng,
        )
        .expect("send or fetch")
        .expect("a coin was fetched on demand");
    assert_eq!(sent.tier, Tier::Bronze);
    b.pin_from_directory(&directory, &carol.user_id()).expect("Bob pins Carol from the directory");
    let got = b.receive(&sent.envelope.to_vec().expect("encode"), now, &mut rng).expect("receive");
    assert_eq!(&got.plaintext[..], b"hello, stranger here");
    assert!(got.unverified(), "a sender pinned only from the directory is shown unverified");
    assert_eq!(directory.available(&bob.user_id()).expect("count"), TierCounts::default());
    assert_eq!(bob_store.stats().expect("stats").total_burned, 2);
    server_rt.block_on(server.stop());
}
