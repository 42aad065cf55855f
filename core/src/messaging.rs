//! The send/receive lifecycle an app calls (DESIGN §4): pick a tier → pop a cached coin (or ask
//! for one on-demand fetch) → encapsulate → ratchet → envelope; and the reverse, which burns the
//! coin in the same atomic step that saves the session it opened.
//!
//! [`Messenger`] is generic over the storage traits: one backend type implements
//! [`InventoryStore`], [`VaultStore`] and [`SessionStore`] with one error type `E`; the core's
//! refusals reach the caller as `E::from(Error)` (check them with [`StoreError::as_core`]).
//! Stores only ever see sealed session bytes.
//!
//! ```
//! use aqm_core::coin;
//! use aqm_core::crypto::{DeviceKey, Identity};
//! use aqm_core::inventory::ContactMeta;
//! use aqm_core::memory::MemoryStore;
//! use aqm_core::messaging::{Messenger, SendOutcome};
//! use aqm_core::store::{InventoryStore, VaultStore};
//! use aqm_core::{DeviceContext, Policy, Priority, Tier};
//!
//! let mut rng = rand::rng();
//! let (alice, bob) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
//! let (alice_dk, bob_dk) = (DeviceKey::random(&mut rng), DeviceKey::random(&mut rng));
//! let alice_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
//! let bob_store: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
//!
//! // Bob mints a coin; Alice, who counts him a BESTIE, caches its public half.
//! let minted = coin::mint(&bob, Tier::Silver, &bob_dk, 0, &mut rng).unwrap();
//! bob_store.put(&minted.vault).unwrap();
//! alice_store.register_contact(&ContactMeta::new(bob.user_id(), Priority::Bestie, "bob", 0).unwrap()).unwrap();
//! alice_store.store_coin(&bob.user_id(), &minted.public, 0).unwrap();
//!
//! let a = Messenger::new(&*alice_store, alice.user_id(), &alice_dk, Policy::DEFAULT);
//! let SendOutcome::Sent(sent) = a.send(bob.public(), &DeviceContext::HOME_WIFI, b"hi Bob", 1, &mut rng).unwrap()
//! else { panic!("a coin was cached") };
//! assert_eq!((sent.tier, sent.fell_back, sent.rekeyed, sent.remaining), (Tier::Silver, true, true, 9));
//! let mut wire = [0u8; aqm_core::envelope::MAX_ENVELOPE];
//! let wire = sent.envelope.encode(&mut wire).unwrap();
//!
//! let b = Messenger::new(&*bob_store, bob.user_id(), &bob_dk, Policy::DEFAULT);
//! let got = b.receive(wire, 2, &mut rng).unwrap();
//! assert_eq!(&got.plaintext[..], b"hi Bob");
//! // The coin opened once: it is burned.
//! assert!(bob_store.get(&minted.public.key_id, 2).unwrap().is_none());
//! ```

use core::fmt;

use rand_core::CryptoRng;
use sha2::{Digest, Sha256};

use crate::coin::PublicCoin;
use crate::crypto::{self, DeviceKey, PublicIdentity};
use crate::directory::IdempotencyKey;
use crate::envelope::{self, Envelope, EnvelopeRef, MAX_HEADER, MAX_MESSAGE, MessageCiphertext, RekeyHeader};
use crate::inventory;
use crate::ratchet::{RecvChain, RecvSession, SendChain, TagBytes};
use crate::store::{Direction, DirectoryStore, InventoryStore, SessionStore, VaultStore};
use crate::vault::KeyStatus;
use crate::{DeviceContext, Error, KeyId, Policy, Priority, StoreError, Tier, TierCounts, UnixSeconds, UserId};

/// A plaintext message, up to [`MAX_MESSAGE`] bytes.
pub type Plaintext = heapless::Vec<u8, MAX_MESSAGE>;

