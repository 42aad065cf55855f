//! The symmetric ratchet: one KEM shared secret opens a one-directional chain that derives one
//! AES-256-GCM key per message (the rules in docs/architecture.md §2 "Ratchet").
//!
//! - Root: `HKDF-SHA256(salt = "AQM-ratchet-v2", ikm = KEM shared secret,
//!   info = sender id ‖ recipient id ‖ coin key id ‖ tier byte ‖ SHA-256(re-key signed bytes))`
//!   → 32-byte chain key (the transcript hash binds the chain to the signed re-key,
//!   [`crate::rekey`]).
//! - Message `i`: message key = `HMAC-SHA256(ck, 0x01)`, next chain key = `HMAC-SHA256(ck, 0x02)`;
//!   the message is sealed with AES-256-GCM under the message key, nonce = the fresh random
//!   12-byte nonce the envelope header carries, AAD = the envelope header bytes. A sender whose
//!   state was rolled back reuses a message key, never a (key, nonce) pair; the receiver refuses
//!   the second message as a replay.
//! - The sender ([`SendChain`]) re-keys with a new coin once the chain carried its tier's limit
//!   ([`crate::Policy::ratchet_limit`]: GOLD 25, SILVER 10, BRONZE 5); the receiver refuses any
//!   counter at or past the protocol's limit ([`crate::protocol::CHAIN_LIMITS`]).
//! - The receiver ([`RecvSession`]) keeps the current and the previous chain of a peer and a
//!   bounded pool of skipped message keys (at most [`MAX_SKIPPED`], and at most
//!   [`crate::Policy::max_skipped_keys`]) for out-of-order delivery.
//!
//! Receive rule for a message with counter `n` on a chain whose next expected counter is `k`:
//! - `n` at or past the tier's protocol limit: [`Error::CounterPastLimit`];
//! - `n < k`: opens once with its skipped key if the pool still holds it, else [`Error::Replay`]
//!   (already received, or its key was evicted from the bounded pool);
//! - `n ≥ k` and `n − k` > the skip bound: [`Error::TooFarAhead`];
//! - otherwise the keys of `k..n` go to the pool (evicting the oldest entries when full) and the
//!   chain advances to `n + 1`.
//!
//! Any failure — including a tag that does not verify ([`Error::DecryptFailed`]) — leaves the
//! state unchanged. Chain keys and message keys zeroize on drop; a consumed key is wiped.
//!
//! Sessions are stored only sealed: [`SendChain::seal`] / [`RecvSession::seal`] serialize with
//! postcard and seal with AES-256-GCM under the [`DeviceKey`], AAD = `"AQM-session-v2"` ‖ peer id ‖
//! direction byte (send = 1, receive = 2), into a [`SessionBlob`].
// Counters and lengths here come from the wire and from stored blobs: no unchecked arithmetic.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use core::fmt;
use core::mem::MaybeUninit;

use aes_gcm::aead::{AeadInOut, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::sizes::{AEAD_NONCE, AEAD_TAG};
use crate::crypto::{DeviceKey, SharedSecret};
use crate::envelope::NonceBytes;
use crate::store::{Direction, MAX_SESSION_BLOB, SessionBlob};
use crate::{Error, KeyId, Tier, UserId};

/// Compile-time bound on skipped message keys a receive session holds (over both chains).
pub const MAX_SKIPPED: usize = 32;

/// HKDF salt of the ratchet root.
pub const RATCHET_SALT: &[u8] = b"AQM-ratchet-v2";

/// Domain tag of the AAD that binds a sealed session to its peer and direction.
pub const SESSION_AAD_DOMAIN: &[u8] = b"AQM-session-v2";

/// SHA-256 of a chain's signed re-key bytes ([`crate::rekey::RekeyFields::transcript_hash`]).
pub type Transcript = [u8; 32];

/// An AES-GCM tag.
pub type TagBytes = [u8; AEAD_TAG];

/// A 32-byte chain or message key; wiped on drop, never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop, Serialize, Deserialize)]
struct Key32([u8; 32]);

impl fmt::Debug for Key32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key32(redacted)")
    }
}

