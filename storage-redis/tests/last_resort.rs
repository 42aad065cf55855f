//! Last-resort coins end to end on Redis (issue 14), with real crypto through the core's
//! `Messenger`: every party's store is a sealed Redis store under its own prefix on the machine's
//! Redis, and the directory is the core's memory store (Redis implements no directory). A
//! directory with no one-time coin left still lets a new contact reach the owner, a second use of
//! the same last-resort coin opens with a different ciphertext, a replayed first message is
//! refused and changes nothing (every key of the owner's prefix compared byte for byte), what the
//! vault recorded holds for another connection (a restarted device), the coin retires when its
//! record is full, and two connections receiving the same first message at once open it exactly
//! once.

mod common;

use std::sync::Barrier;

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::Identity;
use aqm_core::envelope::MAX_ENVELOPE;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, Received, SendOptions, SendOutcome, Sent};
use aqm_core::pins::Trust;
use aqm_core::store::{Direction, DirectoryStore, PinStore, SessionStore, StoredSession, VaultStore};
use aqm_core::vault::{self, KeyStatus};
use aqm_core::{DeviceContext, Policy, StoreError, Tier, TierCounts, UserId};
use aqm_storage_redis::{Error, RedisStore};
use common::TestStore;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CTX: DeviceContext = DeviceContext::HOME_WIFI;

/// One device: an identity and its sealed Redis store (whose device key also seals its coins).
struct Party {
    id: Identity,
    store: TestStore,
}

impl Party {
    fn new(tag: &str, policy: &Policy, rng: &mut ChaCha20Rng) -> Party {
        Party { id: Identity::generate(rng), store: TestStore::with_policy(tag, policy.clone()) }
    }

    fn me(&self) -> UserId {
        self.id.user_id()
    }

    /// The messenger over this party's store, or over `other` (another connection to its prefix).
    fn messenger_on<'a>(&'a self, store: &'a RedisStore) -> Messenger<'a, RedisStore, Identity> {
        Messenger::new(store, &self.id, &self.store.1)
    }

    fn messenger(&self) -> Messenger<'_, RedisStore, Identity> {
        self.messenger_on(&self.store)
    }

    fn know(&self, other: &Party) {
        self.store.pin_identity(other.id.public(), Trust::Exchanged).expect("pin");
    }

    fn send_or_fetch(&self, directory: &MemoryStore, to: &Party, text: &[u8], rng: &mut ChaCha20Rng) -> Sent {
        self.messenger()
            .send_or_fetch(directory, &to.me(), &CTX, text, SendOptions::default(), None, 10, rng)
            .expect("send")
            .expect("a coin is handed out")
    }

    fn receive(&self, wire: &[u8], rng: &mut ChaCha20Rng) -> Result<Received, Error> {
        self.messenger().receive(wire, 20, rng)
    }

    fn recv_session(&self, peer: &Party) -> Option<StoredSession> {
        self.store.load_session(&peer.me(), Direction::Receive).expect("load session")
    }

    /// Every key of this party's prefix with its `DUMP` (type, fields and values): equal before
    /// and after a step exactly when the step wrote nothing.
    fn snapshot(&self) -> Vec<(String, Vec<u8>)> {
        let mut con = self.store.raw();
        self.store
            .all_keys()
            .into_iter()
            .map(|k| {
                let v: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut con).expect("DUMP");
                (k, v)
            })
            .collect()
    }

    /// The names of this party's last-resort opens records.
    fn opens_keys(&self) -> Vec<String> {
        let opens = self.store.key("vault:v4:opens:");
        self.store.all_keys().into_iter().filter(|k| k.starts_with(&opens)).collect()
    }
}

fn wire(sent: &Sent) -> Vec<u8> {
    let mut buf = [0u8; MAX_ENVELOPE];
    sent.envelope.encode(&mut buf).expect("encode").to_vec()
}

fn core_error(e: &Error) -> Option<aqm_core::Error> {
    e.as_core().cloned()
}

/// A directory that knows `owner` and holds `owner`'s last-resort BRONZE coin (in the owner's
/// vault too) and no one-time coin.
fn dry_directory(owner: &Party, rng: &mut ChaCha20Rng) -> (MemoryStore, PublicCoin) {
    let directory = MemoryStore::new(Policy::DEFAULT);
    directory
        .register_identity(owner.id.public(), &owner.id.registration_proof(rng).expect("proof"))
        .expect("register");
    let lr = coin::mint_last_resort(&owner.id, Tier::Bronze, &owner.store.1, 0, rng).expect("mint last resort");
    owner.store.put(&lr.vault).expect("put last-resort entry");
    assert_eq!(directory.upload(&owner.me(), core::slice::from_ref(&lr.public), 0).expect("upload"), 1);
    assert_eq!(directory.available(&owner.me()).expect("available"), TierCounts::default());
    (directory, lr.public)
}

