//! AQM's cases, per tier, with the real core on in-memory stores: mint; the first message of a
//! chain (encapsulate + decapsulate + first ratchet step, with the re-key signature and its
//! check); a steady-state message on an open chain; and the full lifecycle (mint → store in the
//! vault → upload to the directory → claim by pre-fetch → select → send → receive → burn).
//!
//! Each sample gets fresh stores, built outside the timed part, so that fixed store capacities
//! and the directory's daily quota never shape a measurement.

use std::time::{Duration, Instant};

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::envelope::MAX_ENVELOPE;
use aqm_core::inventory::ContactMeta;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
use aqm_core::pins::Trust;
use aqm_core::store::{DirectoryStore, InventoryStore, PinStore, VaultStore};
use aqm_core::{DeviceContext, Error, Policy, Priority, Tier};

use super::Sample;

/// The context that asks for `tier` from a BESTIE (allow_classical lets BRONZE through).
fn context(tier: Tier) -> DeviceContext {
    match tier {
        Tier::Gold => DeviceContext::HOME_WIFI,
        Tier::Silver => DeviceContext::OUTDOOR_CELLULAR,
        Tier::Bronze => DeviceContext::UNDERGROUND,
    }
}

const OPTS: SendOptions = SendOptions { allow_classical: true };
const TEXT: &[u8] = b"a 32-byte message of the bench..";

/// Alice and Bob with pinned identities, Alice holding Bob as a BESTIE, and a directory that
/// knows Bob.
struct World {
    alice: Identity,
    bob: Identity,
    alice_dk: DeviceKey,
    bob_dk: DeviceKey,
    alice_store: Box<MemoryStore>,
    bob_store: Box<MemoryStore>,
    directory: Box<MemoryStore>,
}

impl World {
    fn new(alice: &Identity, bob: &Identity, rng: &mut impl rand::CryptoRng) -> Result<World, Error> {
        let w = World {
            alice: alice.clone(),
            bob: bob.clone(),
            alice_dk: DeviceKey::random(rng),
            bob_dk: DeviceKey::random(rng),
            alice_store: Box::new(MemoryStore::new(Policy::DEFAULT)),
            bob_store: Box::new(MemoryStore::new(Policy::DEFAULT)),
            directory: Box::new(MemoryStore::new(Policy::DEFAULT)),
        };
        w.alice_store.pin_identity(bob.public(), Trust::Exchanged)?;
        w.bob_store.pin_identity(alice.public(), Trust::Exchanged)?;
        w.alice_store.register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", 0)?)?;
        w.directory.register_identity(bob.public(), &bob.registration_proof(rng)?)?;
        Ok(w)
    }

    fn cache(&self, coin: &PublicCoin) -> Result<(), Error> {
        self.alice_store.store_coin(&self.bob.user_id(), coin, 1)
    }

    /// Alice's first message to Bob on a new chain: the envelope's bytes.
    fn first(&self, tier: Tier, rng: &mut impl rand::CryptoRng) -> Result<Vec<u8>, Error> {
        let a = Messenger::new(&*self.alice_store, &self.alice, &self.alice_dk);
        let SendOutcome::Sent(sent) = a.send_rekeyed(&self.bob.user_id(), &context(tier), TEXT, OPTS, 1, rng)? else {
            return Err(Error::KeyNotFound);
        };
        debug_assert_eq!(sent.tier, tier);
        let mut buf = [0u8; MAX_ENVELOPE];
        Ok(sent.envelope.encode(&mut buf)?.to_vec())
    }

    /// A message on the open chain.
    fn next(&self, tier: Tier, rng: &mut impl rand::CryptoRng) -> Result<Vec<u8>, Error> {
        let a = Messenger::new(&*self.alice_store, &self.alice, &self.alice_dk);
        let SendOutcome::Sent(sent) = a.send(&self.bob.user_id(), &context(tier), TEXT, OPTS, 1, rng)? else {
            return Err(Error::KeyNotFound);
        };
        let mut buf = [0u8; MAX_ENVELOPE];
        Ok(sent.envelope.encode(&mut buf)?.to_vec())
    }

    fn receive(&self, wire: &[u8], rng: &mut impl rand::CryptoRng) -> Result<(), Error> {
        let b = Messenger::new(&*self.bob_store, &self.bob, &self.bob_dk);
        b.receive(wire, 1, rng).map(|_| ())
    }
}

/// What a coin costs on the wire: its public key, signature and fields (the directory's
/// stored size, [`coin::stored_bytes`]).
fn coin_bytes(tier: Tier) -> usize {
    coin::stored_bytes(tier) as usize
}

/// Run every AQM case `n` times per tier.
pub fn run(n: usize, mut progress: impl FnMut()) -> Result<Vec<Sample>, Error> {
    let mut rng = rand::rng();
    let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
    let mut out = Vec::new();
    for tier in Tier::ALL {
        let pq = tier != Tier::Bronze;
        let mut mint = Sample::new(format!("AQM {tier}: mint a coin"), pq, coin_bytes(tier));
        let mut first = Sample::new(format!("AQM {tier}: first message (KEM + re-key + ratchet)"), pq, 0);
        let mut steady = Sample::new(format!("AQM {tier}: message on an open chain"), pq, 0);
        let mut life = Sample::new(format!("AQM {tier}: full lifecycle"), pq, 0);
        for _ in 0..n {
            let w = World::new(&alice, &bob, &mut rng)?;
            let t0 = Instant::now();
            let minted = coin::mint(&w.bob, tier, &w.bob_dk, 1, &mut rng)?;
            mint.push(t0.elapsed());

            w.bob_store.put(&minted.vault)?;
            w.cache(&minted.public)?;
            let t0 = Instant::now();
            let wire = w.first(tier, &mut rng)?;
            w.receive(&wire, &mut rng)?;
            first.push(t0.elapsed());
            first.wire_bytes = wire.len();

            let t0 = Instant::now();
            let wire = w.next(tier, &mut rng)?;
            w.receive(&wire, &mut rng)?;
            steady.push(t0.elapsed());
            steady.wire_bytes = wire.len();

            let w = World::new(&alice, &bob, &mut rng)?;
            let a = Messenger::new(&*w.alice_store, &w.alice, &w.alice_dk);
            let t0 = Instant::now();
            let minted = coin::mint(&w.bob, tier, &w.bob_dk, 1, &mut rng)?;
            w.bob_store.put(&minted.vault)?;
            w.directory.upload(&w.bob.user_id(), core::slice::from_ref(&minted.public), 1)?;
            a.prefetch(&*w.directory, &w.bob.user_id(), None, 1).map_err(|e| match e {
                aqm_core::messaging::FetchError::Store(e) | aqm_core::messaging::FetchError::Directory(e) => e,
            })?;
            let wire = w.first(tier, &mut rng)?;
            w.receive(&wire, &mut rng)?;
            let took: Duration = t0.elapsed();
            life.push(took);
            // Up to the directory, down to Alice, then the first message.
            life.wire_bytes = 2 * coin_bytes(tier) + wire.len();
            progress();
        }
        out.extend([mint, first, steady, life]);
    }
    Ok(out)
}
