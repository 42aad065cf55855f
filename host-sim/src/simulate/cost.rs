//! The cost of each crypto operation, per tier: modelled from measured figures by default, or
//! measured now on a sample with the real core (`--real-crypto`).
//!
//! The defaults are the criterion medians in the root README (`cargo bench -p aqm-core --bench
//! crypto --bench messaging`, 2026-12-04, this 2-vCPU VM): mint; the whole first send (verify
//! the coin, encapsulate, sign the re-key, ratchet, save) and first receive (open the seal,
//! regenerate the coin key, verify, decapsulate, decrypt, burn + save); a message on an open
//! chain; and the signature check of a claimed coin (the README's "verify re-key" column, the
//! same signature scheme per tier).

use std::time::Instant;

use aqm_core::coin;
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::envelope::MAX_ENVELOPE;
use aqm_core::inventory::ContactMeta;
use aqm_core::memory::MemoryStore;
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
use aqm_core::pins::Trust;
use aqm_core::store::{InventoryStore, PinStore, VaultStore};
use aqm_core::{DeviceContext, Policy, Priority, Tier};
use serde::Serialize;

use super::tally::Tally;

/// Microseconds per operation, per tier (GOLD, SILVER, BRONZE) where it depends on the tier.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CostModel {
    /// Where the figures come from.
    pub source: String,
    /// Mint one coin (key pair, seal, sign).
    pub mint_us: [f64; 3],
    /// Verify a claimed coin's signature.
    pub verify_coin_us: [f64; 3],
    /// The first message of a chain, sender side.
    pub first_send_us: [f64; 3],
    /// The first message of a chain, receiver side (burns the coin).
    pub first_receive_us: [f64; 3],
    /// A message on an open chain, sender side.
    pub chain_send_us: f64,
    /// A message on an open chain, receiver side.
    pub chain_receive_us: f64,
}

impl CostModel {
    /// The measured medians the model uses by default.
    pub fn measured_defaults() -> CostModel {
        CostModel {
            source: "criterion medians, root README (cargo bench -p aqm-core, 2026-12-04)".into(),
            mint_us: [836.0, 93.9, 41.2],
            verify_coin_us: [369.0, 107.0, 108.0],
            first_send_us: [1720.0, 267.0, 174.0],
            first_receive_us: [986.0, 301.0, 173.0],
            chain_send_us: 3.17,
            chain_receive_us: 4.01,
        }
    }