/// One device's side of the lifecycle: its store, its user id, its device key and its policy.
#[derive(Debug)]
pub struct Messenger<'a, St> {
    store: &'a St,
    me: UserId,
    device_key: &'a DeviceKey,
    policy: Policy,
}

/// A message that was encrypted and whose session was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// The envelope to deliver (encode it with [`Envelope::encode`]).
    pub envelope: Envelope,
    /// The tier of the chain the message is on.
    pub tier: Tier,
    /// The tier the device context and the contact's priority asked for when the chain was opened
    /// (equal to `tier` when an existing chain was reused).
    pub desired: Tier,
    /// Whether the coin was of a cheaper tier than `desired` (downward fallback).
    pub fell_back: bool,
    /// Whether this message opened a new chain (it carries a re-key header).
    pub rekeyed: bool,
    /// Messages the chain may still carry before the next re-key.
    pub remaining: u32,
}

/// What [`Messenger::send`] did.
// A `Sent` holds a whole envelope; boxing it would need an allocator, which the core must not.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// The message is ready to deliver.
    Sent(Sent),
    /// No usable chain and no cached coin: fetch one coin on demand (e.g.
    /// [`Messenger::fetch_on_demand`]) and call [`Messenger::send_with_coin`]. Nothing changed.
    NeedCoin {
        /// The tier wanted (fall back downward from it).
        tier: Tier,
    },
}

/// A message that opened and whose session was saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The sender.
    pub from: UserId,
    /// The coin that opened the message's chain.
    pub chain: KeyId,
    /// That coin's tier.
    pub tier: Tier,
    /// The message's counter on its chain.
    pub counter: u32,
    /// Whether this message opened a new chain (and burned the coin).
    pub rekeyed: bool,
    /// The decrypted message.
    pub plaintext: Plaintext,
}

/// What [`Messenger::prefetch`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefetchReport {
    /// Coins asked of the directory per tier (the contact's deficits).
    pub requested: TierCounts,
    /// Coins verified and cached per tier.
    pub stored: TierCounts,
    /// Coins handed out but refused: forged, of another owner, or over the cap.
    pub rejected: u32,
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
    let digest = Sha256::new()
        .chain_update(CLAIM_KEY_DOMAIN)
        .chain_update(key)
        .chain_update(owner.as_bytes())
        .chain_update([tier.to_byte()])
        .finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

fn is_quota<D: StoreError>(e: &D) -> bool {
    matches!(e.as_core(), Some(Error::QuotaExceeded { .. }))
}

