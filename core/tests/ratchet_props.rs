//! The receive ratchet against a simple model: random delivery orders, drops, duplicates,
//! tampered copies and rolled-back resends (a sender whose state was restored sends another text
//! at the same counter, with a fresh nonce) over several chains. Every delivery either opens
//! (once per counter, with the text of the copy delivered) or is refused exactly as the
//! documented rule says, and a refusal changes nothing.

use std::collections::{HashSet, VecDeque};

use aqm_core::crypto::{SharedSecret, decapsulate, encapsulate, generate_keypair};
use aqm_core::ratchet::{MAX_SKIPPED, RecvChain, RecvSession, SendChain, TagBytes};
use aqm_core::{Error, KeyId, Tier, UserId};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

const ALICE: UserId = UserId([0xa1; 16]);
const BOB: UserId = UserId([0xb0; 16]);
const AAD: &[u8] = b"header";

/// One sealed copy of a message.
#[derive(Clone, Copy)]
struct Copy {
    text: [u8; 12],
    ct: [u8; 12],
    tag: TagBytes,
    nonce: [u8; 12],
}

/// A message slot: the copy the sender sent, and the one a rolled-back sender sent instead.
struct Msg {
    chain: usize,
    counter: u32,
    copies: [Copy; 2],
}

const TRANSCRIPT: [u8; 32] = [0x7a; 32];

fn coin(chain: usize) -> KeyId {
    KeyId([chain as u8 + 1; 16])
}

/// Alice sends `limit` messages on each of `chains` chains; Bob's side gets each chain's secret.
fn traffic(chains: usize, limit: u32, seed: u64) -> (Vec<Msg>, Vec<SharedSecret>) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut msgs = Vec::new();
    let mut secrets = Vec::new();
    for c in 0..chains {
        let (sk, pk) = generate_keypair(Tier::Bronze, &mut rng);
        let (kem, ss) = encapsulate(Tier::Bronze, &pk, &mut rng).unwrap();
        secrets.push(decapsulate(Tier::Bronze, &sk, &kem).unwrap());
        // GOLD chains: the protocol allows 25 messages on them.
        let mut chain = SendChain::new(&ss, &ALICE, &BOB, coin(c), Tier::Gold, limit, &TRANSCRIPT);
        while !chain.is_exhausted() {
            let mut copies = [Copy { text: [0; 12], ct: [0; 12], tag: [0; 16], nonce: [0; 12] }; 2];
            // The rolled-back sender: the same state, another text, a fresh nonce.
            let mut fork = chain.clone();
            for (v, (copy, state)) in copies.iter_mut().zip([&mut fork, &mut chain]).enumerate() {
                copy.text[0] = c as u8;
                copy.text[1..5].copy_from_slice(&state.counter().to_be_bytes());
                copy.text[5] = v as u8;
                rng.fill_bytes(&mut copy.nonce);
                copy.ct = copy.text;
                copy.tag = state.encrypt(AAD, &copy.nonce, &mut copy.ct).unwrap().1;
            }
            let counter = chain.counter() - 1;
            // Same message key, different nonces: no keystream reuse.
            let x: Vec<u8> = copies[0].ct.iter().zip(&copies[1].ct).map(|(a, b)| a ^ b).collect();
            let p: Vec<u8> = copies[0].text.iter().zip(&copies[1].text).map(|(a, b)| a ^ b).collect();
            assert_ne!(x, p, "a rolled-back send reused a (key, nonce) pair");
            msgs.push(Msg { chain: c, counter, copies: [copies[1], copies[0]] });
        }
    }
    (msgs, secrets)
}

#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Opened,
    /// The vault refuses a second open of a coin whose chain is no longer held.
    Burned,
    Refused(Error),
}

/// The documented rule, written as plainly as possible.
#[derive(Default)]
struct Model {
    current: Option<(usize, u32)>,
    previous: Option<(usize, u32)>,
    pool: VecDeque<(usize, u32)>,
    burned: HashSet<usize>,
}

impl Model {
    fn deliver(&mut self, chain: usize, n: u32, tampered: bool, max: usize) -> Outcome {
        let held = |m: &Model| [m.current, m.previous].iter().flatten().any(|(c, _)| *c == chain);
        if n == 0 && !self.burned.contains(&chain) {
            if tampered {
                return Outcome::Refused(Error::DecryptFailed);
            }
            if let Some(cur) = self.current.take() {
                self.pool.retain(|(c, _)| *c == cur.0);
                self.previous = Some(cur);
            }
            self.current = Some((chain, 1));
            self.burned.insert(chain);
            return Outcome::Opened;
        }
        if !held(self) {
            return if n == 0 { Outcome::Burned } else { Outcome::Refused(Error::NoSession) };
        }
        let slot = [&mut self.current, &mut self.previous].into_iter().flatten().find(|(c, _)| *c == chain).unwrap();
        let next = slot.1;
        if n < next {
            let Some(i) = self.pool.iter().position(|e| *e == (chain, n)) else {
                return Outcome::Refused(Error::Replay);
            };
            if tampered {
                return Outcome::Refused(Error::DecryptFailed);
            }
            self.pool.remove(i);
            return Outcome::Opened;
        }
        if (n - next) as usize > max {
            return Outcome::Refused(Error::TooFarAhead);
        }
        if tampered {
            return Outcome::Refused(Error::DecryptFailed);
        }
        slot.1 = n + 1;
        for k in next..n {
            if max == 0 {
                break;
            }
            while self.pool.len() >= max {
                self.pool.pop_front();
            }
            self.pool.push_back((chain, k));
        }
        Outcome::Opened
    }
}

