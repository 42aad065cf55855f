//! Shared by the fuzz targets and `gen_corpus`: fixed keys and ids, the sealed session blob
//! layout (so arbitrary record bytes can be sealed and fed past the AEAD to the record decoder),
//! and the one-session fixture of the ratchet target (a receiver on a `MemoryStore` with a pinned
//! peer and an open chain).

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use aqm_core::UserId;
use aqm_core::crypto::DeviceKey;

/// The device key every target and corpus file uses.
pub const DEVICE_KEY: [u8; 32] = [0x42; 32];
/// The peer the sessions belong to.
pub const PEER: UserId = UserId([0x0b; 16]);

pub fn device_key() -> DeviceKey {
    DeviceKey::from_bytes(DEVICE_KEY)
}

/// `aqm_core::ratchet`'s session blob layout (see `seal_record` there): nonce (12) ‖ AES-256-GCM
/// of the postcard record ‖ tag (16), AAD = `SESSION_AAD_DOMAIN` ‖ peer ‖ direction byte
/// (send 1, receive 2). [`check_layout`] fails loudly when the core's layout moves on.
pub fn seal_record(record: &[u8], direction: u8) -> Vec<u8> {
    let mut aad = aqm_core::ratchet::SESSION_AAD_DOMAIN.to_vec();
    aad.extend_from_slice(PEER.as_bytes());
    aad.push(direction);
    let nonce = [7u8; 12];
    let mut body = record.to_vec();
    let tag = Aes256Gcm::new(&DEVICE_KEY.into())
        .encrypt_inout_detached(&Nonce::from(nonce), &aad, body.as_mut_slice().into())
        .expect("encrypts");
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&body);
    blob.extend_from_slice(&tag);
    blob
}

/// The record inside a blob sealed by the core, using this crate's copy of the layout.
pub fn open_record(blob: &[u8], direction: u8) -> Option<Vec<u8>> {
    if blob.len() < 28 {
        return None;
    }
    let mut aad = aqm_core::ratchet::SESSION_AAD_DOMAIN.to_vec();
    aad.extend_from_slice(PEER.as_bytes());
    aad.push(direction);
    let (n, rest) = blob.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let mut body = ct.to_vec();
    Aes256Gcm::new(&DEVICE_KEY.into())
        .decrypt_inout_detached(
            &Nonce::from(<[u8; 12]>::try_from(n).ok()?),
            &aad,
            body.as_mut_slice().into(),
            &Tag::try_from(tag).ok()?,
        )
        .ok()?;
    Some(body)
}

/// A send chain and a receive session sealed by the core itself, as (direction byte, blob).
pub fn real_blobs() -> Vec<(u8, Vec<u8>)> {
    use aqm_core::crypto::{decapsulate, encapsulate, generate_keypair};
    use aqm_core::ratchet::{RecvChain, RecvSession, SendChain};
    use aqm_core::{KeyId, Tier};
    let mut rng = Counter(0);
    let me = UserId([0x0a; 16]);
    let coin = KeyId([0x0c; 16]);
    // Stands for SHA-256 of the signed re-key bytes, which the record does not hold.
    let transcript = [0x7e; 32];
    let (seed, pk) = generate_keypair(Tier::Bronze, &mut rng);
    let (ct, ss) = encapsulate(Tier::Bronze, &pk, &mut rng).expect("encapsulates");
    // Our send chain to PEER, and our receive session from PEER (on a chain PEER opened to us).
    let mut send = SendChain::new(&ss, &me, &PEER, coin, Tier::Bronze, 5, &transcript);
    let mut buf = [1u8; 8];
    send.encrypt(b"h", &[1; 12], &mut buf).expect("encrypts");
    let ss2 = decapsulate(Tier::Bronze, &seed, &ct).expect("decapsulates");
    let mut theirs = SendChain::new(&ss2, &PEER, &me, coin, Tier::Bronze, 5, &transcript);
    let mut recv = RecvSession::new(PEER, RecvChain::new(&ss2, &PEER, &me, coin, Tier::Bronze, &transcript));
    // Skip one message so the receive record carries a skipped key too.
    theirs.encrypt(b"h", &[2; 12], &mut buf).expect("encrypts");
    let mut buf2 = [2u8; 8];
    let (n2, tag2) = theirs.encrypt(b"h", &[3; 12], &mut buf2).expect("encrypts");
    recv.decrypt(8, &coin, n2, &[3; 12], b"h", &mut buf2, &tag2).expect("decrypts");
    let dk = device_key();
    vec![(1, send.seal(&dk, &mut rng).expect("seals").to_vec()), (2, recv.seal(&dk, &mut rng).expect("seals").to_vec())]
}

