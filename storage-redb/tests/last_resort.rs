//! Last-resort coins end to end on redb (issue 14), with real crypto through the core's
//! `Messenger`: every party's store is a sealed redb file and the directory is a redb file too.
//! A directory with no one-time coin left still lets a new contact reach the owner, a second use
//! of the same last-resort coin opens with a different ciphertext, a replayed first message is
//! refused and changes nothing, the coin retires when its record is full, and what the vault
//! recorded survives closing and reopening the file.

use std::path::{Path, PathBuf};

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::envelope::MAX_ENVELOPE;
use aqm_core::messaging::{Messenger, Received, SendOptions, Sent};
use aqm_core::pins::Trust;
use aqm_core::store::{Direction, DirectoryStore, PinStore, SessionStore, StoredSession, VaultStore};
use aqm_core::vault::{self, KeyStatus};
use aqm_core::{DeviceContext, Policy, StoreError, Tier, TierCounts, UserId};
use aqm_storage_redb::{Error, RedbStore};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const CTX: DeviceContext = DeviceContext::HOME_WIFI;

/// One device: an identity, its device key and its sealed redb file.
struct Party {
    id: Identity,
    dk: DeviceKey,
    path: PathBuf,
    policy: Policy,
    store: Option<RedbStore>,
}

impl Party {
    fn new(dir: &Path, name: &str, policy: &Policy, rng: &mut ChaCha20Rng) -> Party {
        let (id, dk) = (Identity::generate(rng), DeviceKey::random(rng));
        let path = dir.join(format!("{name}.redb"));
        let store = RedbStore::open(&path, policy.clone(), &dk).expect("open party store");
        Party { id, dk, path, policy: policy.clone(), store: Some(store) }
    }

    fn store(&self) -> &RedbStore {
        self.store.as_ref().expect("store is open")
    }

    /// Close the file and open it again, as a restarted device does.
    fn reopen(&mut self) {
        drop(self.store.take());
        self.store = Some(RedbStore::open(&self.path, self.policy.clone(), &self.dk).expect("reopen party store"));
    }

    fn me(&self) -> UserId {
        self.id.user_id()
    }

    fn messenger(&self) -> Messenger<'_, RedbStore, Identity> {
        Messenger::new(self.store(), &self.id, &self.dk)
    }

    fn know(&self, other: &Party) {
        self.store().pin_identity(other.id.public(), Trust::Exchanged).expect("pin");
    }

    fn send_or_fetch(&self, directory: &RedbStore, to: &Party, text: &[u8], rng: &mut ChaCha20Rng) -> Sent {
        self.messenger()
            .send_or_fetch(directory, &to.me(), &CTX, text, SendOptions::default(), None, 10, rng)
            .expect("send")
            .expect("a coin is handed out")
    }

    fn receive(&self, wire: &[u8], rng: &mut ChaCha20Rng) -> Result<Received, Error> {
        self.messenger().receive(wire, 20, rng)
    }

    fn recv_session(&self, peer: &Party) -> Option<StoredSession> {
        self.store().load_session(&peer.me(), Direction::Receive).expect("load session")
    }
}

fn wire(sent: &Sent) -> Vec<u8> {
    let mut buf = [0u8; MAX_ENVELOPE];
    sent.envelope.encode(&mut buf).expect("encode").to_vec()
}

fn core_error(e: &Error) -> Option<aqm_core::Error> {
    e.as_core().cloned()
}