/// The crypto of the core is slow unoptimised and its values are large: room for both.
fn on_big_stack(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::Builder::new().stack_size(32 << 20).spawn(f).expect("spawn");
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn a_dry_directory_still_reaches_the_owner_and_replays_are_refused_changing_nothing() {
    on_big_stack(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(1450);
        let p = Policy::DEFAULT;
        let alice = Party::new("lr-alice", &p, &mut rng);
        let bob = Party::new("lr-bob", &p, &mut rng);
        let carol = Party::new("lr-carol", &p, &mut rng);
        let dave = Party::new("lr-dave", &p, &mut rng);
        let (directory, lr) = dry_directory(&bob, &mut rng);
        for sender in [&alice, &carol, &dave] {
            sender.messenger().pin_from_directory(&directory, &bob.me()).expect("pin bob");
            bob.know(sender);
        }
        assert!(bob.opens_keys().is_empty(), "nothing opened yet");

        // Alice, a new contact, reaches Bob through his last-resort coin.
        let sent = alice.send_or_fetch(&directory, &bob, b"hi bob", &mut rng);
        assert!(sent.last_resort && sent.rekeyed);
        assert_eq!(sent.envelope.chain, lr.key_id);
        let first = wire(&sent);
        let got = bob.receive(&first, &mut rng).expect("bob opens alice's first message");
        assert!(got.last_resort && got.rekeyed);
        assert_eq!(&got.plaintext[..], b"hi bob");
        assert_eq!(bob.store.status(&lr.key_id).expect("status"), Some(KeyStatus::Active), "opening burns nothing");
        assert_eq!(bob.opens_keys().len(), 1, "the open is recorded beside the entry");
        assert!(bob.recv_session(&alice).is_some(), "the session was saved with the open");

        // A replay of that first message is refused, and not one key of Bob's changes.
        let before = bob.snapshot();
        let err = bob.receive(&first, &mut rng).expect_err("a replay is refused");
        assert_eq!(core_error(&err), Some(aqm_core::Error::Replay), "{err}");
        assert_eq!(bob.snapshot(), before, "the refused replay wrote nothing");

        // Carol uses the same coin: another KEM ciphertext, and it opens.
        let sent = carol.send_or_fetch(&directory, &bob, b"hi from carol", &mut rng);
        assert!(sent.last_resort);
        assert_eq!(sent.envelope.chain, lr.key_id);
        let carols = wire(&sent);
        assert_ne!(carols, first);
        assert_eq!(&bob.receive(&carols, &mut rng).expect("carol's opens").plaintext[..], b"hi from carol");

        // Bob's device restarts (a new connection, its own pool): the opens are in Redis, so both
        // first messages are still replays, and the coin still opens for a third sender.
        let restarted = bob.store.sibling();
        let before = bob.snapshot();
        for replay in [&first, &carols] {
            let err = bob.messenger_on(&restarted).receive(replay, 20, &mut rng).expect_err("replay after restart");
            assert_eq!(core_error(&err), Some(aqm_core::Error::Replay), "{err}");
        }
        assert_eq!(bob.snapshot(), before, "the refused replays wrote nothing");
        assert_eq!(restarted.get(&lr.key_id, 20).expect("get").map(|e| e.is_last_resort()), Some(true));
        let sent = dave.send_or_fetch(&directory, &bob, b"hi from dave", &mut rng);
        assert!(sent.last_resort);
        let got = bob.messenger_on(&restarted).receive(&wire(&sent), 20, &mut rng).expect("dave's opens");
        assert_eq!(&got.plaintext[..], b"hi from dave");

        // The chains go on past their last-resort opening message.
        let next = alice.messenger().send(&bob.me(), &CTX, b"on the chain", SendOptions::default(), 10, &mut rng);
        let SendOutcome::Sent(next) = next.expect("send") else { panic!("a chain message") };
        assert!(!next.last_resort && !next.rekeyed);
        assert_eq!(&bob.receive(&wire(&next), &mut rng).expect("chain message").plaintext[..], b"on the chain");
        assert_eq!(bob.store.stats().expect("stats").total_burned, 0);
        let audit = bob.store.audit().expect("audit");
        assert!(audit.consistent(), "{audit:#?}");
    });
}