/// Panics if this crate's copy of the blob layout no longer opens what the core seals.
pub fn check_layout() {
    for (direction, blob) in real_blobs() {
        assert!(
            open_record(&blob, direction).is_some(),
            "aqm-fuzz's copy of the session blob layout is stale: update fuzz/src/lib.rs"
        );
    }
}

/// A deterministic stand-in RNG (fuzzing needs reproducible inputs, not secrecy).
pub struct Counter(pub u64);

impl rand_core::TryRng for Counter {
    type Error = core::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(self.try_next_u64()? as u32)
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        Ok(self.0 >> 11)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        for b in dst {
            *b = self.try_next_u64()? as u8;
        }
        Ok(())
    }
}
impl rand_core::TryCryptoRng for Counter {}

/// The receiver's store in the ratchet target: small capacities, so rebuilding it for every
/// input is cheap.
pub type Store = aqm_core::memory::MemoryStore<8, 1, 2, 4, 1, 1, 1>;

/// The time every ratchet input is received at (the coins were minted at 0).
pub const RECEIVE_AT: aqm_core::UnixSeconds = 10;

/// One session as its receiver, Bob, holds it: Alice's identity pinned, the chain she opened
/// with his SILVER coin open at counter 1 (message 0 received, the coin burned), and three more
/// coins of his (GOLD, SILVER, BRONZE) still in his vault. `envelopes` are real wire messages
/// from Alice: the rest of that chain (1, 2, 3), a replay of its message 0, the first messages of
/// chains opened with each of the other coins, and a later message of a chain Bob cannot hold
/// yet. Deterministic: the corpus generator and the target build the same fixture.
pub struct RatchetFixture {
    /// Alice's public identity, pinned by Bob.
    pub alice: aqm_core::crypto::PublicIdentity,
    /// Bob.
    pub bob: aqm_core::crypto::Identity,
    /// Bob's device key.
    pub bob_dk: DeviceKey,
    /// Bob's sealed receive session from Alice.
    pub session: aqm_core::store::SessionBlob,
    /// Bob's vault entries, with whether each is burned.
    pub vault: Vec<(aqm_core::vault::VaultEntry, bool)>,
    /// Alice's messages to Bob, named.
    pub envelopes: Vec<(&'static str, Vec<u8>)>,
}

impl RatchetFixture {
    /// Build the fixture (a few ML-DSA-65 signatures: call once).
    pub fn new() -> RatchetFixture {
        use aqm_core::coin;
        use aqm_core::crypto::Identity;
        use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
        use aqm_core::pins::Trust;
        use aqm_core::store::{Direction, PinStore, SessionStore, VaultStore};
        use aqm_core::{DeviceContext, Policy, Tier};

        let mut rng = Counter(0xa11ce);
        let alice = Identity::generate(&mut rng);
        let bob = Identity::generate(&mut rng);
        let alice_dk = DeviceKey::from_bytes([0xa1; 32]);
        let bob_dk = device_key();
        let alice_store = Box::new(Store::new(Policy::DEFAULT));
        let bob_store = Box::new(Store::new(Policy::DEFAULT));
        alice_store.pin_identity(bob.public(), Trust::Exchanged).expect("pins");
        bob_store.pin_identity(alice.public(), Trust::Exchanged).expect("pins");
        let coins: Vec<_> = [Tier::Silver, Tier::Gold, Tier::Silver, Tier::Bronze]
            .into_iter()
            .map(|tier| coin::mint(&bob, tier, &bob_dk, 0, &mut rng).expect("mints"))
            .collect();
        for c in &coins {
            bob_store.put(&c.vault).expect("stores");
        }
        let a = Messenger::new(&*alice_store, &alice, &alice_dk);
        let wire = |env: &aqm_core::envelope::Envelope| env.to_vec().expect("encodes");
        let (ctx, opts) = (DeviceContext::HOME_WIFI, SendOptions::default());
        let next = |text: &[u8], rng: &mut Counter| match a.send(&bob.user_id(), &ctx, text, opts, 1, rng) {
            Ok(SendOutcome::Sent(s)) => wire(&s.envelope),
            other => panic!("the open chain carries it: {other:?}"),
        };
        let mut envelopes = Vec::new();
        let first = a.send_with_coin(&bob.user_id(), &coins[0].public, Tier::Silver, b"m0", 1, &mut rng);
        let first = wire(&first.expect("opens a chain").envelope);
        envelopes.push(("silver-rekey-0-replay", first.clone()));
        envelopes.push(("silver-1", next(b"message 1", &mut rng)));
        envelopes.push(("silver-2", next(b"message two", &mut rng)));
        envelopes.push(("silver-3", next(b"", &mut rng)));
        for (name, c) in [("gold-rekey", &coins[1]), ("silver-rekey", &coins[2]), ("bronze-rekey", &coins[3])] {
            let sent = a.send_with_coin(&bob.user_id(), &c.public, c.public.tier, b"a new chain", 1, &mut rng);
            envelopes.push((name, wire(&sent.expect("opens a chain").envelope)));
        }
        envelopes.push(("bronze-1-no-session", next(b"before its chain", &mut rng)));

        let b = Messenger::new(&*bob_store, &bob, &bob_dk);
        b.receive(&first, RECEIVE_AT, &mut rng).expect("Bob opens the chain");
        let session = bob_store.load_session(&alice.user_id(), Direction::Receive).expect("loads").expect("saved").blob;
        let vault = coins.iter().enumerate().map(|(i, c)| (c.vault.clone(), i == 0)).collect();
        RatchetFixture { alice: alice.public().clone(), bob, bob_dk, session, vault, envelopes }
    }