impl Key32 {
    /// The root chain key of a chain from `sender` to `recipient` opened by `coin`.
    fn root(
        shared: &SharedSecret,
        sender: &UserId,
        recipient: &UserId,
        coin: &KeyId,
        tier: Tier,
        transcript: &Transcript,
    ) -> Key32 {
        let hk = Hkdf::<Sha256>::new(Some(RATCHET_SALT), shared.as_bytes());
        let mut out = Key32([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expansion cannot fail.
        let _ = hk.expand_multi_info(
            &[sender.as_bytes(), recipient.as_bytes(), coin.as_bytes(), &[tier.to_byte()], transcript],
            &mut out.0,
        );
        out
    }

    fn keyed(&self) -> Option<Hmac<Sha256>> {
        // HMAC takes keys of any length, so this is always Some.
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).ok()
    }

    fn finish(mac: Option<Hmac<Sha256>>, label: u8) -> Key32 {
        let mut out = Key32([0u8; 32]);
        if let Some(mut mac) = mac {
            mac.update(&[label]);
            out.0.copy_from_slice(&mac.finalize().into_bytes());
        }
        out
    }

    /// The chain key of the next step: `HMAC-SHA256(ck, 0x02)`.
    fn next(&self) -> Key32 {
        Self::finish(self.keyed(), 0x02)
    }

    /// One chain step with one HMAC key schedule: the message key `HMAC-SHA256(ck, 0x01)` and the
    /// next chain key.
    fn step(&self) -> (Key32, Key32) {
        let mac = self.keyed();
        (Self::finish(mac.clone(), 0x01), Self::finish(mac, 0x02))
    }
}

fn seal_message(mk: &Key32, nonce: &NonceBytes, aad: &[u8], buf: &mut [u8]) -> Result<TagBytes, Error> {
    let tag = Aes256Gcm::new(&mk.0.into())
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
        .map_err(|_| Error::MessageTooLarge { max: crate::envelope::MAX_MESSAGE })?;
    let mut out = [0u8; AEAD_TAG];
    out.copy_from_slice(&tag);
    Ok(out)
}

fn open_message(mk: &Key32, nonce: &NonceBytes, aad: &[u8], buf: &mut [u8], tag: &TagBytes) -> Result<(), Error> {
    Aes256Gcm::new(&mk.0.into())
        .decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag))
        .map_err(|_| Error::DecryptFailed)
}

/// The sending half of a session: one chain to one peer, opened by one coin.
///
/// ```
/// use aqm_core::crypto::{decapsulate, encapsulate, generate_keypair};
/// use aqm_core::ratchet::{RecvChain, RecvSession, SendChain};
/// use aqm_core::{KeyId, Policy, Tier, UserId};
/// let mut rng = rand::rng();
/// let (alice, bob, coin) = (UserId([1; 16]), UserId([2; 16]), KeyId([3; 16]));
/// let (seed, pk) = generate_keypair(Tier::Bronze, &mut rng);
/// let (ct, ss) = encapsulate(Tier::Bronze, &pk, &mut rng).unwrap();
/// let transcript = [0u8; 32]; // SHA-256 of the signed re-key bytes, in real use
/// let limit = Policy::DEFAULT.ratchet_limit(Tier::Bronze);
/// let mut send = SendChain::new(&ss, &alice, &bob, coin, Tier::Bronze, limit, &transcript);
///
/// let ss2 = decapsulate(Tier::Bronze, &seed, &ct).unwrap();
/// let mut recv = RecvSession::new(alice, RecvChain::new(&ss2, &alice, &bob, coin, Tier::Bronze, &transcript));
///
/// let mut msg = *b"hello";
/// let nonce = [7u8; 12]; // fresh and random per message, in real use
/// let (n, tag) = send.encrypt(b"header", &nonce, &mut msg).unwrap();
/// recv.decrypt(32, &coin, n, &nonce, b"header", &mut msg, &tag).unwrap();
/// assert_eq!(&msg, b"hello");
/// assert_eq!(send.remaining(), 4);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendChain {
    peer: UserId,
    coin: KeyId,
    tier: Tier,
    chain_key: Key32,
    next: u32,
    limit: u32,
}

impl SendChain {
    /// Open a chain from `me` to `peer` with the shared secret of an encapsulation to `coin`,
    /// bound to the signed re-key by `transcript`. `limit` is the number of messages it may carry
    /// (normally [`crate::Policy::ratchet_limit`]; never more than the protocol's limit).
    pub fn new(
        shared: &SharedSecret,
        me: &UserId,
        peer: &UserId,
        coin: KeyId,
        tier: Tier,
        limit: u32,
        transcript: &Transcript,
    ) -> Self {
        let limit = limit.min(crate::protocol::chain_limit(tier));
        let chain_key = Key32::root(shared, me, peer, &coin, tier, transcript);
        SendChain { peer: *peer, coin, tier, chain_key, next: 0, limit }
    }

    /// The peer this chain encrypts to.
    pub fn peer(&self) -> &UserId {
        &self.peer
    }

    /// The key id of the coin that opened the chain.
    pub fn coin(&self) -> &KeyId {
        &self.coin
    }

    /// The tier of the coin that opened the chain.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The counter the next message will carry.
    pub fn counter(&self) -> u32 {
        self.next
    }