#[test]
fn one_time_coins_go_first_and_the_coin_retires_when_its_record_is_full() {
    on_big_stack(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(1460);
        let policy = Policy { last_resort_max_opens: 2, ..Policy::DEFAULT };
        let bob = Party::new("lr-bob", &policy, &mut rng);
        let (directory, lr) = dry_directory(&bob, &mut rng);
        let one_time = coin::mint(&bob.id, Tier::Bronze, &bob.store.1, 0, &mut rng).expect("mint");
        bob.store.put(&one_time.vault).expect("put");
        assert_eq!(directory.upload(&bob.me(), core::slice::from_ref(&one_time.public), 0).expect("upload"), 1);

        let senders: Vec<Party> =
            (0..4).map(|i| Party::new(&format!("lr-sender{i}"), &Policy::DEFAULT, &mut rng)).collect();
        let mut sent = Vec::new();
        for s in &senders {
            s.messenger().pin_from_directory(&directory, &bob.me()).expect("pin bob");
            bob.know(s);
            sent.push(s.send_or_fetch(&directory, &bob, b"x", &mut rng));
        }
        // The one-time coin went to the first sender; the others got the last-resort coin.
        assert_eq!(sent[0].envelope.chain, one_time.public.key_id);
        assert!(!sent[0].last_resort);
        assert!(sent[1..].iter().all(|s| s.last_resort && s.envelope.chain == lr.key_id));

        bob.receive(&wire(&sent[0]), &mut rng).expect("one-time opens");
        assert_eq!(bob.store.status(&one_time.public.key_id).expect("status"), Some(KeyStatus::Burned));
        assert!(bob.receive(&wire(&sent[1]), &mut rng).expect("first last-resort open").last_resort);
        assert_eq!(
            vault::newest_last_resort(&*bob.store, Tier::Bronze, 20).expect("newest").map(|e| e.key_id),
            Some(lr.key_id)
        );
        // The second open fills the record (2): the coin retires as a burn does, opens dropped.
        bob.receive(&wire(&sent[2]), &mut rng).expect("second last-resort open");
        assert_eq!(bob.store.status(&lr.key_id).expect("status"), Some(KeyStatus::Burned));
        assert_eq!(vault::newest_last_resort(&*bob.store, Tier::Bronze, 20).expect("newest"), None);
        let stats = bob.store.stats().expect("stats");
        assert_eq!((stats.active, stats.total_burned), (TierCounts::default(), 2));
        assert!(bob.opens_keys().is_empty(), "a retired key keeps no opens");
        let before = bob.snapshot();
        let err = bob.receive(&wire(&sent[3]), &mut rng).expect_err("a retired coin opens nothing");
        assert_eq!(core_error(&err), Some(aqm_core::Error::KeyAlreadyBurned), "{err}");
        assert_eq!(bob.snapshot(), before, "the refusal wrote nothing");
        let audit = bob.store.audit().expect("audit");
        assert!(audit.consistent(), "{audit:#?}");
    });
}

#[test]
fn two_connections_receiving_the_same_first_message_at_once_open_it_exactly_once() {
    on_big_stack(|| {
        let mut rng = ChaCha20Rng::seed_from_u64(1470);
        let p = Policy::DEFAULT;
        let bob = Party::new("lr-race-bob", &p, &mut rng);
        let (directory, lr) = dry_directory(&bob, &mut rng);
        // Two of Bob's processes, each with its own connection pool to his prefix.
        let (one, two) = (bob.store.sibling(), bob.store.sibling());
        for round in 0..3 {
            let sender = Party::new(&format!("lr-race-sender{round}"), &p, &mut rng);
            sender.messenger().pin_from_directory(&directory, &bob.me()).expect("pin bob");
            bob.know(&sender);
            let sent = sender.send_or_fetch(&directory, &bob, b"once", &mut rng);
            assert!(sent.last_resort && sent.envelope.chain == lr.key_id);
            let first = wire(&sent);
            let go = Barrier::new(2);
            let results: Vec<Result<Received, Error>> = std::thread::scope(|sc| {
                let handles: Vec<_> = [&one, &two]
                    .into_iter()
                    .enumerate()
                    .map(|(n, store)| {
                        let (go, first, bob) = (&go, &first, &bob);
                        std::thread::Builder::new()
                            .stack_size(32 << 20)
                            .spawn_scoped(sc, move || {
                                let mut rng = ChaCha20Rng::seed_from_u64(1480 + n as u64);
                                go.wait();
                                bob.messenger_on(store).receive(first, 20, &mut rng)
                            })
                            .expect("spawn")
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().expect("receiver thread panicked")).collect()
            });
            let opened: Vec<&Received> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
            let replays =
                results.iter().filter(|r| r.as_ref().err().and_then(core_error) == Some(aqm_core::Error::Replay));
            assert_eq!((opened.len(), replays.count()), (1, 1), "round {round}: {results:?}");
            assert_eq!(&opened[0].plaintext[..], b"once");
            assert!(bob.recv_session(&sender).is_some(), "the winner's session was saved");
            // Once more afterwards, on either connection: a replay.
            let err = bob.messenger_on(&one).receive(&first, 20, &mut rng).expect_err("replay");
            assert_eq!(core_error(&err), Some(aqm_core::Error::Replay), "{err}");
        }
        assert_eq!(bob.store.status(&lr.key_id).expect("status"), Some(KeyStatus::Active));
        assert_eq!(bob.store.stats().expect("stats").total_burned, 0);
        let audit = bob.store.audit().expect("audit");
        assert!(audit.consistent(), "{audit:#?}");
    });
}