    /// Measure every operation now, `samples` times per tier, with the real core: `coin::mint`,
    /// `PublicCoin::verify`, and `Messenger::send_rekeyed` / `receive` / `send` on in-memory
    /// stores. Each figure is the median.
    pub fn measure(samples: usize) -> Result<CostModel, aqm_core::Error> {
        let samples = samples.clamp(3, 20);
        let mut rng = rand::rng();
        let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
        let (alice_dk, bob_dk) = (DeviceKey::random(&mut rng), DeviceKey::random(&mut rng));
        let mut m = CostModel {
            source: format!("measured now with the real core, median of {samples} per tier"),
            mint_us: [0.0; 3],
            verify_coin_us: [0.0; 3],
            first_send_us: [0.0; 3],
            first_receive_us: [0.0; 3],
            chain_send_us: 0.0,
            chain_receive_us: 0.0,
        };
        let (mut chain_send, mut chain_recv) = (Vec::new(), Vec::new());
        for tier in Tier::ALL {
            // Fresh stores per tier keep within the in-memory store's fixed capacities.
            let alice_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
            let bob_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
            alice_store.pin_identity(bob.public(), Trust::Exchanged)?;
            bob_store.pin_identity(alice.public(), Trust::Exchanged)?;
            alice_store.register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", 0)?)?;
            let a = Messenger::new(&*alice_store, &alice, &alice_dk);
            let b = Messenger::new(&*bob_store, &bob, &bob_dk);
            let (mut mint, mut verify, mut send, mut recv) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for k in 0..samples {
                let now = 1 + k as u64;
                let t0 = Instant::now();
                let minted = coin::mint(&bob, tier, &bob_dk, now, &mut rng)?;
                mint.push(t0.elapsed().as_secs_f64());
                let t0 = Instant::now();
                minted.public.verify(bob.public())?;
                verify.push(t0.elapsed().as_secs_f64());
                bob_store.put(&minted.vault)?;
                alice_store.store_coin(&bob.user_id(), &minted.public, now)?;
                // The context asks for the tier measured; allow_classical so BRONZE is reachable.
                let ctx = match tier {
                    Tier::Gold => DeviceContext::HOME_WIFI,
                    Tier::Silver => DeviceContext::OUTDOOR_CELLULAR,
                    Tier::Bronze => DeviceContext::UNDERGROUND,
                };
                let opts = SendOptions { allow_classical: true };
                let t0 = Instant::now();
                let out = a.send_rekeyed(&bob.user_id(), &ctx, b"modelled vs real", opts, now, &mut rng)?;
                send.push(t0.elapsed().as_secs_f64());
                let SendOutcome::Sent(sent) = out else { return Err(aqm_core::Error::KeyNotFound) };
                let mut buf = [0u8; MAX_ENVELOPE];
                let wire = sent.envelope.encode(&mut buf)?;
                let t0 = Instant::now();
                b.receive(wire, now, &mut rng)?;
                recv.push(t0.elapsed().as_secs_f64());
                let t0 = Instant::now();
                let out = a.send(&bob.user_id(), &ctx, b"on the open chain", opts, now, &mut rng)?;
                chain_send.push(t0.elapsed().as_secs_f64());
                let SendOutcome::Sent(sent) = out else { return Err(aqm_core::Error::KeyNotFound) };
                let wire = sent.envelope.encode(&mut buf)?;
                let t0 = Instant::now();
                b.receive(wire, now, &mut rng)?;
                chain_recv.push(t0.elapsed().as_secs_f64());
            }
            let i = tier.index();
            m.mint_us[i] = median_us(&mut mint);
            m.verify_coin_us[i] = median_us(&mut verify);
            m.first_send_us[i] = median_us(&mut send);
            m.first_receive_us[i] = median_us(&mut recv);
        }
        m.chain_send_us = median_us(&mut chain_send);
        m.chain_receive_us = median_us(&mut chain_recv);
        Ok(m)
    }

    /// Seconds of CPU the run's operations cost under this model, per tier and operation.
    pub fn apply(&self, t: &Tally) -> CryptoCost {
        let per = |counts: &[u64; 3], us: &[f64; 3]| -> [f64; 3] { [0, 1, 2].map(|i| counts[i] as f64 * us[i] / 1e6) };
        let chain = t.chain_messages() as f64;
        // A last-resort coin costs what a one-time coin of its tier costs to mint.
        let minted = [0, 1, 2].map(|i| t.minted[i] + t.last_resort_minted[i]);
        CryptoCost {
            mint_s: per(&minted, &self.mint_us),
            verify_coin_s: per(&t.coin_verifies, &self.verify_coin_us),
            first_send_s: per(&t.rekeys, &self.first_send_us),
            first_receive_s: per(&t.rekeys, &self.first_receive_us),
            chain_s: chain * (self.chain_send_us + self.chain_receive_us) / 1e6,
        }
    }
}

fn median_us(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(0.0) * 1e6
}

/// CPU seconds spent on crypto over the run, all devices, per tier (GOLD, SILVER, BRONZE).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CryptoCost {
    /// Minting (owners).
    pub mint_s: [f64; 3],
    /// Verifying claimed coins (senders).
    pub verify_coin_s: [f64; 3],
    /// First messages, sender side.
    pub first_send_s: [f64; 3],
    /// First messages, receiver side.
    pub first_receive_s: [f64; 3],
    /// Messages on open chains, both sides.
    pub chain_s: f64,
}

impl CryptoCost {
    /// Per tier, every operation of that tier.
    pub fn by_tier(&self) -> [f64; 3] {
        [0, 1, 2].map(|i| self.mint_s[i] + self.verify_coin_s[i] + self.first_send_s[i] + self.first_receive_s[i])
    }

    /// Everything.
    pub fn total_s(&self) -> f64 {
        self.by_tier().iter().sum::<f64>() + self.chain_s
    }
}