    /// Messages this chain may carry in total.
    pub fn limit(&self) -> u32 {
        self.limit
    }

    /// Messages still allowed before a re-key.
    pub fn remaining(&self) -> u32 {
        self.limit.saturating_sub(self.next)
    }

    /// Whether the chain carried its limit: the sender must re-key with a new coin.
    pub fn is_exhausted(&self) -> bool {
        self.next >= self.limit
    }

    /// Encrypt `buf` in place as message [`SendChain::counter`] with `nonce` (fresh and random;
    /// the header carries it), authenticating `aad` (the envelope header, which must carry that
    /// counter and nonce). Returns the counter used and the tag, and advances the chain (the old
    /// chain key is wiped). An exhausted chain → [`Error::ChainExhausted`], nothing changes.
    pub fn encrypt(&mut self, aad: &[u8], nonce: &NonceBytes, buf: &mut [u8]) -> Result<(u32, TagBytes), Error> {
        if self.is_exhausted() {
            return Err(Error::ChainExhausted { limit: self.limit });
        }
        let counter = self.next;
        let after = counter.checked_add(1).ok_or(Error::ChainExhausted { limit: self.limit })?;
        let (mk, next) = self.chain_key.step();
        let tag = seal_message(&mk, nonce, aad, buf)?;
        self.chain_key = next;
        self.next = after;
        Ok((counter, tag))
    }

    /// Seal this chain under the device key for a [`crate::store::SessionStore`].
    pub fn seal<R: CryptoRng + ?Sized>(&self, device_key: &DeviceKey, rng: &mut R) -> Result<SessionBlob, Error> {
        seal_record(self, device_key, &self.peer, Direction::Send, rng)
    }

    /// Open a sealed send chain for `peer`. A blob of another peer, direction or device, or one
    /// with any bit flipped → [`Error::SealBroken`]; bytes that open but do not parse →
    /// [`Error::Malformed`].
    pub fn open(blob: &[u8], device_key: &DeviceKey, peer: &UserId) -> Result<Self, Error> {
        let chain: SendChain = open_record(blob, device_key, peer, Direction::Send)?;
        if chain.peer != *peer {
            return Err(Error::Malformed);
        }
        Ok(chain)
    }
}

/// One receiving chain: where a peer's chain opened by one of our coins stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecvChain {
    coin: KeyId,
    tier: Tier,
    chain_key: Key32,
    next: u32,
}

impl RecvChain {
    /// Derive the chain `sender` opened to `me` with `coin` from the decapsulated shared secret
    /// and the verified re-key's `transcript`.
    pub fn new(
        shared: &SharedSecret,
        sender: &UserId,
        me: &UserId,
        coin: KeyId,
        tier: Tier,
        transcript: &Transcript,
    ) -> Self {
        RecvChain { coin, tier, chain_key: Key32::root(shared, sender, me, &coin, tier, transcript), next: 0 }
    }

    /// The key id of the coin that opened the chain.
    pub fn coin(&self) -> &KeyId {
        &self.coin
    }

    /// The tier of the coin that opened the chain.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The lowest counter not yet received or skipped.
    pub fn next_counter(&self) -> u32 {
        self.next
    }

    /// The message key `steps` steps ahead, and the chain key after it.
    fn walk(&self, steps: u32) -> (Key32, Key32) {
        let mut ck = self.chain_key.clone();
        for _ in 0..steps {
            ck = ck.next();
        }
        ck.step()
    }
}

/// A message key kept for a message that has not arrived yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Skipped {
    coin: KeyId,
    counter: u32,
    key: Key32,
}

/// The bounded FIFO pool of skipped keys. Removing an entry wipes it, and the slot its bytes were
/// shifted out of.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
struct SkippedKeys(heapless::Vec<Skipped, MAX_SKIPPED>);

impl SkippedKeys {
    fn position(&self, coin: &KeyId, counter: u32) -> Option<usize> {
        self.0.iter().position(|s| s.coin == *coin && s.counter == counter)
    }

    fn wipe_spare(&mut self) {
        self.0.spare_capacity_mut().zeroize();
    }

    fn remove(&mut self, i: usize) {
        if i < self.0.len() {
            drop(self.0.remove(i));
            self.wipe_spare();
        }
    }

    fn retain_coin(&mut self, coin: &KeyId) {
        self.0.retain(|s| s.coin == *coin);
        self.wipe_spare();
    }

    fn drop_coin(&mut self, coin: &KeyId) {
        self.0.retain(|s| s.coin != *coin);
        self.wipe_spare();
    }

