//! [`AqmDevice`]: one user's device — its store, identity and device key — as one object an app
//! holds, on the core's [`Messenger`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use aqm_core::coin::{self, PublicCoin};
use aqm_core::crypto::{DeviceKey, Identity};
use aqm_core::inventory::{ContactMeta, StorageReport};
use aqm_core::messaging::{Messenger, SendOptions, SendOutcome, Sent};
use aqm_core::pins::{SafetyNumber, Trust};
use aqm_core::store::{DirectoryStore, InventoryStore, PinStore, VaultStore};
use aqm_core::{Tier, UnixSeconds, UserId, vault};
use aqm_server::client::HttpDirectory;

use crate::backend::{Backend, with_store};
use crate::types::*;
use crate::{AqmError, codec, identity};

/// Length of a device key.
pub const DEVICE_KEY_LEN: usize = 32;

/// One user's AQM device: its store (redb file or Redis), its identity (sealed in the store under
/// the device key) and the device key itself (the app keeps it in the OS keystore).
///
/// `Send + Sync`: share one `AqmDevice` between threads. Every call is one or a few atomic steps
/// of the store; concurrent sends to one contact never reuse a counter and concurrent receives
/// never accept a message twice (the core's compare-and-swap on sessions).
#[derive(uniffi::Object)]
pub struct AqmDevice {
    backend: Backend,
    identity: Identity,
    device_key: DeviceKey,
    /// Public halves minted by this object and not yet published (see [`AqmDevice::publish`]).
    outbox: Mutex<Vec<PublicCoin>>,
    /// One client per server URL, with the tokens it acts under.
    servers: Mutex<HashMap<String, Arc<HttpDirectory>>>,
    /// Publishes take turns, so two threads publishing at once never both find a last-resort
    /// coin due and mint two (the directory would keep one; the other would sit in the vault).
    publish_turn: Mutex<()>,
    /// Sends to one contact take turns (striped by contact id). The store's compare-and-swap
    /// alone keeps them correct, but a racer that loses still spent an encapsulation and, while it
    /// held the last cached coin, made the other threads answer `NeedCoin`; in one process, taking
    /// turns costs nothing the CAS would not have serialized anyway.
    send_turns: [Mutex<()>; SEND_STRIPES],
}

/// Stripes of [`AqmDevice::send_turns`]: sends to contacts on different stripes run in parallel.
const SEND_STRIPES: usize = 16;

