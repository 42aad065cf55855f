//! The receive ratchet against a simple model: random delivery orders, drops, duplicates and
//! tampered copies over several chains. Every delivery either opens (once, with the right text)
//! or is refused exactly as the documented rule says, and a refusal changes nothing.

use std::collections::{HashSet, VecDeque};

use aqm_core::crypto::{SharedSecret, decapsulate, encapsulate, generate_keypair};
use aqm_core::ratchet::{MAX_SKIPPED, RecvChain, RecvSession, SendChain, TagBytes};
use aqm_core::{Error, KeyId, Tier, UserId};
use proptest::prelude::*;
use rand::SeedableRng;

const ALICE: UserId = UserId([0xa1; 16]);
const BOB: UserId = UserId([0xb0; 16]);
const AAD: &[u8] = b"header";

struct Msg {
    chain: usize,
    counter: u32,
    text: [u8; 12],
    ct: [u8; 12],
    tag: TagBytes,
}

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
        let mut chain = SendChain::new(&ss, &ALICE, &BOB, coin(c), Tier::Bronze, limit);
        while !chain.is_exhausted() {
            let mut text = [0u8; 12];
            text[0] = c as u8;
            text[1..5].copy_from_slice(&chain.counter().to_be_bytes());
            let mut ct = text;
            let (counter, tag) = chain.encrypt(AAD, &mut ct).unwrap();
            msgs.push(Msg { chain: c, counter, text, ct, tag });
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
    fn deliver(&mut self, m: &Msg, tampered: bool, max_skipped: u32) -> Result<[u8; 12], Outcome> {
        let mut buf = m.ct;
        let mut tag = m.tag;
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
            let chain = RecvChain::new(&self.secrets[m.chain], &ALICE, &BOB, coin(m.chain), Tier::Bronze);
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
        match work.decrypt(max_skipped, &coin(m.chain), m.counter, AAD, &mut buf, &tag) {
            Ok(()) => {
                if opens_chain {
                    self.burned.insert(m.chain);
                }
                self.session = Some(work);
                Ok(buf)
            }
            Err(e) => {
                assert_eq!(self.session, before, "a refusal changes nothing");
                assert_eq!(buf, m.ct, "a refusal leaves the ciphertext in place");
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
        deliveries in proptest::collection::vec((any::<prop::sample::Index>(), proptest::bool::weighted(0.1)), 0..120),
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
            .map(|i| (i, false))
            .chain(deliveries.iter().map(|(i, t)| (i.index(msgs.len()), *t)));
        for (i, tampered) in order {
            let m = &msgs[i];
            let expect = model.deliver(m.chain, m.counter, tampered, max);
            match real.deliver(m, tampered, max_skipped) {
                Ok(text) => {
                    prop_assert_eq!(expect, Outcome::Opened, "message {}/{}", m.chain, m.counter);
                    prop_assert_eq!(text, m.text);
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
                prop_assert_eq!(real.deliver(m, false, 32).ok(), Some(m.text));
            }
        }
    }
}