impl<'a, St, E> Messenger<'a, St>
where
    St: InventoryStore<Error = E> + SessionStore + VaultStore<Error = E>,
    E: StoreError,
{
    /// The lifecycle of user `me` on a device holding `device_key`, over `store`, under `policy`
    /// (the same policy the store applies).
    pub fn new(store: &'a St, me: UserId, device_key: &'a DeviceKey, policy: Policy) -> Self {
        Messenger { store, me, device_key, policy }
    }

    /// The user this messenger sends as.
    pub fn me(&self) -> &UserId {
        &self.me
    }

    /// Encrypt `plaintext` to `peer`.
    ///
    /// Reuses the saved send chain to `peer` if it is not exhausted. Otherwise picks the tier from
    /// `ctx` capped by the contact's priority (an unregistered peer counts as STRANGER), pops the
    /// oldest cached coin with downward fallback, verifies it against `peer`, encapsulates to it
    /// and opens a new chain. No cached coin (or no registered contact) →
    /// [`SendOutcome::NeedCoin`], nothing changed. The session is saved before the envelope is
    /// returned, so a counter is never used twice.
    ///
    /// A saved send session that no longer opens (another device key, tampering) is replaced by a
    /// new chain: re-keying is always safe for the sender. A cached coin that fails verification
    /// is dropped from the inventory and refused ([`Error::BadSignature`] / [`Error::WrongOwner`]).
    /// A plaintext over [`MAX_MESSAGE`] → [`Error::MessageTooLarge`] before any coin is used.
    pub fn send<R: CryptoRng + ?Sized>(
        &self,
        peer: &PublicIdentity,
        ctx: &DeviceContext,
        plaintext: &[u8],
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<SendOutcome, E> {
        check_len(plaintext)?;
        let peer_id = peer.user_id;
        if let Some(blob) = self.store.load_session(&peer_id, Direction::Send)?
            && let Ok(mut chain) = SendChain::open(&blob, self.device_key, &peer_id)
            && !chain.is_exhausted()
        {
            let envelope = self.seal_and_save(&mut chain, None, plaintext, rng)?;
            let tier = chain.tier();
            return Ok(SendOutcome::Sent(Sent {
                envelope,
                tier,
                desired: tier,
                fell_back: false,
                rekeyed: false,
                remaining: chain.remaining(),
            }));
        }
        self.send_rekeyed(peer, ctx, plaintext, now, rng)
    }

    /// Like [`Messenger::send`], but always opens a new chain (picking the tier from `ctx` capped
    /// by the contact's priority, popping a cached coin with downward fallback), even when the
    /// open chain to `peer` has messages left — e.g. when the device context changed and the app
    /// wants the tier it now affords. No cached coin → [`SendOutcome::NeedCoin`], nothing changed.
    pub fn send_rekeyed<R: CryptoRng + ?Sized>(
        &self,
        peer: &PublicIdentity,
        ctx: &DeviceContext,
        plaintext: &[u8],
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<SendOutcome, E> {
        check_len(plaintext)?;
        let peer_id = peer.user_id;
        let contact = self.store.contact(&peer_id)?;
        let priority = contact.as_ref().map_or(Priority::Stranger, |c| c.priority);
        let desired = self.policy.choose_tier(ctx, priority);
        if contact.is_none() {
            return Ok(SendOutcome::NeedCoin { tier: desired });
        }
        match self.store.select_coin(&peer_id, desired, now)? {
            None => Ok(SendOutcome::NeedCoin { tier: desired }),
            Some(cached) => self.send_with_coin(peer, &cached.coin, desired, plaintext, rng).map(SendOutcome::Sent),
        }
    }

    /// Open a new chain to `peer` with `coin` (e.g. fetched on demand after
    /// [`SendOutcome::NeedCoin`]) and encrypt `plaintext` as its first message. `desired` is the
    /// tier that was asked for (it only sets [`Sent::fell_back`]). The coin must verify against
    /// `peer` ([`Error::WrongOwner`], [`Error::BadSignature`], [`Error::BadLength`] otherwise,
    /// nothing changed).
    pub fn send_with_coin<R: CryptoRng + ?Sized>(
        &self,
        peer: &PublicIdentity,
        coin: &PublicCoin,
        desired: Tier,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Sent, E> {
        check_len(plaintext)?;
        coin.verify(peer)?;
        let (kem_ciphertext, shared) = crypto::encapsulate(coin.tier, &coin.public_key, rng)?;
        let limit = self.policy.ratchet_limit(coin.tier);
        let mut chain = SendChain::new(&shared, &self.me, &peer.user_id, coin.key_id, coin.tier, limit);
        let rekey = RekeyHeader { tier: coin.tier, kem_ciphertext };
        let envelope = self.seal_and_save(&mut chain, Some(rekey), plaintext, rng)?;
        Ok(Sent {
            envelope,
            tier: coin.tier,
            desired,
            fell_back: coin.tier > desired,
            rekeyed: true,
            remaining: chain.remaining(),
        })
    }

    fn seal_and_save<R: CryptoRng + ?Sized>(
        &self,
        chain: &mut SendChain,
        rekey: Option<RekeyHeader>,
        plaintext: &[u8],
        rng: &mut R,
    ) -> Result<Envelope, E> {
        let peer = *chain.peer();
        let coin = *chain.coin();
        let mut header = [0u8; MAX_HEADER];
        let aad = envelope::header_for(&self.me, &peer, &coin, rekey.as_ref(), chain.counter(), &mut header)?;
        let mut ciphertext =
            MessageCiphertext::from_slice(plaintext).map_err(|_| Error::MessageTooLarge { max: MAX_MESSAGE })?;
        let (counter, tag) = chain.encrypt(aad, &mut ciphertext)?;
        ciphertext.extend_from_slice(&tag).map_err(|_| Error::MessageTooLarge { max: MAX_MESSAGE })?;
        let blob = chain.seal(self.device_key, rng)?;
        self.store.save_session(&peer, Direction::Send, &blob)?;
        Ok(Envelope::new(self.me, peer, coin, rekey, counter, ciphertext))
    }

    /// Decode, check and decrypt one envelope from the wire.
    ///
    /// - Not addressed to us → [`Error::NotForUs`].
    /// - With a re-key header: the coin must be ACTIVE in the vault (burned →
    ///   [`Error::KeyAlreadyBurned`], absent or expired → [`Error::KeyNotFound`]); its sealed seed
    ///   is opened, the KEM ciphertext decapsulated, the chain derived and the message decrypted;
    ///   then the coin is burned and the session saved in ONE atomic step
    ///   ([`SessionStore::burn_and_save_session`]). The previous chain stays open for late
    ///   messages.
    /// - Without: the saved receive session must hold the chain ([`Error::NoSession`] otherwise;
    ///   keep such an envelope and retry it after the chain's first message arrived), then the
    ///   ratchet's receive rule applies ([`Error::Replay`], [`Error::TooFarAhead`]).
    ///
    /// Any refusal — tampered header, ciphertext or KEM ciphertext ([`Error::DecryptFailed`]),
    /// malformed bytes — saves nothing and burns nothing. Receives from one peer must not run
    /// concurrently (the session is loaded, advanced and saved).
    pub fn receive<R: CryptoRng + ?Sized>(&self, wire: &[u8], now: UnixSeconds, rng: &mut R) -> Result<Received, E> {
        let env = EnvelopeRef::decode(wire)?;
        if env.recipient != self.me {
            return Err(Error::NotForUs.into());
        }
        let peer = env.sender;
        let aad = env.header_bytes();
        // Decoding checked that the ciphertext holds at least its tag and at most a full message.
        let split = env.ciphertext.len().checked_sub(crypto::sizes::AEAD_TAG).ok_or(Error::Malformed)?;
        let (body, tag) = env.ciphertext.split_at(split);
        let tag: TagBytes = tag.try_into().map_err(|_| Error::Malformed)?;
        let mut plaintext = Plaintext::from_slice(body).map_err(|_| Error::Malformed)?;
        let max_skipped = self.policy.max_skipped_keys;

        let tier = match env.rekey {
            Some(rekey) => {
                let entry = match self.store.get(&env.chain, now)? {
                    Some(entry) => entry,
                    None => {
                        return Err(match self.store.status(&env.chain)? {
                            Some(KeyStatus::Burned) => Error::KeyAlreadyBurned,
                            _ => Error::KeyNotFound,
                        }
                        .into());
                    }
                };
                if entry.tier != rekey.tier {
                    return Err(Error::DecryptFailed.into());
                }
                let seed = entry.sealed.open(self.device_key, &env.chain, entry.tier)?;
                let shared =
                    crypto::decapsulate(rekey.tier, &seed, rekey.kem_ciphertext).map_err(|_| Error::DecryptFailed)?;
                let chain = RecvChain::new(&shared, &peer, &self.me, env.chain, rekey.tier);
                let saved = self.store.load_session(&peer, Direction::Receive)?;
                let mut session = match saved.map(|b| RecvSession::open(&b, self.device_key, &peer)) {
                    Some(Ok(mut s)) => {
                        s.rekey(chain)?;
                        s
                    }
                    // No session yet, or one that no longer opens: the new chain starts afresh.
                    _ => RecvSession::new(peer, chain),
                };
                session.decrypt(max_skipped, &env.chain, env.counter, aad, &mut plaintext, &tag)?;
                let blob = session.seal(self.device_key, rng)?;
                self.store.burn_and_save_session(&env.chain, now, &peer, &blob)?;
                rekey.tier
            }
            None => {
                let blob = self.store.load_session(&peer, Direction::Receive)?.ok_or(Error::NoSession)?;
                let mut session = RecvSession::open(&blob, self.device_key, &peer)?;
                session.decrypt(max_skipped, &env.chain, env.counter, aad, &mut plaintext, &tag)?;
                let tier = match session.previous() {
                    Some(p) if p.coin() == &env.chain => p.tier(),
                    _ => session.current().tier(),
                };
                self.store.save_session(&peer, Direction::Receive, &session.seal(self.device_key, rng)?)?;
                tier
            }
        };
        Ok(Received {
            from: peer,
            chain: env.chain,
            tier,
            counter: env.counter,
            rekeyed: env.rekey.is_some(),
            plaintext,
        })
    }

    /// Top up the cached coins of a registered contact: claim each tier's deficit
    /// ([`inventory::replenish_needs`]) from `directory`, verify every coin against `peer` and
    /// cache it. A tier whose anti-drain quota is used up is skipped; coins that fail
    /// verification or admission are counted in [`PrefetchReport::rejected`] and dropped.
    /// With `idempotency`, each tier's claim uses a key derived from it and the owner, so retrying
    /// the whole call with the same key claims nothing more. Unregistered → [`Error::ContactNotRegistered`].
    pub fn prefetch<D: DirectoryStore>(
        &self,
        directory: &D,
        peer: &PublicIdentity,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<PrefetchReport, FetchError<E, D::Error>> {
        let peer_id = peer.user_id;
        let meta = self
            .store
            .contact(&peer_id)
            .map_err(FetchError::Store)?
            .ok_or(FetchError::Store(E::from(Error::ContactNotRegistered)))?;
        let held = self.store.counts(&peer_id).map_err(FetchError::Store)?;
        let mut report = PrefetchReport {
            requested: inventory::replenish_needs(&self.policy, meta.priority, &held),
            ..PrefetchReport::default()
        };
        for tier in Tier::ALL {
            let need = report.requested.get(tier);
            if need == 0 {
                continue;
            }
            let key = idempotency.map(|k| tier_key(&k, &peer_id, tier));
            let claimed = match directory.claim(&peer_id, &self.me, tier, need, key, now) {
                Ok(c) => c,
                Err(e) if is_quota(&e) => continue,
                Err(e) => return Err(FetchError::Directory(e)),
            };
            for coin in &claimed {
                if coin.tier != tier || coin.verify(peer).is_err() {
                    report.rejected += 1;
                    continue;
                }
                match self.store.store_coin(&peer_id, coin, now) {
                    Ok(()) => *report.stored.get_mut(tier) += 1,
                    Err(e)
                        if matches!(
                            e.as_core(),
                            Some(Error::BudgetExceeded { .. } | Error::CoinAlreadyCached | Error::WrongOwner)
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

    /// Fetch one coin of `peer` on demand, trying `desired` and then each cheaper tier: the first
    /// coin that verifies against `peer` is returned (not cached; pass it to
    /// [`Messenger::send_with_coin`]). Tiers with no coin left or no quota left are skipped; a
    /// coin that fails verification is dropped and the next tier tried. None when every tier is
    /// empty: only then does the sender give up.
    pub fn fetch_on_demand<D: DirectoryStore>(
        &self,
        directory: &D,
        peer: &PublicIdentity,
        desired: Tier,
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
    ) -> Result<Option<PublicCoin>, FetchError<E, D::Error>> {
        for tier in desired.fallback() {
            let key = idempotency.map(|k| tier_key(&k, &peer.user_id, tier));
            let claimed = match directory.claim(&peer.user_id, &self.me, tier, 1, key, now) {
                Ok(c) => c,
                Err(e) if is_quota(&e) => continue,
                Err(e) => return Err(FetchError::Directory(e)),
            };
            if let Some(coin) = claimed.into_iter().find(|c| c.tier == tier && c.verify(peer).is_ok()) {
                return Ok(Some(coin));
            }
        }
        Ok(None)
    }

    /// [`Messenger::send`], and on [`SendOutcome::NeedCoin`] one on-demand fetch from
    /// `directory` ([`Messenger::fetch_on_demand`]) and [`Messenger::send_with_coin`]. None when
    /// no tier has a coin anywhere.
    ///
    /// This is how a STRANGER is reached: nothing is cached for them.
    ///
    /// ```
    /// use aqm_core::coin;
    /// use aqm_core::crypto::{DeviceKey, Identity};
    /// use aqm_core::memory::MemoryStore;
    /// use aqm_core::messaging::Messenger;
    /// use aqm_core::store::DirectoryStore;
    /// use aqm_core::{DeviceContext, Policy, Tier};
    ///
    /// let mut rng = rand::rng();
    /// let (alice, carol) = (Identity::generate(&mut rng), Identity::generate(&mut rng));
    /// let dk = DeviceKey::random(&mut rng);
    /// let directory: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    /// let device: Box<MemoryStore> = Box::new(MemoryStore::new(Policy::DEFAULT));
    /// directory.register_identity(carol.public()).unwrap();
    /// let published = coin::mint(&carol, Tier::Bronze, &DeviceKey::random(&mut rng), 0, &mut rng).unwrap();
    /// directory.upload(&carol.user_id(), &[published.public], 0).unwrap();
    ///
    /// let a = Messenger::new(&*device, alice.user_id(), &dk, Policy::DEFAULT);
    /// let ctx = DeviceContext::HOME_WIFI;
    /// let sent = a.send_or_fetch(&*directory, carol.public(), &ctx, b"hello", None, 1, &mut rng).unwrap();
    /// assert_eq!(sent.map(|s| s.tier), Some(Tier::Bronze));
    /// // Four more messages ride the same chain; then no coin is left anywhere.
    /// for _ in 0..4 {
    ///     assert!(a.send_or_fetch(&*directory, carol.public(), &ctx, b"..", None, 1, &mut rng).unwrap().is_some());
    /// }
    /// assert!(a.send_or_fetch(&*directory, carol.public(), &ctx, b"..", None, 1, &mut rng).unwrap().is_none());
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn send_or_fetch<D: DirectoryStore, R: CryptoRng + ?Sized>(
        &self,
        directory: &D,
        peer: &PublicIdentity,
        ctx: &DeviceContext,
        plaintext: &[u8],
        idempotency: Option<IdempotencyKey>,
        now: UnixSeconds,
        rng: &mut R,
    ) -> Result<Option<Sent>, FetchError<E, D::Error>> {
        match self.send(peer, ctx, plaintext, now, rng).map_err(FetchError::Store)? {
            SendOutcome::Sent(sent) => Ok(Some(sent)),
            SendOutcome::NeedCoin { tier } => match self.fetch_on_demand(directory, peer, tier, idempotency, now)? {
                None => Ok(None),
                Some(coin) => {
                    self.send_with_coin(peer, &coin, tier, plaintext, rng).map(Some).map_err(FetchError::Store)
                }
            },
        }
    }
}

fn check_len(plaintext: &[u8]) -> Result<(), Error> {
    if plaintext.len() > MAX_MESSAGE { Err(Error::MessageTooLarge { max: MAX_MESSAGE }) } else { Ok(()) }
}