    /// Bob's store in the fixture's state.
    pub fn store(&self) -> Box<Store> {
        use aqm_core::pins::Trust;
        use aqm_core::store::{Direction, PinStore, SessionStore, VaultStore};
        let store = Box::new(Store::new(aqm_core::Policy::DEFAULT));
        store.pin_identity(&self.alice, Trust::Exchanged).expect("pins");
        for (entry, burned) in &self.vault {
            store.put(entry).expect("stores");
            if *burned {
                store.burn(&entry.key_id, RECEIVE_AT).expect("burns");
            }
        }
        store.save_session(&self.alice.user_id, Direction::Receive, &self.session, None).expect("saves");
        store
    }
}

impl Default for RatchetFixture {
    fn default() -> Self {
        RatchetFixture::new()
    }
}

/// The device of the `firmware_command` target (feature `firmware`): an in-process
/// [`aqm_firmware::Device`] on an emulated NOR flash ([`aqm_firmware::flash::RamFlash`]).
#[cfg(feature = "firmware")]
pub mod firmware {
    use aqm_core::crypto::encapsulate;
    use aqm_core::{KeyId, Policy, Tier};
    use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
    use aqm_firmware::{Device, FlashVault, NoButton, NoLed, VaultLayout};

    use crate::Counter;

    /// Slots of the fixture's vault.
    pub const SLOTS: usize = 16;
    /// The fixture's flash: 4 map pages and 4 secret pages.
    pub const LAYOUT: VaultLayout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 4, 4);
    /// The time the fixture's coins were minted at.
    pub const MINTED_AT: aqm_core::UnixSeconds = 1_700_000_000;

