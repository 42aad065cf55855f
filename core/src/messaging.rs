//! The send/receive lifecycle an app calls (docs/protocol.md, §4): pick the tier range → pop a cached
//! coin (or ask for one on-demand fetch) → encapsulate → sign the re-key → ratchet → envelope; and
//! the reverse, which verifies the sender's signature against the pinned identity *before* it
//! decapsulates or burns anything, then burns the coin in the same atomic step that saves the
//! session it opened.
//!
//! [`Messenger`] is generic over the storage traits: one backend type implements
//! [`InventoryStore`], [`VaultStore`], [`SessionStore`] and [`PinStore`] with one error type `E`;
//! the core's refusals reach the caller as `E::from(Error)` (check them with
//! [`StoreError::as_core`]). Stores only ever see sealed session bytes. The identity that signs
//! re-keys is a [`RekeySigner`]: an [`crate::crypto::Identity`] in memory, or a secure element.
//!
//! Every session save is a compare-and-swap on the version loaded; a send or receive that loses
//! a race reloads and retries (a few times, then [`Error::SessionConflict`]), so concurrent
//! sends never reuse a counter and concurrent receives never accept a message twice. A re-key
//! whose save lost puts its coin back at its FIFO position.
//!
//! ```
//! use aqm_core::coin;
//! use aqm_core::crypto::{DeviceKey, Identity};
//! use aqm_core::inventory::ContactMeta;
//! use aqm_core::memory::MemoryStore;
//! use aqm_core::messaging::{Messenger, SendOptions, SendOutcome};
//! use aqm_core::pins::Trust;
//! use aqm_core::store::{InventoryStore, PinStore, VaultStore};
//! use aqm_core::{DeviceContext, Policy, Priority, Tier};
//!
//! let mut rng = rand::rng();
//! let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
//! let (alice_dk, bob_dk) = (DeviceKey::random(&mut rng), DeviceKey::random(&mut rng));
//! let alice_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
//! let bob_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
//!
//! // They exchanged contacts: each pins the other's identity.
//! alice_store.pin_identity(bob.public(), Trust::Exchanged).unwrap();
//! bob_store.pin_identity(alice.public(), Trust::Exchanged).unwrap();
//!
//! // Bob mints a coin; Alice, who counts him a BESTIE, caches its public half.
//! let minted = coin::mint(&bob, Tier::Silver, &bob_dk, 0, &mut rng).unwrap();
//! bob_store.put(&minted.vault).unwrap();
//! alice_store.register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", 0).unwrap()).unwrap();
//! alice_store.store_coin(&bob.user_id(), &minted.public, 0).unwrap();
//!
//! let a = Messenger::new(&*alice_store, &alice, &alice_dk);
//! let opts = SendOptions::default();
//! let SendOutcome::Sent(sent) = a.send(&bob.user_id(), &DeviceContext::HOME_WIFI, b"hi Bob", opts, 1, &mut rng).unwrap()
//! else { panic!("a coin was cached") };
//! assert_eq!((sent.tier, sent.fell_back, sent.rekeyed, sent.remaining), (Tier::Silver, true, true, 9));
//! assert!(sent.post_quantum);
//! let mut wire = [0u8; aqm_core::envelope::MAX_ENVELOPE];
//! let wire = sent.envelope.encode(&mut wire).unwrap();
//!
//! let b = Messenger::new(&*bob_store, &bob, &bob_dk);
//! let got = b.receive(wire, 2, &mut rng).unwrap();
//! assert_eq!(&got.plaintext[..], b"hi Bob");
//! assert_eq!(got.trust, Trust::Exchanged);
//! // The coin opened once: it is burned.
//! assert!(bob_store.get(&minted.public.key_id, 2).unwrap().is_none());
//! ```

use core::fmt;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::coin::PublicCoin;
use crate::crypto::{self, DeviceKey, PublicIdentity};
use crate::directory::IdempotencyKey;
use crate::envelope::{
    self, Envelope, EnvelopeRef, MAX_HEADER, MAX_MESSAGE, MessageCiphertext, NonceBytes, RekeyHeader,
};
use crate::inventory::{self, CachedCoin, ContactMeta, TierRange};
use crate::pins::{Pinned, Trust};
use crate::ratchet::{RecvChain, RecvSession, SendChain, TagBytes};
use crate::rekey::{self, RekeyFields, RekeySigner};
use crate::store::{
    Direction, DirectoryStore, InventoryStore, PinStore, SessionBlob, SessionStore, SessionVersion, StoredSession,
    VaultStore,
};
use crate::vault::{self, KeyStatus};
use crate::{DeviceContext, Error, KeyId, Policy, StoreError, Tier, TierCounts, UnixSeconds, UserId};

/// A plaintext message, up to [`MAX_MESSAGE`] bytes.
pub type Plaintext = heapless::Vec<u8, MAX_MESSAGE>;

/// How often a send or receive that lost a session race reloads and tries again.
pub const SESSION_ATTEMPTS: usize = 4;