    /// Add an entry, evicting the oldest ones so that at most `max` remain.
    fn push_bounded(&mut self, entry: Skipped, max: usize) {
        if max == 0 {
            return;
        }
        while self.0.len() >= max.min(MAX_SKIPPED) {
            self.remove(0);
        }
        // Room was made above, so the push cannot fail.
        let _ = self.0.push(entry);
    }
}

impl Drop for SkippedKeys {
    fn drop(&mut self) {
        // The entries wipe themselves; stale copies left by earlier shifts are wiped here.
        let spare: &mut [MaybeUninit<Skipped>] = self.0.spare_capacity_mut();
        spare.zeroize();
    }
}

/// The receiving half of a session with one peer: the current chain, the previous one (so late
/// messages of the previous chain still open) and the bounded pool of skipped keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecvSession {
    peer: UserId,
    current: RecvChain,
    previous: Option<RecvChain>,
    skipped: SkippedKeys,
}

impl RecvSession {
    /// A session with `peer` whose first chain is `chain`.
    pub fn new(peer: UserId, chain: RecvChain) -> Self {
        RecvSession { peer, current: chain, previous: None, skipped: SkippedKeys::default() }
    }

    /// The peer who sends on these chains.
    pub fn peer(&self) -> &UserId {
        &self.peer
    }

    /// The newest chain.
    pub fn current(&self) -> &RecvChain {
        &self.current
    }

    /// The chain before it, if any.
    pub fn previous(&self) -> Option<&RecvChain> {
        self.previous.as_ref()
    }

    /// Skipped message keys held.
    pub fn skipped_len(&self) -> usize {
        self.skipped.0.len()
    }

    /// Whether `coin` opened the current or the previous chain.
    pub fn has_chain(&self, coin: &KeyId) -> bool {
        self.current.coin == *coin || self.previous.as_ref().is_some_and(|p| p.coin == *coin)
    }

    /// Make `chain` the current chain; the current one becomes the previous one, and the chain
    /// before that is forgotten with its skipped keys. A chain already held → [`Error::Replay`].
    pub fn rekey(&mut self, chain: RecvChain) -> Result<(), Error> {
        if self.has_chain(&chain.coin) {
            return Err(Error::Replay);
        }
        let old = core::mem::replace(&mut self.current, chain);
        self.skipped.retain_coin(&old.coin);
        self.previous = Some(old);
        Ok(())
    }

    /// Make `chain`, opened with a last-resort coin, the current chain. One last-resort coin opens
    /// many chains under one key id, so a chain this session already holds under that id is the
    /// peer's earlier use of the same coin: it is dropped with its skipped keys (its late
    /// messages no longer open) instead of refused. A replayed first message is refused before
    /// this, by the vault's record of what the coin opened ([`crate::vault::LastResortOpens`]).
    pub fn rekey_last_resort(&mut self, chain: RecvChain) {
        self.skipped.drop_coin(&chain.coin);
        if self.current.coin == chain.coin {
            self.current = chain;
            return;
        }
        if self.previous.as_ref().is_some_and(|p| p.coin == chain.coin) {
            self.previous = None;
        }
        let old = core::mem::replace(&mut self.current, chain);
        self.skipped.retain_coin(&old.coin);
        self.previous = Some(old);
    }

    /// The tier of the chain opened by `coin`, if this session holds it.
    pub fn chain_tier(&self, coin: &KeyId) -> Option<Tier> {
        if self.current.coin == *coin {
            Some(self.current.tier)
        } else {
            self.previous.as_ref().filter(|p| p.coin == *coin).map(|p| p.tier)
        }
    }

    /// Decrypt `buf` in place: message `counter` of the chain opened by `coin`, sealed with
    /// `nonce`, authenticating `aad`, with `tag`. At most `max_skipped` (capped at
    /// [`MAX_SKIPPED`]) skipped keys are kept. Follows the receive rule of the module docs; on
    /// any error nothing changes and `buf` still holds the ciphertext. An unknown `coin` →
    /// [`Error::NoSession`].
    #[allow(clippy::too_many_arguments)]
    pub fn decrypt(
        &mut self,
        max_skipped: u32,
        coin: &KeyId,
        counter: u32,
        nonce: &NonceBytes,
        aad: &[u8],
        buf: &mut [u8],
        tag: &TagBytes,
    ) -> Result<(), Error> {
        let max = usize::try_from(max_skipped).unwrap_or(MAX_SKIPPED).min(MAX_SKIPPED);
        let chain = if self.current.coin == *coin {
            &mut self.current
        } else {
            match self.previous.as_mut() {
                Some(p) if p.coin == *coin => p,
                _ => return Err(Error::NoSession),
            }
        };
        let limit = crate::protocol::chain_limit(chain.tier);
        if counter >= limit {
            return Err(Error::CounterPastLimit { limit });
        }
        if counter < chain.next {
            let i = self.skipped.position(coin, counter).ok_or(Error::Replay)?;
            let kept = self.skipped.0.get(i).ok_or(Error::Replay)?;
            open_message(&kept.key, nonce, aad, buf, tag)?;
            self.skipped.remove(i);
            return Ok(());
        }
        let gap = counter.checked_sub(chain.next).ok_or(Error::Replay)?;
        let after = counter.checked_add(1).ok_or(Error::TooFarAhead)?;
        if gap as usize > max {
            return Err(Error::TooFarAhead);
        }
        let (mk, after_ck) = chain.walk(gap);
        open_message(&mk, nonce, aad, buf, tag)?;
        // Authentic: keep the keys of the messages jumped over, then advance.
        let mut step = chain.chain_key.clone();
        for skipped in chain.next..counter {
            let (key, next) = step.step();
            self.skipped.push_bounded(Skipped { coin: *coin, counter: skipped, key }, max);
            step = next;
        }
        chain.chain_key = after_ck;
        chain.next = after;
        Ok(())
    }