    pub type Flash = RamFlash<Vec<u8>>;
    pub type FuzzDevice = Device<Flash, SLOTS, Counter, NoLed, NoButton>;

    /// The flash of a device that booted once (identity created) and minted one coin of each
    /// tier, with (key id, tier, a valid KEM ciphertext to it) per coin.
    pub struct FirmwareFixture {
        pub flash: Vec<u8>,
        pub coins: Vec<(KeyId, Tier, Vec<u8>)>,
    }

    /// Boot a device on `flash` (as a board does after a reset).
    pub fn boot(flash: Vec<u8>, seed: u64) -> Result<FuzzDevice, aqm_firmware::Error> {
        let vault = FlashVault::open(RamFlash::new(flash), LAYOUT, Policy::DEFAULT)?;
        Device::new(vault, crate::device_key(), Counter(seed), NoLed, NoButton)
    }

    impl FirmwareFixture {
        /// Build it (a few keygens and signatures: call once).
        pub fn new() -> FirmwareFixture {
            use aqm_firmware::protocol::{Command, Request};
            let mut dev = boot(vec![0xFF; 8 * PAGE_SIZE], 1).expect("boots");
            let mut coins = Vec::new();
            let mut rng = Counter(5);
            for (i, tier) in Tier::ALL.into_iter().enumerate() {
                let req = Request { id: i as u32, now: MINTED_AT, command: Command::Mint { tier, count: 1 } };
                let out = serve_all(&mut dev, &frame(&req));
                for resp in out {
                    if let aqm_firmware::protocol::Reply::Coin { coin, .. } = resp.reply {
                        let (ct, _) = encapsulate(tier, &coin.public_key, &mut rng).expect("encapsulates");
                        coins.push((coin.key_id, tier, ct.to_vec()));
                    }
                }
            }
            assert_eq!(coins.len(), 3, "the fixture mints one coin per tier");
            let flash = dev.into_vault().into_flash().into_inner();
            FirmwareFixture { flash, coins }
        }
    }

    impl Default for FirmwareFixture {
        fn default() -> Self {
            FirmwareFixture::new()
        }
    }

    /// The COBS frame of `req`.
    pub fn frame(req: &aqm_firmware::protocol::Request) -> Vec<u8> {
        let mut buf = vec![0u8; aqm_firmware::protocol::MAX_REQUEST_FRAME + 8];
        aqm_firmware::protocol::encode(req, &mut buf).expect("encodes").to_vec()
    }

    /// A serial port that reads `input` and collects what the device writes.
    pub struct Port<'a> {
        pub input: &'a [u8],
        pub output: Vec<u8>,
    }

    impl embedded_io::ErrorType for Port<'_> {
        type Error = embedded_io::ErrorKind;
    }

    impl embedded_io::Read for Port<'_> {
        fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
            let n = buf.len().min(self.input.len());
            let (now, rest) = self.input.split_at(n);
            buf[..n].copy_from_slice(now);
            self.input = rest;
            Ok(n)
        }
    }

    impl embedded_io::Write for Port<'_> {
        fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    /// Serve every frame of `input`; every byte the device wrote must be a response frame that
    /// decodes. Panics if `serve` fails other than by running out of input.
    pub fn serve_all(dev: &mut FuzzDevice, input: &[u8]) -> Vec<aqm_firmware::protocol::Response> {
        let mut port = Port { input, output: Vec::new() };
        loop {
            match dev.serve(&mut port) {
                Ok(_) => {}
                Err(aqm_firmware::Error::Io(embedded_io::ErrorKind::BrokenPipe)) if port.input.is_empty() => break,
                Err(e) => panic!("serve failed on a port that cannot fail: {e:?}"),
            }
        }
        let mut responses = Vec::new();
        for f in port.output.split_inclusive(|&b| b == 0) {
            let mut f = f.to_vec();
            let r = aqm_firmware::protocol::decode(&mut f).expect("the device's own response decodes");
            responses.push(r);
        }
        responses
    }
}