/// One device's side of the lifecycle: its store, the identity that signs its re-keys and its
/// device key. It plans under its store's policy ([`HasPolicy`](crate::store::HasPolicy)), so
/// the caps a prefetch asks for are the caps the store admits.
#[derive(Debug)]
pub struct Messenger<'a, St, Sg> {
    store: &'a St,
    signer: &'a Sg,
    me: UserId,
    device_key: &'a DeviceKey,
}

/// What the app allows for one send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SendOptions {
    /// Let a GOLD or SILVER send fall back to BRONZE (no post-quantum protection) when no
    /// post-quantum coin is left (docs/protocol.md). Off by default; ignored for contacts that
    /// require post-quantum protection.
    pub allow_classical: bool,
}

/// A message that was encrypted and whose session was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The envelope to deliver (encode it with [`Envelope::encode`]).
    pub envelope: Envelope,
    /// The tier of the chain the message is on.
    pub tier: Tier,
    /// The tier the device context and the contact asked for when the chain was opened (equal
    /// to `tier` when an existing chain was reused).
    pub desired: Tier,
    /// Whether the coin was of a cheaper tier than `desired` (downward fallback).
    pub fell_back: bool,
    /// Whether this message opened a new chain (it carries a signed re-key header).
    pub rekeyed: bool,
    /// Whether the message is post-quantum protected (its chain is not BRONZE).
    pub post_quantum: bool,
    /// Messages the chain may still carry before the next re-key.
    pub remaining: u32,
    /// Cached coins dropped as no longer fresh while picking this one.
    pub wasted: u32,
    /// Whether the chain was opened with the peer's last-resort coin (the directory had no
    /// one-time coin left): its first message has no forward secrecy until the peer's coin
    /// rotates (docs/protocol.md §2.1). False on an existing chain.
    pub last_resort: bool,
}

/// What [`Messenger::send`] did.
// A `Sent` holds a whole envelope; boxing it would need an allocator, which the core must not.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The message is ready to deliver.
    Sent(Sent),
    /// No usable chain and no cached coin in the range: fetch one coin on demand (e.g.
    /// [`Messenger::fetch_on_demand`]) and call [`Messenger::send_with_coin`]. Nothing changed
    /// but the removal of `wasted` stale coins.
    NeedCoin {
        /// The tiers the send may use, dearest first.
        range: TierRange,
        /// Cached coins dropped as no longer fresh.
        wasted: u32,
    },
}

/// A message that opened and whose session was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The sender.
    pub from: UserId,
    /// How far the sender's pinned identity is trusted; [`Trust::Directory`] means the message
    /// must be shown as unverified.
    pub trust: Trust,
    /// The coin that opened the message's chain.
    pub chain: KeyId,
    /// That coin's tier.
    pub tier: Tier,
    /// Whether the message is post-quantum protected (its chain is not BRONZE).
    pub post_quantum: bool,
    /// The message's counter on its chain.
    pub counter: u32,
    /// Whether this message opened a new chain (and burned the coin, unless it was a
    /// last-resort coin).
    pub rekeyed: bool,
    /// Whether the chain was opened with one of our last-resort coins (recorded, not burned).
    pub last_resort: bool,
    /// The decrypted message.
    pub plaintext: Plaintext,
}

impl Received {
    /// Whether the sender was pinned only from the directory (docs/protocol.md: "unverified").
    pub fn unverified(&self) -> bool {
        self.trust.is_unverified()
    }
}

/// What [`Messenger::prefetch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefetchReport {
    /// Coins asked of the directory per tier (the contact's deficits).
    pub requested: TierCounts,
    /// Coins verified and cached per tier.
    pub stored: TierCounts,
    /// Coins handed out but refused: forged, of another owner, expired or over the cap.
    pub rejected: u32,
    /// Last-resort coins handed out because the owner had no one-time coin of a tier left:
    /// never cached (they serve one send), so dropped.
    pub last_resort: u32,
}

/// An error of a call that uses both the device's store and a directory.
#[derive(Debug, PartialEq, Eq)]
pub enum FetchError<S, D> {
    /// The device's store failed or refused.
    Store(S),
    /// The directory failed or refused.
    Directory(D),
}

impl<S: fmt::Display, D: fmt::Display> fmt::Display for FetchError<S, D> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Store(e) => write!(f, "device store: {e}"),
            FetchError::Directory(e) => write!(f, "coin directory: {e}"),
        }
    }
}

impl<S: fmt::Debug + fmt::Display, D: fmt::Debug + fmt::Display> core::error::Error for FetchError<S, D> {}

/// Domain tag of the per-tier idempotency keys [`Messenger::prefetch`] derives.
const CLAIM_KEY_DOMAIN: &[u8] = b"AQM-claim-v1";