/// A directory file that knows `owner` and holds `owner`'s last-resort BRONZE coin (in the
/// owner's vault too) and no one-time coin.
fn dry_directory(dir: &Path, owner: &Party, rng: &mut ChaCha20Rng) -> (RedbStore, PublicCoin) {
    let directory =
        RedbStore::open(dir.join("directory.redb"), Policy::DEFAULT, &DeviceKey::random(rng)).expect("directory");
    directory
        .register_identity(owner.id.public(), &owner.id.registration_proof(rng).expect("proof"))
        .expect("register");
    let lr = coin::mint_last_resort(&owner.id, Tier::Bronze, &owner.dk, 0, rng).expect("mint last resort");
    owner.store().put(&lr.vault).expect("put last-resort entry");
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
fn a_dry_directory_still_reaches_the_owner_replays_are_refused_and_it_all_survives_a_reopen() {
    on_big_stack(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut rng = ChaCha20Rng::seed_from_u64(1400);
        let p = Policy::DEFAULT;
        let alice = Party::new(tmp.path(), "alice", &p, &mut rng);
        let mut bob = Party::new(tmp.path(), "bob", &p, &mut rng);
        let carol = Party::new(tmp.path(), "carol", &p, &mut rng);
        let dave = Party::new(tmp.path(), "dave", &p, &mut rng);
        let (directory, lr) = dry_directory(tmp.path(), &bob, &mut rng);
        for sender in [&alice, &carol, &dave] {
            sender.messenger().pin_from_directory(&directory, &bob.me()).expect("pin bob");
            bob.know(sender);
        }

        // Alice, a new contact, reaches Bob through his last-resort coin.
        let sent = alice.send_or_fetch(&directory, &bob, b"hi bob", &mut rng);
        assert!(sent.last_resort && sent.rekeyed);
        assert_eq!(sent.envelope.chain, lr.key_id);
        let first = wire(&sent);
        let got = bob.receive(&first, &mut rng).expect("bob opens alice's first message");
        assert!(got.last_resort && got.rekeyed);
        assert_eq!(&got.plaintext[..], b"hi bob");
        assert_eq!(bob.store().status(&lr.key_id).expect("status"), Some(KeyStatus::Active), "opening burns nothing");

        // A replay of that first message is refused and changes nothing.
        let before = bob.recv_session(&alice);
        let err = bob.receive(&first, &mut rng).expect_err("a replay is refused");
        assert_eq!(core_error(&err), Some(aqm_core::Error::Replay), "{err}");
        assert_eq!(bob.recv_session(&alice), before);

        // Carol uses the same coin: another KEM ciphertext, and it opens.
        let sent = carol.send_or_fetch(&directory, &bob, b"hi from carol", &mut rng);
        assert!(sent.last_resort);
        assert_eq!(sent.envelope.chain, lr.key_id);
        let carols = wire(&sent);
        assert_ne!(carols, first);
        assert_eq!(&bob.receive(&carols, &mut rng).expect("carol's opens").plaintext[..], b"hi from carol");

        // Bob's device restarts: the opens were persisted, so both first messages are still
        // replays, their sessions are there, and the coin still opens for a third sender.
        bob.reopen();
        let before = (bob.recv_session(&alice), bob.recv_session(&carol));
        for replay in [&first, &carols] {
            let err = bob.receive(replay, &mut rng).expect_err("a replay after reopen is refused");
            assert_eq!(core_error(&err), Some(aqm_core::Error::Replay), "{err}");
        }
        assert_eq!((bob.recv_session(&alice), bob.recv_session(&carol)), before);
        assert_eq!(bob.store().get(&lr.key_id, 20).expect("get").map(|e| e.is_last_resort()), Some(true));
        let sent = dave.send_or_fetch(&directory, &bob, b"hi from dave", &mut rng);
        assert!(sent.last_resort);
        assert_eq!(&bob.receive(&wire(&sent), &mut rng).expect("dave's opens").plaintext[..], b"hi from dave");

        // The chains go on past their last-resort opening message.
        let next = alice.messenger().send(&bob.me(), &CTX, b"on the chain", SendOptions::default(), 10, &mut rng);
        let aqm_core::messaging::SendOutcome::Sent(next) = next.expect("send") else { panic!("a chain message") };
        assert!(!next.last_resort && !next.rekeyed);
        assert_eq!(&bob.receive(&wire(&next), &mut rng).expect("chain message").plaintext[..], b"on the chain");
        assert_eq!(bob.store().stats().expect("stats").total_burned, 0);
        let audit = bob.store().audit().expect("audit");
        assert!(audit.is_consistent(), "{:#?}", audit.problems);
        let audit = directory.audit().expect("audit");
        assert!(audit.is_consistent(), "{:#?}", audit.problems);
    });
}