    /// Seal this session under the device key for a [`crate::store::SessionStore`].
    pub fn seal<R: CryptoRng + ?Sized>(&self, device_key: &DeviceKey, rng: &mut R) -> Result<SessionBlob, Error> {
        seal_record(self, device_key, &self.peer, Direction::Receive, rng)
    }

    /// Open a sealed receive session for `peer`; errors as [`SendChain::open`].
    pub fn open(blob: &[u8], device_key: &DeviceKey, peer: &UserId) -> Result<Self, Error> {
        let s: RecvSession = open_record(blob, device_key, peer, Direction::Receive)?;
        if s.peer != *peer || s.skipped.0.iter().any(|k| !s.has_chain(&k.coin)) {
            return Err(Error::Malformed);
        }
        Ok(s)
    }
}

const SEAL_OVERHEAD: usize = AEAD_NONCE + AEAD_TAG;
const MAX_RECORD: usize = MAX_SESSION_BLOB - SEAL_OVERHEAD;

fn direction_byte(d: Direction) -> u8 {
    match d {
        Direction::Send => 1,
        Direction::Receive => 2,
    }
}

fn session_aad(peer: &UserId, direction: Direction) -> [u8; SESSION_AAD_DOMAIN.len() + 17] {
    let mut a = [0u8; SESSION_AAD_DOMAIN.len() + 17];
    let parts = SESSION_AAD_DOMAIN.iter().chain(peer.as_bytes()).copied().chain([direction_byte(direction)]);
    for (slot, b) in a.iter_mut().zip(parts) {
        *slot = b;
    }
    a
}

/// Blob layout: nonce (12) ‖ AES-256-GCM ciphertext of the postcard record ‖ tag (16).
fn seal_record<T: Serialize, R: CryptoRng + ?Sized>(
    value: &T,
    device_key: &DeviceKey,
    peer: &UserId,
    direction: Direction,
    rng: &mut R,
) -> Result<SessionBlob, Error> {
    let mut plain = Zeroizing::new([0u8; MAX_RECORD]);
    let body = postcard::to_slice(value, plain.as_mut_slice()).map_err(|_| Error::BufferTooSmall)?;
    let mut n = [0u8; AEAD_NONCE];
    rng.fill_bytes(&mut n);
    let tag = device_key
        .cipher()
        .encrypt_inout_detached(&Nonce::from(n), &session_aad(peer, direction), body.into())
        .map_err(|_| Error::BufferTooSmall)?;
    let mut blob = SessionBlob::new();
    blob.extend_from_slice(&n).map_err(|_| Error::BufferTooSmall)?;
    blob.extend_from_slice(body).map_err(|_| Error::BufferTooSmall)?;
    blob.extend_from_slice(&tag).map_err(|_| Error::BufferTooSmall)?;
    Ok(blob)
}