/// The idempotency key of the claim of one owner's coins of one tier within a call keyed by `key`
/// (directories remember replies per requester and key only).
fn tier_key(key: &IdempotencyKey, owner: &UserId, tier: Tier) -> IdempotencyKey {
    let digest: [u8; 32] = Sha256::new()
        .chain_update(CLAIM_KEY_DOMAIN)
        .chain_update(key)
        .chain_update(owner.as_bytes())
        .chain_update([tier.to_byte()])
        .finalize()
        .into();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn is_quota<D: StoreError>(e: &D) -> bool {
    matches!(e.as_core(), Some(Error::QuotaExceeded { .. }))
}

fn is_conflict<E: StoreError>(e: &E) -> bool {
    matches!(e.as_core(), Some(Error::SessionConflict))
}

/// Refusals that condemn the coin itself (forged, foreign, malformed, expired): it is never put
/// back into the inventory.
fn is_bad_coin<E: StoreError>(e: &E) -> bool {
    matches!(
        e.as_core(),
        Some(
            Error::BadSignature
                | Error::WrongOwner
                | Error::BadLength { .. }
                | Error::BadPublicKey
                | Error::CoinExpired
                | Error::UnsupportedCoinKind(_)
        )
    )
}

impl<'a, St, Sg, E> Messenger<'a, St, Sg>
where
    St: InventoryStore<Error = E> + SessionStore + VaultStore<Error = E> + PinStore<Error = E>,
    Sg: RekeySigner,
    E: StoreError,
{
    /// The lifecycle of the user whose identity `signer` holds, on a device holding
    /// `device_key`, over `store`, under the policy the store applies.
    pub fn new(store: &'a St, signer: &'a Sg, device_key: &'a DeviceKey) -> Self {
        Messenger { store, me: signer.user_id(), signer, device_key }
    }

    /// The user this messenger sends as.
    pub fn me(&self) -> &UserId {
        &self.me
    }

    /// The policy this messenger plans under: its store's.
    pub fn policy(&self) -> &Policy {
        self.store.policy()
    }

    /// Pin `identity` at `trust` ([`PinStore::pin_identity`]): the first identity for a user id is
    /// kept; another one later → [`Error::IdentityChanged`].
    pub fn pin(&self, identity: &PublicIdentity, trust: Trust) -> Result<Pinned, E> {
        self.store.pin_identity(identity, trust)
    }

    /// Pin the identity `directory` holds for `user` at [`Trust::Directory`] (how a receiver learns
    /// a stranger's identity before it verifies the stranger's first message). Unknown to the
    /// directory → [`Error::UnknownUser`]; a different pinned identity → [`Error::IdentityChanged`].
    pub fn pin_from_directory<D: DirectoryStore>(
        &self,
        directory: &D,
        user: &UserId,
    ) -> Result<Pinned, FetchError<E, D::Error>> {
        let identity = directory
            .identity(user)
            .map_err(FetchError::Directory)?
            .ok_or(FetchError::Store(E::from(Error::UnknownUser)))?;
        self.store.pin_identity(&identity, Trust::Directory).map_err(FetchError::Store)
    }

    fn pinned(&self, user: &UserId) -> Result<Pinned, E> {
        self.store.pinned(user)?.ok_or_else(|| Error::IdentityNotPinned.into())
    }

    /// The tiers a send to `peer` may use now (docs/protocol.md, [`inventory::send_range`]); an
    /// unregistered peer counts as a STRANGER.
    pub fn send_range(&self, peer: &UserId, ctx: &DeviceContext, opts: SendOptions) -> Result<TierRange, E> {
        Ok(self.range_for(self.store.contact(peer)?.as_ref(), ctx, opts))
    }

    /// [`Messenger::send_range`] for a contact already looked up.
    fn range_for(&self, contact: Option<&ContactMeta>, ctx: &DeviceContext, opts: SendOptions) -> TierRange {
        let priority = contact.map_or(crate::Priority::Stranger, |c| c.priority);
        let require_pq = contact.is_some_and(|c| c.require_pq);
        inventory::send_range(self.policy(), ctx, priority, require_pq, opts.allow_classical)
    }

    /// Encrypt `plaintext` to `peer`, whose identity must be pinned ([`Error::IdentityNotPinned`]).
    ///
    /// Reuses the saved send chain to `peer` if it is not exhausted. Otherwise opens a new chain
    /// as [`Messenger::send_rekeyed`] does. The session is saved (compare-and-swap) before the
    /// envelope is returned, so a counter is never used twice; every message carries a fresh
    /// random nonce, so even a store that lost a write never reuses a (key, nonce) pair.
    ///
    /// A saved send session that no longer opens (another device key, tampering) is replaced by a
    /// new chain: re-keying is always safe for the sender. A plaintext over [`MAX_MESSAGE`] →
    /// [`Error::MessageTooLarge`] before any coin is used.
    pub fn send<R: CryptoRng + ?Sized>(
        &self,
        peer: &UserId,
        ctx: &DeviceContext,
        plaintext: &[u8],
        opts: SendOptions,
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<SendOutcome, E> {
        self.send_inner(peer, ctx, plaintext, opts, false, now, rng)
    }

    /// Like [`Messenger::send`], but always opens a new chain, even when the open chain to `peer`
    /// has messages left — e.g. when the device context changed and the app wants the tier it now
    /// affords. Picks the range ([`Messenger::send_range`]), pops the oldest cached fresh coin in
    /// it, verifies it against the pinned identity, encapsulates, signs the re-key and saves the
    /// new chain. No cached coin in the range (or no registered contact) →
    /// [`SendOutcome::NeedCoin`]. A cached coin that fails verification is dropped and refused
    /// ([`Error::BadSignature`] / [`Error::WrongOwner`]); when anything else fails before the
    /// message exists (the signer refuses, e.g. a secure element's approval is denied, or the
    /// store fails), the coin goes back to its FIFO place.
    pub fn send_rekeyed<R: CryptoRng + ?Sized>(
        &self,
        peer: &UserId,
        ctx: &DeviceContext,
        plaintext: &[u8],
        opts: SendOptions,
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<SendOutcome, E> {
        self.send_inner(peer, ctx, plaintext, opts, true, now, rng)
    }

    #[allow(clippy::too_many_arguments)]
    fn send_inner<R: CryptoRng + ?Sized>(
        &self,
        peer: &UserId,
        ctx: &DeviceContext,
        plaintext: &[u8],
        opts: SendOptions,
        force_rekey: bool,
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<SendOutcome, E> {
        check_len(plaintext)?;
        // Needed only to open a chain: a message on an open chain costs no pin read (a chain
        // exists only after a re-key, which required the pin, and pins are never removed).
        let mut pinned: Option<Pinned> = None;
        let mut wasted = 0;
        for _ in 0..SESSION_ATTEMPTS {
            let stored = self.store.load_session(peer, Direction::Send)?;
            let expected = stored.as_ref().map(|s| s.version);
            if !force_rekey
                && let Some(StoredSession { blob, version }) = &stored
                && let Ok(mut chain) = SendChain::open(blob, self.device_key, peer)
                && !chain.is_exhausted()
            {
                let nonce = random_nonce(rng);
                match self.seal_and_save(&mut chain, None, nonce, plaintext, Some(*version), rng) {
                    Err(e) if is_conflict(&e) => continue,
                    Err(e) => return Err(e),
                    Ok(envelope) => {
                        let tier = chain.tier();
                        return Ok(SendOutcome::Sent(Sent {
                            envelope,
                            tier,
                            desired: tier,
                            fell_back: false,
                            rekeyed: false,
                            post_quantum: tier != Tier::Bronze,
                            remaining: chain.remaining(),
                            wasted,
                            last_resort: false,
                        }));
                    }
                }
            }
            let pin = match pinned.take() {
                Some(p) => p,
                None => self.pinned(peer)?,
            };
            let pinned = pinned.insert(pin);
            // One contact lookup (a round trip on Redis) gives both the range and registration.
            let contact = self.store.contact(peer)?;
            let range = self.range_for(contact.as_ref(), ctx, opts);
            if contact.is_none() {
                return Ok(SendOutcome::NeedCoin { range, wasted });
            }
            let selection = self.store.select_coin(peer, range.desired, range.lowest, now)?;
            wasted += selection.wasted;
            let Some(cached) = selection.coin else {
                return Ok(SendOutcome::NeedCoin { range, wasted });
            };
            match self.open_chain(&pinned.identity, &cached.coin, range.desired, plaintext, expected, now, rng) {
                Err(e) if is_conflict(&e) => {
                    self.put_back(peer, &cached)?;
                    continue;
                }
                // A coin that is itself bad stays dropped; any other failure (the signer refused,
                // the store failed) happened before anything was sent: the coin goes back.
                Err(e) if is_bad_coin(&e) => return Err(e),
                Err(e) => {
                    // The original failure is the one worth reporting; a failed put-back only
                    // wastes the coin (it is never reused).
                    let _ = self.put_back(peer, &cached);
                    return Err(e);
                }
                Ok(mut sent) => {
                    sent.wasted = wasted;
                    return Ok(SendOutcome::Sent(sent));
                }
            }
        }
        Err(Error::SessionConflict.into())
    }

    /// The coin of a re-key that lost its session race was never sent: back to its FIFO place.
    fn put_back(&self, peer: &UserId, cached: &CachedCoin) -> Result<(), E> {
        self.store.restore_coin(peer, cached).map(|_| ())
    }

    /// Open a new chain to `peer` with `coin` (e.g. fetched on demand after
    /// [`SendOutcome::NeedCoin`]) and encrypt `plaintext` as its first message. `desired` is the
    /// tier that was asked for (it only sets [`Sent::fell_back`]). The coin must be fresh at `now`
    /// and verify against `peer`'s pinned identity ([`Error::CoinExpired`], [`Error::WrongOwner`],
    /// [`Error::BadSignature`], [`Error::BadLength`] otherwise; nothing changed). A lost session
    /// race is retried with the same coin (nothing was sent).
    #[allow(clippy::too_many_arguments)]
    pub fn send_with_coin<R: CryptoRng + ?Sized>(
        &self,
        peer: &UserId,
        coin: &PublicCoin,
        desired: Tier,
        plaintext: &[u8],
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<Sent, E> {
        check_len(plaintext)?;
        let pinned = self.pinned(peer)?;
        for _ in 0..SESSION_ATTEMPTS {
            let expected = self.store.load_session(peer, Direction::Send)?.map(|s| s.version);
            match self.open_chain(&pinned.identity, coin, desired, plaintext, expected, now, rng) {
                Err(e) if is_conflict(&e) => continue,
                other => return other,
            }
        }
        Err(Error::SessionConflict.into())
    }

    #[allow(clippy::too_many_arguments)]
    fn open_chain<R: CryptoRng + ?Sized>(
        &self,
        peer: &PublicIdentity,
        coin: &PublicCoin,
        desired: Tier,
        plaintext: &[u8],
        expected: Option<SessionVersion>,
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<Sent, E> {
        coin.verify_fresh(peer, self.policy(), now)?;
        let (kem_ciphertext, shared) = crypto::encapsulate(coin.tier, &coin.public_key, rng)?;
        let nonce = random_nonce(rng);
        let fields = RekeyFields {
            sender: self.me,
            recipient: peer.user_id,
            coin: coin.key_id,
            tier: coin.tier,
            kem_ciphertext: &kem_ciphertext,
            coin_public_key_hash: rekey::coin_key_hash(&coin.public_key),
            counter: 0,
            nonce,
        };
        let signature = self.signer.sign_rekey(&fields, rng)?;
        let transcript = fields.transcript_hash()?;
        let limit = self.policy().ratchet_limit(coin.tier);
        let mut chain = SendChain::new(&shared, &self.me, &peer.user_id, coin.key_id, coin.tier, limit, &transcript);
        let rekey = RekeyHeader { tier: coin.tier, kem_ciphertext, signature };
        let envelope = self.seal_and_save(&mut chain, Some(rekey), nonce, plaintext, expected, rng)?;
        Ok(Sent {
            envelope,
            tier: coin.tier,
            desired,
            fell_back: coin.tier > desired,
            rekeyed: true,
            post_quantum: coin.tier != Tier::Bronze,
            remaining: chain.remaining(),
            wasted: 0,
            last_resort: coin.is_last_resort(),
        })
    }

    fn seal_and_save<R: CryptoRng + ?Sized>(
        &self,
        chain: &mut SendChain,
        rekey: Option<RekeyHeader>,
        nonce: NonceBytes,
        plaintext: &[u8],
        expected: Option<SessionVersion>,
        rng: &mut R,
    ) -> Result<Envelope, E> {
        let peer = *chain.peer();
        let coin = *chain.coin();
        let mut header = [0u8; MAX_HEADER];
        let aad = envelope::header_for(&self.me, &peer, &coin, rekey.as_ref(), chain.counter(), &nonce, &mut header)?;
        let mut ciphertext =
            MessageCiphertext::from_slice(plaintext).map_err(|_| Error::MessageTooLarge { max: MAX_MESSAGE })?;
        let (counter, tag) = chain.encrypt(aad, &nonce, &mut ciphertext)?;
        ciphertext.extend_from_slice(&tag).map_err(|_| Error::MessageTooLarge { max: MAX_MESSAGE })?;
        let blob = chain.seal(self.device_key, rng)?;
        self.store.save_session(&peer, Direction::Send, &blob, expected)?;
        Ok(Envelope::new(self.me, peer, coin, rekey, counter, nonce, ciphertext))
    }

    /// Decode, check and decrypt one envelope from the wire. The sender's identity must be pinned
    /// ([`Error::IdentityNotPinned`]: pin it, e.g. with [`Messenger::pin_from_directory`], and
    /// retry).
    ///
    /// - Not addressed to us → [`Error::NotForUs`].
    /// - With a re-key header: only at counter 0 ([`Error::RekeyNotFirst`]). The coin must be in
    ///   the vault (burned → [`Error::KeyAlreadyBurned`], past `expires_at + vault_grace` →
    ///   [`Error::CoinExpired`], absent → [`Error::KeyNotFound`]); its public key is regenerated
    ///   from the sealed seed and the sender's signature verified against the pinned identity
    ///   ([`Error::BadSignature`]) **before** anything is decapsulated or burned; then the KEM
    ///   ciphertext is decapsulated, the chain derived and the message decrypted; then the coin is
    ///   burned and the session saved in ONE atomic step
    ///   ([`SessionStore::burn_and_save_session`]). The previous chain stays open for late
    ///   messages.
    /// - Without: the saved receive session must hold the chain ([`Error::NoSession`] otherwise;
    ///   keep such an envelope and retry it after the chain's first message arrived), then the
    ///   ratchet's receive rule applies ([`Error::Replay`], [`Error::TooFarAhead`],
    ///   [`Error::CounterPastLimit`]).
    ///
    /// Any refusal — tampered header, ciphertext or KEM ciphertext ([`Error::DecryptFailed`]),
    /// a forged signature, malformed bytes — saves nothing and burns nothing. Concurrent receives
    /// from one peer are safe: the save is a compare-and-swap, and the loser retries (and then
    /// finds a replay if it held the same message).
    pub fn receive<R: CryptoRng + ?Sized>(&self, wire: &[u8], now: UnixSeconds, rng: &mut R) -> Result<Received, E> {
        let env = EnvelopeRef::decode(wire)?;
        if env.recipient != self.me {
            return Err(Error::NotForUs.into());
        }
        if env.rekey.is_some() && env.counter != 0 {
            return Err(Error::RekeyNotFirst.into());
        }
        let peer = env.sender;
        let pinned = self.pinned(&peer)?;
        // Decoding checked that the ciphertext holds at least its tag and at most a full message.
        let split = env.ciphertext.len().checked_sub(crypto::sizes::AEAD_TAG).ok_or(Error::Malformed)?;
        let (body, tag) = env.ciphertext.split_at(split);
        let tag: TagBytes = tag.try_into().map_err(|_| Error::Malformed)?;
        for _ in 0..SESSION_ATTEMPTS {
            let mut plaintext = Plaintext::from_slice(body).map_err(|_| Error::Malformed)?;
            let outcome = match env.rekey {
                Some(_) => self.receive_rekey(&env, &pinned.identity, &mut plaintext, &tag, now, rng),
                None => self.receive_on_chain(&env, &mut plaintext, &tag, rng).map(|tier| (tier, false)),
            };
            match outcome {
                Err(e) if is_conflict(&e) => continue,
                Err(e) => return Err(e),
                Ok((tier, last_resort)) => {
                    return Ok(Received {
                        from: peer,
                        trust: pinned.trust,
                        chain: env.chain,
                        tier,
                        post_quantum: tier != Tier::Bronze,
                        counter: env.counter,
                        rekeyed: env.rekey.is_some(),
                        last_resort,
                        plaintext,
                    });
                }
            }
        }
        Err(Error::SessionConflict.into())
    }

    fn receive_rekey<R: CryptoRng + ?Sized>(
        &self,
        env: &EnvelopeRef<'_>,
        sender: &PublicIdentity,
        plaintext: &mut Plaintext,
        tag: &TagBytes,
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<(Tier, bool), E> {
        let rk = env.rekey.ok_or(Error::Malformed)?;
        let entry = match self.store.get(&env.chain, now)? {
            Some(entry) => entry,
            None => {
                return Err(match self.store.status(&env.chain)? {
                    Some(KeyStatus::Burned) => Error::KeyAlreadyBurned,
                    // Still ACTIVE but not usable: past its vault deadline.
                    Some(KeyStatus::Active) => Error::CoinExpired,
                    None => Error::KeyNotFound,
                }
                .into());
            }
        };
        if entry.tier != rk.tier {
            return Err(Error::DecryptFailed.into());
        }
        let seed = entry.sealed.open(self.device_key, &env.chain, entry.tier)?;
        let coin_pk = crypto::public_key_from_seed(rk.tier, &seed)?;
        let fields = RekeyFields {
            sender: env.sender,
            recipient: self.me,
            coin: env.chain,
            tier: rk.tier,
            kem_ciphertext: rk.kem_ciphertext,
            coin_public_key_hash: rekey::coin_key_hash(&coin_pk),
            counter: env.counter,
            nonce: env.nonce,
        };
        // Authenticate the opener before any secret is used or any state changes.
        rekey::verify(sender, &fields, rk.signature)?;
        let shared = crypto::decapsulate(rk.tier, &seed, rk.kem_ciphertext).map_err(|_| Error::DecryptFailed)?;
        let transcript = fields.transcript_hash()?;
        let chain = RecvChain::new(&shared, &env.sender, &self.me, env.chain, rk.tier, &transcript);
        let stored = self.store.load_session(&env.sender, Direction::Receive)?;
        let expected = stored.as_ref().map(|s| s.version);
        let last_resort = entry.is_last_resort();
        let mut session = match stored.map(|s| RecvSession::open(&s.blob, self.device_key, &env.sender)) {
            Some(Ok(mut s)) => {
                if last_resort {
                    s.rekey_last_resort(chain);
                } else {
                    s.rekey(chain)?;
                }
                s
            }
            // No session yet, or one that no longer opens: the new chain starts afresh.
            _ => RecvSession::new(env.sender, chain),
        };
        let blob = self.open_and_seal(&mut session, env, plaintext, tag, rng)?;
        if last_resort {
            // Not burned: the store records this first message and refuses it if it comes again.
            let digest = vault::open_digest(&env.chain, rk.kem_ciphertext);
            self.store.open_last_resort_and_save_session(&env.chain, &digest, now, &env.sender, &blob, expected)?;
        } else {
            self.store.burn_and_save_session(&env.chain, now, &env.sender, &blob, expected)?;
        }
        Ok((rk.tier, last_resort))
    }

    fn receive_on_chain<R: CryptoRng + ?Sized>(
        &self,
        env: &EnvelopeRef<'_>,
        plaintext: &mut Plaintext,
        tag: &TagBytes,
        rng: &mut R,
    ) -> Result<Tier, E> {
        let stored = self.store.load_session(&env.sender, Direction::Receive)?.ok_or(Error::NoSession)?;
        let mut session = RecvSession::open(&stored.blob, self.device_key, &env.sender)?;
        let tier = session.chain_tier(&env.chain).ok_or(Error::NoSession)?;
        let blob = self.open_and_seal(&mut session, env, plaintext, tag, rng)?;
        self.store.save_session(&env.sender, Direction::Receive, &blob, Some(stored.version))?;
        Ok(tier)
    }

    /// Decrypt `env` in place on `session` (the ratchet's receive rule) and seal the advanced
    /// session for the save that follows.
    fn open_and_seal<R: CryptoRng + ?Sized>(
        &self,
        session: &mut RecvSession,
        env: &EnvelopeRef<'_>,
        plaintext: &mut Plaintext,
        tag: &TagBytes,
        rng: &mut R,
    ) -> Result<SessionBlob, E> {
        session.decrypt(
            self.policy().max_skipped_keys,
            &env.chain,
            env.counter,
            &env.nonce,
            env.header_bytes(),
            plaintext,
            tag,
        )?;
        Ok(session.seal(self.device_key, rng)?)
    }

    /// Top up the cached coins of a registered contact whose identity is pinned: claim each tier's
    /// deficit ([`inventory::replenish_needs`]) from `directory`, verify every coin against the
    /// pinned identity and its freshness, and cache it. A tier whose anti-drain quota is used up
    /// is skipped; coins that fail verification, freshness or admission are counted in
    /// [`PrefetchReport::rejected`] and dropped. With `idempotency`, each tier's claim uses a key
    /// derived from it and the owner, so retrying the whole call with the same key claims nothing
    /// more. Unregistered → [`Error::ContactNotRegistered`].
    pub fn prefetch<D: DirectoryStore>(
        &self,
        directory: &D,
        peer: &UserId,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<PrefetchReport, FetchError<E, D::Error>> {
        let meta = self
            .store
            .contact(peer)
            .map_err(FetchError::Store)?
            .ok_or(FetchError::Store(E::from(Error::ContactNotRegistered)))?;
        let pinned = self.pinned(peer).map_err(FetchError::Store)?;
        let held = self.store.counts(peer).map_err(FetchError::Store)?;
        let mut report = PrefetchReport {
            requested: inventory::replenish_needs(self.policy(), meta.priority, &held),
            ..PrefetchReport::default()
        };
        for tier in Tier::ALL {
            let need = report.requested.get(tier);
            if need == 0 {
                continue;
            }
            let key = idempotency.map(|k| tier_key(&k, peer, tier));
            let claimed = match directory.claim(peer, &self.me, tier, need, key, now) {
                Ok(c) => c,
                Err(e) if is_quota(&e) => continue,
                Err(e) => return Err(FetchError::Directory(e)),
            };
            for coin in &claimed {
                if coin.is_last_resort() {
                    report.last_resort += 1;
                    continue;
                }
                if coin.tier != tier || coin.verify_fresh(&pinned.identity, self.policy(), now).is_err() {
                    report.rejected += 1;
                    continue;
                }
                match self.store.store_coin(peer, coin, now) {
                    Ok(()) => *report.stored.get_mut(tier) += 1,
                    Err(e)
                        if matches!(
                            e.as_core(),
                            Some(
                                Error::BudgetExceeded { .. }
                                    | Error::CoinAlreadyCached
                                    | Error::WrongOwner
                                    | Error::CoinExpired
                            )
                        ) =>
                    {
                        report.rejected += 1
                    }
                    Err(e) => return Err(FetchError::Store(e)),
                }
            }
        }
        Ok(report)
    }

    /// Fetch one coin of `peer` on demand, trying each tier of `range` dearest first: the first
    /// one-time coin that is fresh and verifies against the pinned identity is returned (not
    /// cached; pass it to [`Messenger::send_with_coin`]). Tiers with no coin left or no quota
    /// left are skipped; a coin that fails verification is dropped and the next tier tried. The
    /// range keeps a GOLD/SILVER send from reaching BRONZE unless the app allowed it.
    ///
    /// A directory with no one-time coin of a tier left hands out the owner's last-resort coin
    /// of it instead; that coin is kept aside while cheaper tiers are tried, because a one-time
    /// coin gives the first message forward secrecy and a last-resort one does not. Only when no
    /// tier has a one-time coin is the dearest last-resort coin returned
    /// ([`PublicCoin::is_last_resort`]; [`Sent::last_resort`] says so after the send). None when
    /// no tier has a coin of either kind: only then does the sender give up.
    pub fn fetch_on_demand<D: DirectoryStore>(
        &self,
        directory: &D,
        peer: &UserId,
        range: TierRange,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Option<PublicCoin>, FetchError<E, D::Error>> {
        let pinned = self.pinned(peer).map_err(FetchError::Store)?;
        let mut last_resort: Option<PublicCoin> = None;
        for tier in range.tiers() {
            let key = idempotency.map(|k| tier_key(&k, peer, tier));
            let claimed = match directory.claim(peer, &self.me, tier, 1, key, now) {
                Ok(c) => c,
                Err(e) if is_quota(&e) => continue,
                Err(e) => return Err(FetchError::Directory(e)),
            };
            for coin in claimed {
                if coin.tier != tier || coin.verify_fresh(&pinned.identity, self.policy(), now).is_err() {
                    continue;
                }
                if !coin.is_last_resort() {
                    return Ok(Some(coin));
                }
                if last_resort.is_none() {
                    last_resort = Some(coin);
                }
            }
        }
        Ok(last_resort)
    }

    /// [`Messenger::send`], and on [`SendOutcome::NeedCoin`] one on-demand fetch from
    /// `directory` ([`Messenger::fetch_on_demand`]) over the same tier range and
    /// [`Messenger::send_with_coin`]. None when no tier of the range has a coin anywhere.
    ///
    /// This is how a STRANGER is reached: nothing is cached for them.
    ///
    /// ```
    /// use aqm_core::coin;
    /// use aqm_core::crypto::{DeviceKey, Identity};
    /// use aqm_core::memory::MemoryStore;
    /// use aqm_core::messaging::{Messenger, SendOptions};
    /// use aqm_core::store::DirectoryStore;
    /// use aqm_core::{DeviceContext, Policy, Tier};
    ///
    /// let mut rng = rand::rng();
    /// let (alice, carol) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
    /// let dk = DeviceKey::random(&mut rng);
    /// let directory: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    /// let device: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    /// directory.register_identity(carol.public(), &carol.registration_proof(&mut rng).unwrap()).unwrap();
    /// let published = coin::mint(&carol, Tier::Bronze, &DeviceKey::random(&mut rng), 0, &mut rng).unwrap();
    /// directory.upload(&carol.user_id(), &[published.public], 0).unwrap();
    ///
    /// let a = Messenger::new(&*device, &alice, &dk);
    /// a.pin_from_directory(&*directory, &carol.user_id()).unwrap();
    /// // A stranger's ceiling is BRONZE, so the context's BRONZE needs no `allow_classical`.
    /// let (ctx, opts) = (DeviceContext::HOME_WIFI, SendOptions::default());
    /// let sent = a.send_or_fetch(&*directory, &carol.user_id(), &ctx, b"hello", opts, None, 1, &mut rng).unwrap();
    /// assert_eq!(sent.map(|s| s.tier), Some(Tier::Bronze));
    /// // Four more messages ride the same chain; then no coin is left anywhere.
    /// for _ in 0..4 {
    ///     assert!(a.send_or_fetch(&*directory, &carol.user_id(), &ctx, b"..", opts, None, 1, &mut rng).unwrap().is_some());
    /// }
    /// assert!(a.send_or_fetch(&*directory, &carol.user_id(), &ctx, b"..", opts, None, 1, &mut rng).unwrap().is_none());
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn send_or_fetch<D: DirectoryStore, R: CryptoRng + ?Sized>(
        &self,
        directory: &D,
        peer: &UserId,
        ctx: &DeviceContext,
        plaintext: &[u8],
        opts: SendOptions,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<Option<Sent>, FetchError<E, D::Error>> {
        match self.send(peer, ctx, plaintext, opts, now, rng).map_err(FetchError::Store)? {
            SendOutcome::Sent(sent) => Ok(Some(sent)),
            SendOutcome::NeedCoin { range, wasted } => {
                match self.fetch_on_demand(directory, peer, range, idempotency, now)? {
                    None => Ok(None),
                    Some(coin) => self
                        .send_with_coin(peer, &coin, range.desired, plaintext, now, rng)
                        .map(|mut s| {
                            s.wasted = wasted;
                            Some(s)
                        })
                        .map_err(FetchError::Store),
                }
            }
        }
    }
}

fn random_nonce<R: CryptoRng + ?Sized>(rng: &mut R) -> NonceBytes {
    let mut n = [0u8; crypto::sizes::AEAD_NONCE];
    rng.fill_bytes(&mut n);
    n
}

fn check_len(plaintext: &[u8]) -> Result<(), Error> {
    if plaintext.len() > MAX_MESSAGE { Err(Error::MessageTooLarge { max: MAX_MESSAGE }) } else { Ok(()) }
}