impl std::fmt::Debug for AqmDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AqmDevice").field("user", &self.identity.user_id()).field("backend", &self.backend).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The system clock in Unix seconds (the core never reads a clock; this crate does, once per
/// call that needs it).
pub fn unix_now() -> UnixSeconds {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn device_key_of(bytes: &[u8]) -> Result<DeviceKey, AqmError> {
    let key: [u8; DEVICE_KEY_LEN] = bytes.try_into().map_err(|_| AqmError::BadDeviceKey {
        got: bytes.len() as u64,
        detail: format!(
            "the device key must be {DEVICE_KEY_LEN} bytes, got {}: generate 32 random bytes once and keep them in the OS keystore",
            bytes.len()
        ),
    })?;
    Ok(DeviceKey::from_bytes(key))
}

fn user_id(bytes: &[u8]) -> Result<UserId, AqmError> {
    Ok(UserId::from_slice(bytes)?)
}

fn sent(s: Sent) -> Result<AqmSent, AqmError> {
    Ok(AqmSent {
        envelope: s.envelope.to_vec()?,
        tier: s.tier.into(),
        desired: s.desired.into(),
        fell_back: s.fell_back,
        rekeyed: s.rekeyed,
        post_quantum: s.post_quantum,
        remaining: s.remaining,
        wasted: s.wasted,
        last_resort: s.last_resort,
    })
}

fn tier_of(t: AqmTier) -> Tier {
    t.into()
}

impl AqmDevice {
    /// Open (or create) the device whose store `store_url` names, with the caller's 32-byte
    /// `device_key`. On first open a fresh identity is generated and stored sealed under the
    /// key; later opens need the same key (another → `SealBroken`).
    pub fn open_device(store_url: &str, device_key: &[u8]) -> Result<AqmDevice, AqmError> {
        let device_key = device_key_of(device_key)?;
        let backend = Backend::open(store_url, aqm_core::Policy::DEFAULT, &device_key)?;
        let identity = backend.load_or_create_identity(&device_key)?;
        Ok(Self::with_identity(backend, identity, device_key))
    }

    /// Open the store `store_url` as the device whose sealed identity `sealed_identity` is (from
    /// an earlier device's `identity()`, sealed under the same `device_key`): a new phone
    /// restoring its user from a backup. The store must be new or already hold that identity
    /// (another → `IdMismatch`); a key that does not open the backup → `SealBroken`. Only the
    /// identity comes back: the old device's vault secrets are not in the backup, so coins it
    /// published can no longer be opened — mint and publish fresh ones.
    pub fn restore_device(store_url: &str, device_key: &[u8], sealed_identity: &[u8]) -> Result<AqmDevice, AqmError> {
        let key = device_key_of(device_key)?;
        let wanted = identity::open(sealed_identity, &key)?;
        let backend = Backend::open(store_url, aqm_core::Policy::DEFAULT, &key)?;
        let identity = backend.load_or_store_identity(sealed_identity.to_vec(), &key)?;
        if identity.user_id() != wanted.user_id() {
            return Err(AqmError::IdMismatch {
                detail: "this store already belongs to another identity: restore into a new store".into(),
            });
        }
        Ok(Self::with_identity(backend, identity, key))
    }

    fn with_identity(backend: Backend, identity: Identity, device_key: DeviceKey) -> AqmDevice {
        AqmDevice {
            backend,
            identity,
            device_key,
            outbox: Mutex::new(Vec::new()),
            servers: Mutex::new(HashMap::new()),
            publish_turn: Mutex::new(()),
            send_turns: std::array::from_fn(|_| Mutex::new(())),
        }
    }

    fn directory(&self, server_url: &str) -> Result<Arc<HttpDirectory>, AqmError> {
        let mut servers = lock(&self.servers);
        if let Some(d) = servers.get(server_url) {
            return Ok(d.clone());
        }
        let d = Arc::new(HttpDirectory::new(server_url, self.backend.policy().clone())?);
        servers.insert(server_url.to_owned(), d.clone());
        Ok(d)
    }

    fn has_token(&self, server_url: &str) -> bool {
        // HttpDirectory keeps its tokens private; a claim without one is refused as
        // ServerUnauthorized, which is the answer an app needs anyway.
        lock(&self.servers).contains_key(server_url)
    }
}

#[uniffi::export]
impl AqmDevice {
    /// Open (or create) the device whose store `store_url` names (`redb:///path/device.redb`
    /// or `redis://host:port/db?prefix=NAME`), with the caller's 32-byte `device_key`.
    #[uniffi::constructor]
    pub fn open(store_url: String, device_key: Vec<u8>) -> Result<Arc<AqmDevice>, AqmError> {
        AqmDevice::open_device(&store_url, &device_key).map(Arc::new)
    }

    /// Open the store `store_url` as the user whose sealed identity (from `identity()` on the old
    /// device) is `sealed_identity`, under the same `device_key`. Only the identity comes back;
    /// mint and publish fresh coins.
    #[uniffi::constructor]
    pub fn restore(
        store_url: String,
        device_key: Vec<u8>,
        sealed_identity: Vec<u8>,
    ) -> Result<Arc<AqmDevice>, AqmError> {
        AqmDevice::restore_device(&store_url, &device_key, &sealed_identity).map(Arc::new)
    }

    /// This user's id (16 bytes).
    pub fn user_id(&self) -> Vec<u8> {
        self.identity.user_id().as_bytes().to_vec()
    }

    /// The identity's secrets, sealed under the device key (110 bytes, [`crate::identity`]):
    /// for a backup; the only form in which they ever leave the library.
    pub fn identity(&self) -> Result<Vec<u8>, AqmError> {
        identity::seal(&self.identity, &self.device_key)
    }

    /// The public identity, to hand to contacts (QR code, invitation): they pass it to
    /// `add_contact`.
    pub fn public_identity(&self) -> Result<Vec<u8>, AqmError> {
        codec::encode_public_identity(self.identity.public())
    }

    /// The safety number of this user and `contact` (30 digits in six groups), to compare out of
    /// band. The contact's identity must be pinned.
    pub fn safety_number(&self, contact: Vec<u8>) -> Result<String, AqmError> {
        let contact = user_id(&contact)?;
        let pinned = with_store!(&self.backend, |s| s.pinned(&contact).map_err(AqmError::from))?
            .ok_or_else(|| AqmError::from(aqm_core::Error::IdentityNotPinned))?;
        Ok(SafetyNumber::of(self.identity.public(), &pinned.identity).to_string())
    }

    /// Mint `gold` + `silver` + `bronze` coins: their sealed private halves go to the vault, and
    /// the signed public halves are returned (encoded) for publishing — and kept until
    /// [`AqmDevice::publish`] uploads them.
    pub fn mint(&self, gold: u32, silver: u32, bronze: u32) -> Result<Vec<Vec<u8>>, AqmError> {
        let now = unix_now();
        let mut rng = rand::rng();
        let mut out = Vec::new();
        let mut public = Vec::new();
        for (tier, n) in [(Tier::Gold, gold), (Tier::Silver, silver), (Tier::Bronze, bronze)] {
            for _ in 0..n {
                let minted = coin::mint(&self.identity, tier, &self.device_key, now, &mut rng)?;
                with_store!(&self.backend, |s| s.put(&minted.vault).map_err(AqmError::from))?;
                out.push(codec::encode_coin(&minted.public)?);
                public.push(minted.public);
            }
        }
        lock(&self.outbox).extend(public);
        Ok(out)
    }

    /// Add a contact from its id (16 bytes) and public identity (from its `public_identity()`):
    /// pins the identity (a different one later is `IdentityChanged`) and registers the contact
    /// at `priority`. Returns false if it was registered already (its priority is unchanged;
    /// use `set_priority`).
    pub fn add_contact(&self, id: Vec<u8>, public_identity: Vec<u8>, priority: AqmPriority) -> Result<bool, AqmError> {
        let id = user_id(&id)?;
        let identity = codec::decode_public_identity(&public_identity)?;
        if identity.user_id != id {
            return Err(AqmError::IdMismatch {
                detail: "the public identity belongs to another user id than the contact id given: check the contact exchange".into(),
            });
        }
        let meta = ContactMeta::new(id, priority.into(), "", unix_now())?;
        with_store!(&self.backend, |s| {
            s.pin_identity(&identity, Trust::Exchanged).map_err(AqmError::from)?;
            s.register_contact(&meta).map_err(AqmError::from)
        })
    }

    /// Change a contact's priority; a downgrade evicts the newest coins above the new caps.
    /// Returns how many were evicted.
    pub fn set_priority(&self, contact: Vec<u8>, priority: AqmPriority) -> Result<u32, AqmError> {
        let contact = user_id(&contact)?;
        with_store!(&self.backend, |s| s.set_priority(&contact, priority.into()).map_err(AqmError::from))
    }

    /// Cache coins of `contact` handed over directly (encoded public coins): every coin is
    /// decoded and verified against the contact's pinned identity and its freshness first; one
    /// bad coin refuses the whole batch (`BadSignature`, `WrongOwner`, `CoinExpired`,
    /// `Malformed`) and nothing is cached. Returns how many were cached (the contact's caps
    /// apply: over them → `BudgetExceeded`, the coins before it stay cached).
    pub fn cache_coins(&self, contact: Vec<u8>, coins: Vec<Vec<u8>>) -> Result<u32, AqmError> {
        let contact = user_id(&contact)?;
        let now = unix_now();
        with_store!(&self.backend, |s| {
            let pinned = s.pinned(&contact)?.ok_or(aqm_core::Error::IdentityNotPinned)?;
            let decoded = coins.iter().map(|c| codec::decode_coin(c)).collect::<Result<Vec<_>, _>>()?;
            for c in &decoded {
                c.verify_fresh(&pinned.identity, s.policy(), now)?;
            }
            let mut stored = 0;
            for c in &decoded {
                s.store_coin(&contact, c, now)?;
                stored += 1;
            }
            Ok::<u32, AqmError>(stored)
        })
    }

    /// Encrypt `plaintext` to `contact` in device context `context`: on the open chain, or
    /// with the oldest cached coin of the tier the context and priority allow (falling back to
    /// cheaper tiers, but never from GOLD/SILVER to BRONZE unless `allow_classical`). No coin →
    /// `NeedCoin` (nothing sent): get one with `fetch_coin` and call `send_with_coin`.
    #[uniffi::method(default(allow_classical = false))]
    pub fn send(
        &self,
        contact: Vec<u8>,
        plaintext: Vec<u8>,
        context: AqmContext,
        allow_classical: bool,
    ) -> Result<AqmSendOutcome, AqmError> {
        self.send_inner(contact, plaintext, context, allow_classical, false)
    }

    /// Like `send`, but always opens a new chain with a cached coin, even when the open chain
    /// has messages left: e.g. after the device context changed and the app wants the tier it
    /// now affords. No coin → `NeedCoin`.
    #[uniffi::method(default(allow_classical = false))]
    pub fn send_rekeyed(
        &self,
        contact: Vec<u8>,
        plaintext: Vec<u8>,
        context: AqmContext,
        allow_classical: bool,
    ) -> Result<AqmSendOutcome, AqmError> {
        self.send_inner(contact, plaintext, context, allow_classical, true)
    }

    /// Open a new chain to `contact` with `coin` (an encoded public coin, e.g. from
    /// `fetch_coin`) and send `plaintext` as its first message. The coin is verified against the
    /// contact's pinned identity first.
    pub fn send_with_coin(&self, contact: Vec<u8>, coin: Vec<u8>, plaintext: Vec<u8>) -> Result<AqmSent, AqmError> {
        let contact = user_id(&contact)?;
        let coin = codec::decode_coin(&coin)?;
        let _turn = self.send_turn(&contact);
        let s = with_store!(&self.backend, |s| Messenger::new(s, &self.identity, &self.device_key)
            .send_with_coin(&contact, &coin, coin.tier, &plaintext, unix_now(), &mut rand::rng())
            .map_err(AqmError::from))?;
        sent(s)
    }

    /// Decrypt an envelope. The first message of a chain burns our coin in the same atomic step
    /// that saves the session: opening it again is `KeyAlreadyBurned`. Any refusal changes
    /// nothing.
    pub fn receive(&self, envelope: Vec<u8>) -> Result<AqmReceived, AqmError> {
        let r = with_store!(&self.backend, |s| Messenger::new(s, &self.identity, &self.device_key)
            .receive(&envelope, unix_now(), &mut rand::rng())
            .map_err(AqmError::from))?;
        Ok(AqmReceived {
            sender: r.from.as_bytes().to_vec(),
            plaintext: r.plaintext.to_vec(),
            tier: r.tier.into(),
            post_quantum: r.post_quantum,
            unverified: r.unverified(),
            rekeyed: r.rekeyed,
            last_resort: r.last_resort,
            counter: r.counter,
        })
    }

    /// Cached coins of `contact` per tier (zeros if unregistered).
    pub fn inventory(&self, contact: Vec<u8>) -> Result<AqmTierCounts, AqmError> {
        let contact = user_id(&contact)?;
        with_store!(&self.backend, |s| s.counts(&contact).map(Into::into).map_err(AqmError::from))
    }

    /// The vault's counters.
    pub fn vault_stats(&self) -> Result<AqmVaultStats, AqmError> {
        let st = with_store!(&self.backend, |s| VaultStore::stats(s).map_err(AqmError::from))?;
        Ok(AqmVaultStats { active: st.active.into(), total_burned: st.total_burned, total_expired: st.total_expired })
    }

    /// Bytes of cached coins against the device's 64 KiB budget.
    pub fn storage_report(&self) -> Result<AqmStorageReport, AqmError> {
        let mut report = StorageReport::new(self.backend.policy());
        with_store!(&self.backend, |s| s
            .for_each_contact(&mut |_, held| report.add_contact(&held))
            .map_err(AqmError::from))?;
        Ok(AqmStorageReport {
            total_bytes: report.total_bytes,
            stored_bytes: report.stored_bytes,
            budget_bytes: report.budget_bytes,
            contacts: report.contacts,
            utilization_pct: report.utilization_pct(),
            over_budget: report.over_budget(),
        })
    }

    /// Delete vault secrets past their life and burned ones past their grace, at `now` (Unix
    /// seconds).
    pub fn purge(&self, now: u64) -> Result<AqmPurgeReport, AqmError> {
        let r = with_store!(&self.backend, |s| VaultStore::purge(s, now).map_err(AqmError::from))?;
        Ok(AqmPurgeReport { expired: r.expired, deleted_burned: r.deleted_burned })
    }

    /// Drop the coins of contacts inactive at `now` (30 days by default) and downgrade them to
    /// STRANGER; with `dry_run`, only report what would go.
    #[uniffi::method(default(dry_run = false))]
    pub fn collect_garbage(&self, now: u64, dry_run: bool) -> Result<AqmGcReport, AqmError> {
        let r = with_store!(&self.backend, |s| s.collect_garbage(now, dry_run).map_err(AqmError::from))?;
        Ok(AqmGcReport {
            contacts_cleaned: r.contacts_cleaned,
            keys_deleted: r.keys_deleted,
            bytes_freed: r.bytes_freed,
        })
    }

    /// Register this identity with the coin directory at `server_url` (proof of possession of
    /// both keys) and return its token, which the server shows only once: keep it in the OS
    /// keystore. The device uses it for later calls to that server.
    pub fn register(&self, server_url: String) -> Result<String, AqmError> {
        let dir = self.directory(&server_url)?;
        let proof = self.identity.registration_proof(&mut rand::rng())?;
        let token = dir.block_on(dir.client().register(self.identity.public(), &proof))?;
        dir.add_token(self.identity.user_id(), token.clone());
        Ok(token)
    }

    /// Upload the coins minted by this object since the last publish to the directory at
    /// `server_url`, with this user's `token`; the device remembers the token for that server
    /// (for `prefetch` and `fetch_coin`). Returns how many coins were new to the server. A
    /// failed upload keeps the coins for the next publish.
    ///
    /// It also keeps one last-resort coin per published tier (a tier of the coins uploaded now,
    /// or one this device already keeps a last-resort coin of): when the core's
    /// `vault::last_resort_due` says the tier's newest one is missing or due for renewal, a new
    /// one is minted, stored in the vault and uploaded with the one-time coins, so a contact who
    /// finds the directory's one-time coins of the tier gone still reaches this user (redb and
    /// Redis stores alike hold them).
    pub fn publish(&self, server_url: String, token: String) -> Result<u32, AqmError> {
        let dir = self.directory(&server_url)?;
        dir.add_token(self.identity.user_id(), token);
        let _turn = lock(&self.publish_turn);
        let now = unix_now();
        let queued: Vec<PublicCoin> = lock(&self.outbox).clone();
        let coins = [queued.clone(), self.keep_last_resort(&queued, now)?].concat();
        if coins.is_empty() {
            return Ok(0);
        }
        let inserted = dir.upload(&self.identity.user_id(), &coins, now)?;
        lock(&self.outbox).retain(|c| !coins.contains(c));
        Ok(inserted)
    }

    /// Upload `coins` (encoded public coins as `mint` returned them) to the directory at
    /// `server_url` with this user's `token`, and remember the token for that server. For an app
    /// that may exit between `mint` and `publish`: keep what `mint` returned until this succeeds
    /// (the upload is idempotent, so calling it again after a lost reply is safe). Coins of
    /// another owner are refused (`WrongOwner`) before anything is sent. As `publish`, it keeps
    /// one last-resort coin per published tier (minted when due and uploaded with `coins`).
    /// Returns how many were new to the server; they also leave this object's queue for
    /// `publish`.
    pub fn publish_coins(&self, server_url: String, token: String, coins: Vec<Vec<u8>>) -> Result<u32, AqmError> {
        let coins: Vec<PublicCoin> = coins.iter().map(|c| codec::decode_coin(c)).collect::<Result<_, _>>()?;
        let me = self.identity.user_id();
        if coins.iter().any(|c| c.owner != me) {
            return Err(aqm_core::Error::WrongOwner.into());
        }
        let dir = self.directory(&server_url)?;
        dir.add_token(me, token);
        let _turn = lock(&self.publish_turn);
        let now = unix_now();
        let coins = [coins.clone(), self.keep_last_resort(&coins, now)?].concat();
        if coins.is_empty() {
            return Ok(0);
        }
        let inserted = dir.upload(&me, &coins, now)?;
        lock(&self.outbox).retain(|c| !coins.contains(c));
        Ok(inserted)
    }

    /// Top up `contact`'s cached coins from the directory at `server_url` up to its priority's
    /// caps, every coin verified against the contact's pinned identity. Needs this user's token
    /// for that server (`register` or `publish` first).
    pub fn prefetch(&self, server_url: String, contact: Vec<u8>) -> Result<AqmPrefetchReport, AqmError> {
        let contact = user_id(&contact)?;
        self.require_token(&server_url)?;
        let dir = self.directory(&server_url)?;
        let idempotency: [u8; 16] = rand::random();
        let r = with_store!(&self.backend, |s| Messenger::new(s, &self.identity, &self.device_key)
            .prefetch(&*dir, &contact, Some(idempotency), unix_now())
            .map_err(AqmError::from))?;
        Ok(AqmPrefetchReport {
            requested: r.requested.into(),
            stored: r.stored.into(),
            rejected: r.rejected,
            last_resort: r.last_resort,
        })
    }

    /// Fetch one coin of `contact` on demand (after `send` answered `NeedCoin`), from `desired`
    /// down to `lowest`, verified against the pinned identity; None when the directory has none.
    /// Pass it to `send_with_coin`.
    pub fn fetch_coin(
        &self,
        server_url: String,
        contact: Vec<u8>,
        desired: AqmTier,
        lowest: AqmTier,
    ) -> Result<Option<Vec<u8>>, AqmError> {
        let contact = user_id(&contact)?;
        self.require_token(&server_url)?;
        let dir = self.directory(&server_url)?;
        let range = aqm_core::inventory::TierRange { desired: tier_of(desired), lowest: tier_of(lowest) };
        let idempotency: [u8; 16] = rand::random();
        let coin = with_store!(&self.backend, |s| Messenger::new(s, &self.identity, &self.device_key)
            .fetch_on_demand(&*dir, &contact, range, Some(idempotency), unix_now())
            .map_err(AqmError::from))?;
        coin.map(|c| codec::encode_coin(&c)).transpose()
    }

    /// Pin the identity the directory at `server_url` holds for `user` (a stranger who wrote
    /// first); messages from them are then reported `unverified`.
    pub fn pin_from_directory(&self, server_url: String, user: Vec<u8>) -> Result<(), AqmError> {
        let user = user_id(&user)?;
        let dir = self.directory(&server_url)?;
        with_store!(&self.backend, |s| Messenger::new(s, &self.identity, &self.device_key)
            .pin_from_directory(&*dir, &user)
            .map(|_| ())
            .map_err(AqmError::from))
    }
}

impl AqmDevice {
    fn send_inner(
        &self,
        contact: Vec<u8>,
        plaintext: Vec<u8>,
        context: AqmContext,
        allow_classical: bool,
        new_chain: bool,
    ) -> Result<AqmSendOutcome, AqmError> {
        let contact = user_id(&contact)?;
        let opts = SendOptions { allow_classical };
        let ctx = context.into();
        let _turn = self.send_turn(&contact);
        let outcome = with_store!(&self.backend, |s| {
            let m = Messenger::new(s, &self.identity, &self.device_key);
            let (now, rng) = (unix_now(), &mut rand::rng());
            if new_chain {
                m.send_rekeyed(&contact, &ctx, &plaintext, opts, now, rng)
            } else {
                m.send(&contact, &ctx, &plaintext, opts, now, rng)
            }
            .map_err(AqmError::from)
        })?;
        Ok(match outcome {
            SendOutcome::Sent(s) => AqmSendOutcome::Sent { sent: sent(s)? },
            SendOutcome::NeedCoin { range, wasted } => {
                AqmSendOutcome::NeedCoin { desired: range.desired.into(), lowest: range.lowest.into(), wasted }
            }
        })
    }

    /// This contact's turn to send; held for the whole send.
    fn send_turn(&self, contact: &UserId) -> MutexGuard<'_, ()> {
        // User ids are random (or hashes), so one byte spreads contacts evenly over the stripes.
        lock(&self.send_turns[usize::from(contact.as_bytes()[0]) % SEND_STRIPES])
    }

    /// The last-resort coins a publish of `uploading` must add at `now`: for each published tier
    /// (one of `uploading`'s, or one the vault keeps a live last-resort coin of) whose newest
    /// last-resort coin is missing or due (`vault::last_resort_due`), one minted with
    /// `coin::mint_last_resort` and stored in the vault. Each is queued in the outbox as soon as
    /// it is stored, so a failed upload (or a failure at a later tier) keeps it for the next
    /// publish, and the vault finding it live then mints no second one.
    fn keep_last_resort(&self, uploading: &[PublicCoin], now: UnixSeconds) -> Result<Vec<PublicCoin>, AqmError> {
        let policy = self.backend.policy();
        let mut rng = rand::rng();
        let mut minted_now = Vec::new();
        for tier in Tier::ALL {
            let newest =
                with_store!(&self.backend, |s| vault::newest_last_resort(s, tier, now).map_err(AqmError::from))?;
            let published = newest.is_some() || uploading.iter().any(|c| c.tier == tier);
            if !published || !vault::last_resort_due(policy, newest.map(|e| e.expires_at), now) {
                continue;
            }
            let minted = coin::mint_last_resort(&self.identity, tier, &self.device_key, now, &mut rng)?;
            with_store!(&self.backend, |s| s.put(&minted.vault).map_err(AqmError::from))?;
            lock(&self.outbox).push(minted.public.clone());
            minted_now.push(minted.public);
        }
        Ok(minted_now)
    }

    fn require_token(&self, server_url: &str) -> Result<(), AqmError> {
        if self.has_token(server_url) {
            Ok(())
        } else {
            Err(AqmError::ServerUnauthorized {
                detail: format!(
                    "no token for {server_url} yet: call register() once, or publish() with the stored token"
                ),
            })
        }
    }
}
