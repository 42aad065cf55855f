//! Shared helpers of the lifecycle tests: a party with an identity, a device key and an
//! in-memory store.
#![allow(dead_code)]

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::envelope::{Envelope, MAX_ENVELOPE};
use aqm_core::inventory::ContactMeta;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, Received, SendOptions, SendOutcome, Sent};
use aqm_core::pins::Trust;
use aqm_core::store::{Direction, InventoryStore, PinStore, SessionStore, StoredSession, VaultStore};
use aqm_core::{DeviceContext, Error, Policy, Priority, Tier, UserId};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

pub struct Party {
    pub id: Identity,
    pub dk: DeviceKey,
    pub store: Box<MemoryStore>,
}

impl Party {
    pub fn new(rng: &mut ChaCha20Rng) -> Party {
        Party { id: Identity::generate(rng), dk: DeviceKey::random(rng), store: new_store() }
    }

    pub fn me(&self) -> UserId {
        self.id.user_id()
    }

    pub fn messenger(&self) -> Messenger<'_, MemoryStore, Identity> {
        Messenger::new(&*self.store, &self.id, &self.dk, Policy::DEFAULT)
    }

    /// Mint a coin into our vault and return its public half.
    pub fn mint(&self, tier: Tier, rng: &mut ChaCha20Rng) -> PublicCoin {
        let m = coin::mint(&self.id, tier, &self.dk, 0, rng).unwrap();
        self.store.put(&m.vault).unwrap();
        m.public
    }

    /// Register `other` as a contact and exchange identities both ways (pinned as exchanged).
    pub fn befriend(&self, other: &Party, priority: Priority) {
        self.store.register_contact(&ContactMeta::new(other.me(), priority, "friend", 0).unwrap()).unwrap();
        self.know(other);
        other.know(self);
    }

    /// Pin `other`'s identity as learned in a contact exchange.
    pub fn know(&self, other: &Party) {
        self.store.pin_identity(other.id.public(), Trust::Exchanged).unwrap();
    }

    pub fn cache(&self, coin: &PublicCoin) {
        self.store.store_coin(&coin.owner, coin, 0).unwrap();
    }

    pub fn send(&self, to: &Party, ctx: &DeviceContext, text: &[u8], rng: &mut ChaCha20Rng) -> Sent {
        match self.messenger().send(&to.me(), ctx, text, SendOptions::default(), 10, rng).unwrap() {
            SendOutcome::Sent(s) => s,
            other => panic!("expected a sent message, got {other:?}"),
        }
    }

    pub fn receive(&self, wire: &[u8], rng: &mut ChaCha20Rng) -> Result<Received, Error> {
        self.messenger().receive(wire, 20, rng)
    }

    pub fn recv_blob(&self, peer: &Party) -> Option<StoredSession> {
        self.store.load_session(&peer.me(), Direction::Receive).unwrap()
    }
}

/// The reference store is a large value, and this crate's own code is unoptimised in tests:
/// run each test on a thread with room for it.
pub fn on_big_stack(f: impl FnOnce() + Send + 'static) {
    let t = std::thread::Builder::new().stack_size(32 << 20).spawn(f).unwrap();
    if let Err(panic) = t.join() {
        std::panic::resume_unwind(panic);
    }
}

pub fn new_store() -> Box<MemoryStore> {
    Box::new(MemoryStore::new(Policy::DEFAULT))
}

pub fn wire(sent: &Sent) -> Vec<u8> {
    let mut buf = [0u8; MAX_ENVELOPE];
    sent.envelope.encode(&mut buf).unwrap().to_vec()
}

pub fn reencode(env: &Envelope) -> Vec<u8> {
    env.to_vec().unwrap()
}

pub fn setup(seed: u64) -> (ChaCha20Rng, Party, Party) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let alice = Party::new(&mut rng);
    let bob = Party::new(&mut rng);
    (rng, alice, bob)
}