fn open_record<T: DeserializeOwned>(
    blob: &[u8],
    device_key: &DeviceKey,
    peer: &UserId,
    direction: Direction,
) -> Result<T, Error> {
    if blob.len() < SEAL_OVERHEAD || blob.len() > MAX_SESSION_BLOB {
        return Err(Error::SealBroken);
    }
    let (nonce, rest) = blob.split_first_chunk::<AEAD_NONCE>().ok_or(Error::SealBroken)?;
    let (ct, tag) = rest.split_last_chunk::<AEAD_TAG>().ok_or(Error::SealBroken)?;
    let mut plain = Zeroizing::new([0u8; MAX_RECORD]);
    let body = plain.get_mut(..ct.len()).ok_or(Error::SealBroken)?;
    body.copy_from_slice(ct);
    let nonce = *nonce;
    let tag = Tag::try_from(tag.as_slice()).map_err(|_| Error::SealBroken)?;
    device_key
        .cipher()
        .decrypt_inout_detached(&Nonce::from(nonce), &session_aad(peer, direction), body.into(), &tag)
        .map_err(|_| Error::SealBroken)?;
    match postcard::take_from_bytes::<T>(body) {
        Ok((value, [])) => Ok(value),
        _ => Err(Error::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const A: UserId = UserId([0xa1; 16]);
    const B: UserId = UserId([0xb2; 16]);
    const T: Transcript = [0x5e; 32];

    /// One message as the wire would carry it.
    #[derive(Clone, Debug)]
    struct Msg {
        counter: u32,
        nonce: NonceBytes,
        body: heapless::Vec<u8, 64>,
        tag: TagBytes,
    }

    fn pair(coin: KeyId, tier: Tier, limit: u32) -> (SendChain, RecvChain) {
        let ss = SharedSecret([7u8; 32]);
        (SendChain::new(&ss, &A, &B, coin, tier, limit, &T), RecvChain::new(&ss, &A, &B, coin, tier, &T))
    }

    fn send(s: &mut SendChain, text: &[u8]) -> Msg {
        let mut body = heapless::Vec::from_slice(text).unwrap();
        // Distinct per message, as a random nonce would be.
        let mut nonce = [0x11; 12];
        nonce[..4].copy_from_slice(&s.counter().to_be_bytes());
        let (counter, tag) = s.encrypt(b"aad", &nonce, &mut body).unwrap();
        Msg { counter, nonce, body, tag }
    }

    fn recv_with(r: &mut RecvSession, max: u32, coin: &KeyId, m: &Msg) -> Result<heapless::Vec<u8, 64>, Error> {
        let mut buf = m.body.clone();
        r.decrypt(max, coin, m.counter, &m.nonce, b"aad", &mut buf, &m.tag)?;
        Ok(buf)
    }

    fn recv(r: &mut RecvSession, coin: &KeyId, m: &Msg) -> Result<(), Error> {
        recv_with(r, 32, coin, m).map(|_| ())
    }

    #[test]
    fn both_sides_derive_the_same_keys_and_directions_differ() {
        let coin = KeyId([1; 16]);
        let (mut s, r) = pair(coin, Tier::Silver, 10);
        let mut session = RecvSession::new(A, r);
        for i in 0..10u32 {
            let m = send(&mut s, &i.to_be_bytes());
            assert_eq!(m.counter, i);
            assert_eq!(&recv_with(&mut session, 32, &coin, &m).unwrap()[..], &i.to_be_bytes());
        }
        assert!(s.is_exhausted());
        assert_eq!(s.encrypt(b"", &[0; 12], &mut [0u8; 4]), Err(Error::ChainExhausted { limit: 10 }));
        // The chain the other way round uses another root, and so does another transcript.
        let ss = SharedSecret([7u8; 32]);
        let back = SendChain::new(&ss, &B, &A, coin, Tier::Silver, 10, &T);
        assert_ne!(back.chain_key, pair(coin, Tier::Silver, 10).0.chain_key);
        let other = SendChain::new(&ss, &A, &B, coin, Tier::Silver, 10, &[0; 32]);
        assert_ne!(other.chain_key, pair(coin, Tier::Silver, 10).0.chain_key);
        // A policy cannot raise the protocol's limit.
        assert_eq!(SendChain::new(&ss, &A, &B, coin, Tier::Bronze, 50, &T).limit(), 5);
    }

    #[test]
    fn derivation_matches_the_spec() {
        let coin = KeyId([1; 16]);
        let (mut s, _) = pair(coin, Tier::Gold, 25);
        let mut info = [0u8; 81];
        info[..16].copy_from_slice(A.as_bytes());
        info[16..32].copy_from_slice(B.as_bytes());
        info[32..48].copy_from_slice(coin.as_bytes());
        info[48] = 1;
        info[49..].copy_from_slice(&T);
        let mut ck = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"AQM-ratchet-v2"), &[7u8; 32]).expand(&info, &mut ck).unwrap();
        let hmac = |k: &[u8; 32], label: u8| -> [u8; 32] {
            let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(k).unwrap();
            m.update(&[label]);
            m.finalize().into_bytes().into()
        };
        for counter in 0..3u32 {
            let mk = hmac(&ck, 1);
            let mut expect = *b"spec message";
            let n = [counter as u8 + 0x40; 12];
            let tag = Aes256Gcm::new(&mk.into())
                .encrypt_inout_detached(&Nonce::from(n), b"hdr", (&mut expect[..]).into())
                .unwrap();
            let mut got = *b"spec message";
            let (c, got_tag) = s.encrypt(b"hdr", &n, &mut got).unwrap();
            assert_eq!((c, got, &got_tag[..]), (counter, expect, &tag[..]));
            ck = hmac(&ck, 2);
        }
    }

    #[test]
    fn rolled_back_sender_reuses_no_key_nonce_pair_and_is_refused() {
        let coin = KeyId([8; 16]);
        let (mut s, r) = pair(coin, Tier::Silver, 10);
        let mut session = RecvSession::new(A, r);
        let saved = s.clone();
        let first = send(&mut s, b"attack at dawn!!");
        let mut restored = saved;
        let mut body = heapless::Vec::<u8, 64>::from_slice(b"retreat at noon!").unwrap();
        let (c, tag) = restored.encrypt(b"aad", &[0x99; 12], &mut body).unwrap();
        let second = Msg { counter: c, nonce: [0x99; 12], body, tag };
        assert_eq!(first.counter, second.counter, "the rolled-back state reuses the counter");
        // Same key, different nonces: the keystreams differ, so C1 xor C2 is not P1 xor P2.
        let x: std::vec::Vec<u8> = first.body.iter().zip(&second.body).map(|(a, b)| a ^ b).collect();
        let p: std::vec::Vec<u8> = b"attack at dawn!!".iter().zip(b"retreat at noon!").map(|(a, b)| a ^ b).collect();
        assert_ne!(x, p);
        recv(&mut session, &coin, &first).unwrap();
        let before = session.clone();
        assert_eq!(recv(&mut session, &coin, &second), Err(Error::Replay));
        assert_eq!(session, before);
    }

    #[test]
    fn counters_past_the_protocol_limit_are_refused() {
        let coin = KeyId([6; 16]);
        let ss = SharedSecret([7u8; 32]);
        // A sender ignoring the limit (its own chain state forged to a high limit).
        let mut s = SendChain::new(&ss, &A, &B, coin, Tier::Bronze, 5, &T);
        s.limit = 100;
        let msgs: std::vec::Vec<Msg> = (0..7).map(|i| send(&mut s, &[i])).collect();
        let mut session = RecvSession::new(A, RecvChain::new(&ss, &A, &B, coin, Tier::Bronze, &T));
        for m in &msgs[..5] {
            recv(&mut session, &coin, m).unwrap();
        }
        let before = session.clone();
        assert_eq!(recv(&mut session, &coin, &msgs[5]), Err(Error::CounterPastLimit { limit: 5 }));
        assert_eq!(recv(&mut session, &coin, &msgs[6]), Err(Error::CounterPastLimit { limit: 5 }));
        assert_eq!(session, before);
    }

    #[test]
    fn out_of_order_replay_and_bounds() {
        let coin = KeyId([2; 16]);
        let (mut s, r) = pair(coin, Tier::Gold, 25);
        let mut session = RecvSession::new(A, r);
        let msgs: std::vec::Vec<Msg> = (0..25).map(|i| send(&mut s, &[i as u8; 3])).collect();
        recv(&mut session, &coin, &msgs[3]).unwrap();
        assert_eq!(session.skipped_len(), 3);
        recv(&mut session, &coin, &msgs[1]).unwrap();
        assert_eq!(recv(&mut session, &coin, &msgs[1]), Err(Error::Replay));
        assert_eq!(recv(&mut session, &coin, &msgs[3]), Err(Error::Replay));
        // With a bound of 8 skipped keys, 4 + 9 = 13 is too far ahead of the next counter 4.
        let before = session.clone();
        assert_eq!(recv_with(&mut session, 8, &coin, &msgs[13]).map(|_| ()), Err(Error::TooFarAhead));
        assert_eq!(session, before);
        // A bad tag, a wrong AAD or a wrong nonce changes nothing.
        let mut bad = msgs[5].clone();
        bad.tag[0] ^= 1;
        assert_eq!(recv(&mut session, &coin, &bad), Err(Error::DecryptFailed));
        let mut bad = msgs[5].clone();
        bad.nonce[11] ^= 1;
        assert_eq!(recv(&mut session, &coin, &bad), Err(Error::DecryptFailed));
        assert_eq!(session, before);
        let m = &msgs[5];
        let mut wrong_aad = m.body.clone();
        assert_eq!(
            session.decrypt(32, &coin, 5, &m.nonce, b"other", &mut wrong_aad, &m.tag),
            Err(Error::DecryptFailed)
        );
        assert_eq!(session, before);
        assert_eq!(recv(&mut session, &KeyId([9; 16]), &msgs[5]), Err(Error::NoSession));
        recv(&mut session, &coin, &msgs[0]).unwrap();
        recv(&mut session, &coin, &msgs[2]).unwrap();
        assert_eq!(session.skipped_len(), 0);
    }

    #[test]
    fn previous_chain_still_opens_after_rekey() {
        let (c1, c2, c3) = (KeyId([1; 16]), KeyId([2; 16]), KeyId([3; 16]));
        let (mut s1, r1) = pair(c1, Tier::Bronze, 5);
        let (mut s2, r2) = pair(c2, Tier::Bronze, 5);
        let (_, r3) = pair(c3, Tier::Bronze, 5);
        let m1: std::vec::Vec<Msg> = (0..5).map(|i| send(&mut s1, &[i; 2])).collect();
        let mut session = RecvSession::new(A, r1);
        recv(&mut session, &c1, &m1[2]).unwrap();
        session.rekey(r2.clone()).unwrap();
        assert_eq!(session.rekey(r2), Err(Error::Replay));
        let m2 = send(&mut s2, b"x");
        recv(&mut session, &c2, &m2).unwrap();
        recv(&mut session, &c1, &m1[0]).unwrap();
        recv(&mut session, &c1, &m1[4]).unwrap();
        assert_eq!(session.chain_tier(&c1), Some(Tier::Bronze));
        session.rekey(r3).unwrap();
        // c1 is forgotten with its skipped key for message 1.
        assert_eq!(recv(&mut session, &c1, &m1[1]), Err(Error::NoSession));
        assert!(session.skipped.0.iter().all(|k| k.coin != c1));
        assert_eq!(session.chain_tier(&c1), None);
    }

    #[test]
    fn pool_evicts_oldest_when_bound_is_small() {
        let coin = KeyId([4; 16]);
        let (mut s, r) = pair(coin, Tier::Gold, 25);
        let mut session = RecvSession::new(A, r);
        let msgs: std::vec::Vec<Msg> = (0..25).map(|i| send(&mut s, &[i as u8])).collect();
        recv_with(&mut session, 2, &coin, &msgs[2]).unwrap();
        assert_eq!(recv_with(&mut session, 2, &coin, &msgs[6]).map(|_| ()), Err(Error::TooFarAhead));
        recv_with(&mut session, 2, &coin, &msgs[4]).unwrap();
        // Skipped 0, 1, then 3: 0 was evicted.
        assert_eq!(session.skipped_len(), 2);
        assert_eq!(recv(&mut session, &coin, &msgs[0]), Err(Error::Replay));
        recv(&mut session, &coin, &msgs[1]).unwrap();
        recv(&mut session, &coin, &msgs[3]).unwrap();
    }

    #[test]
    fn sealed_sessions_bind_peer_direction_and_device() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
        let dk = DeviceKey::random(&mut rng);
        let (s, r) = pair(KeyId([5; 16]), Tier::Gold, 25);
        let blob = s.seal(&dk, &mut rng).unwrap();
        assert_eq!(SendChain::open(&blob, &dk, &B).unwrap(), s);
        assert_eq!(SendChain::open(&blob, &dk, &A), Err(Error::SealBroken));
        assert_eq!(RecvSession::open(&blob, &dk, &B), Err(Error::SealBroken));
        assert_eq!(SendChain::open(&blob, &DeviceKey::random(&mut rng), &B), Err(Error::SealBroken));
        let mut bad = blob.clone();
        bad[20] ^= 1;
        assert_eq!(SendChain::open(&bad, &dk, &B), Err(Error::SealBroken));
        assert_eq!(SendChain::open(&blob[..10], &dk, &B), Err(Error::SealBroken));
        // No key bytes in the clear.
        assert!(!blob.windows(32).any(|w| w == s.chain_key.0));
        let session = RecvSession::new(A, r);
        let blob = session.seal(&dk, &mut rng).unwrap();
        assert_eq!(RecvSession::open(&blob, &dk, &A).unwrap(), session);
    }

    #[test]
    fn worst_case_session_fits_the_blob() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(6);
        let dk = DeviceKey::random(&mut rng);
        let big =
            |c: u8| RecvChain { coin: KeyId([c; 16]), tier: Tier::Gold, chain_key: Key32([0xff; 32]), next: u32::MAX };
        let mut session = RecvSession::new(UserId([0xff; 16]), big(1));
        session.previous = Some(big(2));
        for i in 0..MAX_SKIPPED {
            let coin = KeyId([1 + (i % 2) as u8; 16]);
            session.skipped.0.push(Skipped { coin, counter: u32::MAX - i as u32, key: Key32([0xff; 32]) }).unwrap();
        }
        let blob = session.seal(&dk, &mut rng).unwrap();
        assert!(blob.len() <= MAX_SESSION_BLOB);
        assert_eq!(RecvSession::open(&blob, &dk, &UserId([0xff; 16])).unwrap(), session);
    }
}