/// Bob's real receive side, mirroring what the messaging layer does with the vault.
struct Real<'a> {
    secrets: &'a [SharedSecret],
    session: Option<RecvSession>,
    burned: HashSet<usize>,
}

impl Real<'_> {
    fn deliver(&mut self, m: &Msg, copy: usize, tampered: bool, max_skipped: u32) -> Result<[u8; 12], Outcome> {
        let c = &m.copies[copy];
        let mut buf = c.ct;
        let mut tag = c.tag;
        if tampered {
            tag[3] ^= 0x20;
        }
        let before = self.session.clone();
        let opens_chain = m.counter == 0 && !self.burned.contains(&m.chain);
        let held = self.session.as_ref().is_some_and(|s| s.has_chain(&coin(m.chain)));
        if m.counter == 0 && !opens_chain && !held {
            return Err(Outcome::Burned);
        }
        let mut work = if opens_chain {
            let chain = RecvChain::new(&self.secrets[m.chain], &ALICE, &BOB, coin(m.chain), Tier::Gold, &TRANSCRIPT);
            match self.session.clone() {
                None => RecvSession::new(ALICE, chain),
                Some(mut s) => {
                    s.rekey(chain).unwrap();
                    s
                }
            }
        } else {
            match self.session.clone() {
                None => return Err(Outcome::Refused(Error::NoSession)),
                Some(s) => s,
            }
        };
        match work.decrypt(max_skipped, &coin(m.chain), m.counter, &c.nonce, AAD, &mut buf, &tag) {
            Ok(()) => {
                if opens_chain {
                    self.burned.insert(m.chain);
                }
                self.session = Some(work);
                Ok(buf)
            }
            Err(e) => {
                assert_eq!(self.session, before, "a refusal changes nothing");
                assert_eq!(buf, c.ct, "a refusal leaves the ciphertext in place");
                Err(Outcome::Refused(e))
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn receive_matches_the_model(
        chains in 1usize..5,
        limit in 1u32..26,
        max_skipped in 0u32..40,
        deliveries in proptest::collection::vec(
            (any::<prop::sample::Index>(), proptest::bool::weighted(0.1), proptest::bool::weighted(0.2)),
            0..120,
        ),
        in_order_prefix in any::<prop::sample::Index>(),
        seed in any::<u64>(),
    ) {
        let (msgs, secrets) = traffic(chains, limit, seed);
        let max = (max_skipped as usize).min(MAX_SKIPPED);
        let mut model = Model::default();
        let mut real = Real { secrets: &secrets, session: None, burned: HashSet::new() };
        let mut opened = HashSet::new();
        // Some traffic in order first (so chains get going), then random picks: drops,
        // duplicates and reordering.
        let prefix = in_order_prefix.index(msgs.len() + 1);
        let order = (0..prefix)
            .map(|i| (i, false, false))
            .chain(deliveries.iter().map(|(i, t, r)| (i.index(msgs.len()), *t, *r)));
        for (i, tampered, rolled_back) in order {
            let m = &msgs[i];
            let copy = usize::from(rolled_back);
            let expect = model.deliver(m.chain, m.counter, tampered, max);
            match real.deliver(m, copy, tampered, max_skipped) {
                Ok(text) => {
                    prop_assert_eq!(expect, Outcome::Opened, "message {}/{}", m.chain, m.counter);
                    prop_assert_eq!(text, m.copies[copy].text);
                    // One counter, one accepted message, whichever copy came first.
                    prop_assert!(opened.insert(i), "message {}/{} opened twice", m.chain, m.counter);
                }
                Err(got) => prop_assert_eq!(got, expect, "message {}/{}", m.chain, m.counter),
            }
            if let Some(s) = &real.session {
                prop_assert_eq!(s.skipped_len(), model.pool.len());
                prop_assert!(s.skipped_len() <= max);
            }
        }
    }

    #[test]
    fn in_order_delivery_with_drops_opens_every_delivered_message(
        limit in 1u32..26,
        keep in proptest::collection::vec(proptest::bool::weighted(0.8), 25),
        seed in any::<u64>(),
    ) {
        let (msgs, secrets) = traffic(1, limit, seed);
        let mut real = Real { secrets: &secrets, session: None, burned: HashSet::new() };
        // The chain-opening message always arrives; drops of up to the skip bound are tolerated.
        for (i, m) in msgs.iter().enumerate() {
            if i == 0 || keep[i] {
                prop_assert_eq!(real.deliver(m, 0, false, 32).ok(), Some(m.copies[0].text));
            }
        }
    }
}