#[test]
fn one_time_coins_go_first_and_the_coin_retires_when_its_record_is_full_across_a_reopen() {
    on_big_stack(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut rng = ChaCha20Rng::seed_from_u64(1410);
        let policy = Policy { last_resort_max_opens: 2, ..Policy::DEFAULT };
        let mut bob = Party::new(tmp.path(), "bob", &policy, &mut rng);
        let (directory, lr) = dry_directory(tmp.path(), &bob, &mut rng);
        let one_time = coin::mint(&bob.id, Tier::Bronze, &bob.dk, 0, &mut rng).expect("mint");
        bob.store().put(&one_time.vault).expect("put");
        assert_eq!(directory.upload(&bob.me(), core::slice::from_ref(&one_time.public), 0).expect("upload"), 1);

        let senders: Vec<Party> =
            (0..4).map(|i| Party::new(tmp.path(), &format!("sender{i}"), &Policy::DEFAULT, &mut rng)).collect();
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
        assert_eq!(bob.store().status(&one_time.public.key_id).expect("status"), Some(KeyStatus::Burned));
        assert!(bob.receive(&wire(&sent[1]), &mut rng).expect("first last-resort open").last_resort);
        bob.reopen();
        assert_eq!(
            vault::newest_last_resort(bob.store(), Tier::Bronze, 20).expect("newest").map(|e| e.key_id),
            Some(lr.key_id)
        );
        // The second open fills the record (2, counted across the reopen): the coin retires.
        bob.receive(&wire(&sent[2]), &mut rng).expect("second last-resort open");
        assert_eq!(bob.store().status(&lr.key_id).expect("status"), Some(KeyStatus::Burned));
        assert_eq!(vault::newest_last_resort(bob.store(), Tier::Bronze, 20).expect("newest"), None);
        assert_eq!(bob.store().stats().expect("stats").total_burned, 2);
        bob.reopen();
        let before = bob.recv_session(&senders[3]);
        let err = bob.receive(&wire(&sent[3]), &mut rng).expect_err("a retired coin opens nothing");
        assert_eq!(core_error(&err), Some(aqm_core::Error::KeyAlreadyBurned), "{err}");
        assert_eq!(bob.recv_session(&senders[3]), before);
        let audit = bob.store().audit().expect("audit");
        assert!(audit.is_consistent(), "{:#?}", audit.problems);
    });
}

#[test]
fn the_directory_file_keeps_the_newest_last_resort_coin_and_drops_it_when_stale() {
    on_big_stack(|| {
        let tmp = tempfile::tempdir().expect("temp dir");
        let mut rng = ChaCha20Rng::seed_from_u64(1420);
        let p = Policy::DEFAULT;
        let bob = Party::new(tmp.path(), "bob", &p, &mut rng);
        let (directory, lr) = dry_directory(tmp.path(), &bob, &mut rng);
        let alice = UserId([0xA1; 16]);

        // A newer coin replaces it; re-uploading the older one changes nothing.
        let newer = coin::mint_last_resort(&bob.id, Tier::Bronze, &bob.dk, 100, &mut rng).expect("mint");
        assert_eq!(directory.upload(&bob.me(), core::slice::from_ref(&newer.public), 100).expect("upload"), 1);
        assert_eq!(directory.upload(&bob.me(), core::slice::from_ref(&lr), 100).expect("re-upload"), 0);
        let got = directory.claim(&bob.me(), &alice, Tier::Bronze, 1, Some([7; 16]), 100).expect("claim");
        assert_eq!(got.as_slice(), core::slice::from_ref(&newer.public));
        // An idempotent retry returns it again, and it is never used up.
        assert_eq!(directory.claim(&bob.me(), &alice, Tier::Bronze, 1, Some([7; 16]), 100).expect("retry"), got);
        assert_eq!(directory.claim(&bob.me(), &alice, Tier::Bronze, 1, None, 100).expect("again").as_slice(), got);
        assert_eq!(directory.available(&bob.me()).expect("available"), TierCounts::default());

        // Past its hand-out life the purge drops it, and a claim finds nothing.
        let late = newer.public.expires_at;
        assert_eq!(directory.purge_stale(late).expect("purge"), 1);
        assert!(directory.claim(&bob.me(), &alice, Tier::Bronze, 1, None, late).expect("claim").is_empty());
        let audit = directory.audit().expect("audit");
        assert!(audit.is_consistent(), "{:#?}", audit.problems);
    });
}
