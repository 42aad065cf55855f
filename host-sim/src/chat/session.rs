//! One user's side of a chat: identity, device key, store and directory, the partner and the
//! device context, and the lifecycle of each message through the core's
//! [`Messenger`].
//!
//! Sending: context → tier range ([`Messenger::send_range`]) → the oldest cached coin of the
//! first tier that has one, or one fetched on demand ([`Messenger::fetch_on_demand`]) when the
//! core answers [`SendOutcome::NeedCoin`] → encapsulate → signed re-key → ratchet → envelope. A
//! message rides the open chain until the core re-keys it (chain limit), until the user moves to
//! a context whose tier range differs, or after `/rekey`. When a re-key leaves one of the
//! partner's tiers low in the inventory, [`Messenger::prefetch`] tops it up from the directory.
//!
//! Receiving: [`Messenger::receive`] verifies the sender's signature against the pinned identity,
//! decapsulates, decrypts, and burns the coin in the same atomic step that saves the session;
//! then the owner restocks its coins in the directory.
//!
//! Nothing here decides a rule: tiers, fallback, caps, deficits, chain limits and burns are the
//! core's answers, which this module only reports.

use aqm_core::coin;
use aqm_core::crypto::{DeviceKey, Identity, PublicIdentity};
use aqm_core::inventory::{ContactMeta, TierRange};
use aqm_core::messaging::{Messenger, PrefetchReport, SendOptions, SendOutcome, Sent};
use aqm_core::pins::{SafetyNumber, Trust};
use aqm_core::store::{DirectoryStore, InventoryStore, PinStore, SessionStore, VaultStore};
use aqm_core::vault::KeyStatus;
use aqm_core::{DeviceContext, KeyId, Policy, Priority, StoreError, Tier, TierCounts, UnixSeconds, UserId};
use rand::{CryptoRng, RngExt};

use super::error::{ChatError, Ctx};
use super::frame::{Frame, MAX_NAME};

/// The device contexts the chat's commands switch between (the prototype's three scenarios).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `/wifi`: at home on Wi-Fi, battery full.
    Wifi,
    /// `/cell`: outdoors on cellular, fair signal.
    Cell,
    /// `/underground`: weak signal.
    Underground,
}

impl Place {
    /// The device context of this place.
    pub fn context(self) -> DeviceContext {
        match self {
            Place::Wifi => DeviceContext::HOME_WIFI,
            Place::Cell => DeviceContext::OUTDOOR_CELLULAR,
            Place::Underground => DeviceContext::UNDERGROUND,
        }
    }

    /// Its name in the prompt (and its command without the slash).
    pub fn name(self) -> &'static str {
        match self {
            Place::Wifi => "wifi",
            Place::Cell => "cell",
            Place::Underground => "underground",
        }
    }
}

/// Something every device store of the chat is: vault, sessions, pins and inventory with one
/// error type (redb or Redis).
pub trait DeviceStore:
    VaultStore<Error = Self::E> + SessionStore + InventoryStore<Error = Self::E> + PinStore<Error = Self::E>
{
    /// The store's error.
    type E: StoreError;
}

impl<S, E: StoreError> DeviceStore for S
where
    S: VaultStore<Error = E> + SessionStore + InventoryStore<Error = E> + PinStore<Error = E>,
{
    type E = E;
}

/// The partner, once their hello arrived.
#[derive(Clone, Debug)]
pub struct Partner {
    /// Their user name.
    pub name: String,
    /// Their user id.
    pub id: UserId,
    /// How their identity is pinned.
    pub trust: Trust,
}

/// What meeting the partner did.
#[derive(Clone, Debug)]
pub struct Met {
    /// The partner.
    pub partner: Partner,
    /// The number both can compare out of band.
    pub safety_number: SafetyNumber,
    /// The pre-fetch of the partner's coins into the inventory.
    pub prefetch: PrefetchReport,
    /// The inventory for the partner after it.
    pub held: TierCounts,
}

/// How the coin of a re-key was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CoinSource {
    /// No new chain: the message rode the open one.
    OpenChain,
    /// Popped from the inventory (pre-fetched).
    Inventory,
    /// Claimed from the directory for this message (nothing of the range was cached).
    OnDemand,
}

/// One message sent.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The frame to publish.
    pub frame: Vec<u8>,
    /// The core's account of the send.
    pub sent: Sent,
    /// The tier the device context alone affords (before the partner's priority caps it).
    pub affordable: Tier,
    /// The range the send could use.
    pub range: TierRange,
    /// Where the coin came from.
    pub source: CoinSource,
    /// Bytes of the envelope.
    pub envelope_len: usize,
    /// The replenishment this send triggered, if a tier ran low.
    pub replenished: Option<PrefetchReport>,
    /// The inventory for the partner after the send (and any replenishment).
    pub held: TierCounts,
}

/// One message received.
#[derive(Clone, Debug)]
pub struct Incoming {
    /// The sender's name.
    pub from: String,
    /// The plaintext, as text.
    pub text: String,
    /// The chain's coin.
    pub chain: KeyId,
    /// Its tier.
    pub tier: Tier,
    /// The message's counter on its chain.
    pub counter: u32,
    /// Whether it opened a new chain; then the coin was burned.
    pub rekeyed: bool,
    /// The coin's status in the vault afterwards (BURNED after a re-key).
    pub coin_status: Option<KeyStatus>,
    /// Whether the sender is pinned from the directory only.
    pub unverified: bool,
    /// Coins minted and uploaded to keep the directory stocked.
    pub restocked: TierCounts,
}

/// What arrived on our channel.
#[derive(Clone, Debug)]
pub enum Event {
    /// The partner's hello was handled; `answer` is a hello to publish back, if one is due.
    Met(Met, Option<Vec<u8>>),
    /// A message.
    Message(Incoming),
    /// The partner quit.
    Left(String),
    /// A frame not for this chat (another user's hello on our channel): ignored.
    Ignored(String),
}

/// Coins minted at start and uploaded.
#[derive(Clone, Copy, Debug)]
pub struct Started {
    /// Minted per tier.
    pub minted: TierCounts,
}

/// One user's side of a chat.
pub struct Session<'a, S, D> {
    name: String,
    partner_name: String,
    identity: Identity,
    device_key: DeviceKey,
    store: &'a S,
    directory: &'a D,
    priority: Priority,
    place: Place,
    rekey_next: bool,
    partner: Option<Partner>,
}

/// The current time, in Unix seconds.
pub fn now() -> UnixSeconds {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// First 8 hex digits of an id, enough to follow a coin through the output.
pub fn short(id: &KeyId) -> String {
    id.to_string().chars().take(8).collect()
}

/// Whether a tier of `held` is low: under half of its cap for `priority`. When to pre-fetch is
/// the app's choice (the core says how much: [`Messenger::prefetch`] claims the deficits).
fn low(policy: &Policy, priority: Priority, held: &TierCounts) -> bool {
    Tier::ALL.iter().any(|t| held.get(*t) * 2 < policy.cap(priority, *t))
}

impl<'a, S: DeviceStore, D: DirectoryStore> Session<'a, S, D> {
    /// A new user `name` (fresh identity and device key, never stored: every chat starts
    /// afresh) who ranks `partner_name` as `priority`, on `store` and `directory`. Registers the
    /// identity with the directory and uploads a stock of coins ([`Session::restock`]).
    pub fn start<R: CryptoRng + ?Sized>(
        name: &str,
        partner_name: &str,
        priority: Priority,
        store: &'a S,
        directory: &'a D,
        rng: &mut R,
    ) -> Result<(Self, Started), ChatError> {
        // A name becomes a file name (USER.redb) and a channel: letters, digits, '-' and '_' only.
        for n in [name, partner_name] {
            let ok = n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if n.is_empty() || n.len() > MAX_NAME || !ok {
                return Err(ChatError::Usage(format!(
                    "user names are 1 to {MAX_NAME} letters, digits, '-' or '_'; got {n:?}"
                )));
            }
        }
        if name == partner_name {
            return Err(ChatError::Usage(format!("--user and --partner are both {name:?}: chat with someone else")));
        }
        let identity = Identity::generate(rng);
        let device_key = DeviceKey::random(rng);
        let proof = identity.registration_proof(rng).store("sign the registration")?;
        directory.register_identity(identity.public(), &proof).directory("register the identity")?;
        let session = Session {
            name: name.to_owned(),
            partner_name: partner_name.to_owned(),
            identity,
            device_key,
            store,
            directory,
            priority,
            place: Place::Wifi,
            rekey_next: false,
            partner: None,
        };
        let minted = session.restock(rng)?;
        Ok((session, Started { minted }))
    }

    fn messenger(&self) -> Messenger<'_, S, Identity> {
        Messenger::new(self.store, &self.identity, &self.device_key)
    }

    /// This user's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The partner's name (as given on the command line).
    pub fn partner_name(&self) -> &str {
        &self.partner_name
    }

    /// This user's id.
    pub fn user_id(&self) -> UserId {
        self.identity.user_id()
    }

    /// The partner, once met.
    pub fn partner(&self) -> Option<&Partner> {
        self.partner.as_ref()
    }

    /// How this user ranks the partner.
    pub fn priority(&self) -> Priority {
        self.priority
    }

    /// The current place.
    pub fn place(&self) -> Place {
        self.place
    }

    /// The policy every rule runs under (the store's).
    pub fn policy(&self) -> &Policy {
        self.store.policy()
    }

    /// Our vault's counters (ACTIVE per tier, burned).
    pub fn vault_stats(&self) -> Result<aqm_core::vault::VaultStats, ChatError> {
        self.store.stats().store("read the vault's counters")
    }

    /// The hello to publish (`reply`: in answer to the partner's).
    pub fn hello(&self, reply: bool) -> Vec<u8> {
        Frame::Hello { name: self.name.clone(), reply, identity: Box::new(self.identity.public().clone()) }.encode()
    }

    /// The goodbye to publish when quitting.
    pub fn bye(&self) -> Vec<u8> {
        Frame::Bye { name: self.name.clone() }.encode()
    }

    /// The partner's cached coins (zero before they joined).
    pub fn held(&self) -> Result<TierCounts, ChatError> {
        match &self.partner {
            Some(p) => self.store.counts(&p.id).store("count the inventory"),
            None => Ok(TierCounts::default()),
        }
    }

    /// Move to `place`. The next message opens a new chain if the tiers a send may use changed
    /// (the core's [`Messenger::send_range`]), so it gets what the new context affords; a move
    /// that changes nothing (a STRANGER is BRONZE everywhere) keeps the open chain and its coins.
    pub fn set_place(&mut self, place: Place) -> Result<bool, ChatError> {
        let changed = match &self.partner {
            Some(p) => {
                let m = self.messenger();
                let opts = SendOptions::default();
                let before = m.send_range(&p.id, &self.place.context(), opts).store("tier range")?;
                let after = m.send_range(&p.id, &place.context(), opts).store("tier range")?;
                before != after
            }
            None => false,
        };
        self.place = place;
        self.rekey_next |= changed;
        Ok(changed)
    }

    /// Open a new chain with the next message (`/rekey`).
    pub fn rekey_next(&mut self) {
        self.rekey_next = true;
    }

    /// Keep this user's coins in the directory stocked: mint and upload, per tier, what the
    /// directory lacks of the most one contact may claim a day (the policy's anti-drain quota),
    /// so a contact can always fill its inventory and a stranger can fetch on demand.
    pub fn restock<R: CryptoRng + ?Sized>(&self, rng: &mut R) -> Result<TierCounts, ChatError> {
        let me = self.identity.user_id();
        let available = self.directory.available(&me).directory("count our coins")?;
        let mut minted = TierCounts::default();
        let mut coins = Vec::new();
        for tier in Tier::ALL {
            let missing = self.directory.policy().claim_quota(tier).saturating_sub(available.get(tier));
            for _ in 0..missing {
                let m = coin::mint(&self.identity, tier, &self.device_key, now(), rng).store("mint a coin")?;
                self.store.put(&m.vault).store("store a private half in the vault")?;
                coins.push(m.public);
            }
            *minted.get_mut(tier) = missing;
        }
        if !coins.is_empty() {
            self.directory.upload(&me, &coins, now()).directory("upload our coins")?;
        }
        Ok(minted)
    }

    /// Handle bytes from our channel.
    pub fn on_frame<R: CryptoRng + ?Sized>(&mut self, bytes: &[u8], rng: &mut R) -> Result<Event, ChatError> {
        match Frame::decode(bytes).map_err(|e| ChatError::BadFrame(e.to_string()))? {
            Frame::Hello { name, reply, identity } => {
                if name != self.partner_name {
                    return Ok(Event::Ignored(format!("a hello from {name:?}, who is not our partner")));
                }
                let met = self.meet(&identity)?;
                // Answer a first hello so a partner who started later learns of us; a reply is
                // never answered, and a partner we already knew has heard from us.
                let answer = (!reply).then(|| self.hello(true));
                Ok(Event::Met(met, answer))
            }
            Frame::Message { envelope } => Ok(Event::Message(self.receive(&envelope, rng)?)),
            Frame::Bye { name } => Ok(Event::Left(name)),
        }
    }

    /// Pin the partner's identity, register them as a contact of our priority and pre-fetch
    /// their coins. A BESTIE or MATE is pinned from the hello (standing in for a contact
    /// exchange); a STRANGER only from the directory, so their messages show unverified.
    pub fn meet(&mut self, offered: &PublicIdentity) -> Result<Met, ChatError> {
        let m = self.messenger();
        let id = offered.user_id;
        let pinned = if self.priority == Priority::Stranger {
            m.pin_from_directory(self.directory, &id).store("pin the partner from the directory")?
        } else {
            let p = m.pin(offered, Trust::Exchanged).store("pin the partner's identity")?;
            // The directory must hold the same identity, or coins from it would not verify.
            m.pin_from_directory(self.directory, &id).store("check the partner's identity in the directory")?;
            p
        };
        let meta = ContactMeta::new(id, self.priority, &self.partner_name, now()).store("describe the contact")?;
        // Already registered (a second hello of the same run) is fine: the contact stays as it is.
        self.store.register_contact(&meta).store("register the contact")?;
        let prefetch = m.prefetch(self.directory, &id, None, now()).store("pre-fetch the partner's coins")?;
        let held = self.store.counts(&id).store("count the inventory")?;
        let partner = Partner { name: self.partner_name.clone(), id, trust: pinned.trust };
        let safety_number = SafetyNumber::of(self.identity.public(), &pinned.identity);
        self.partner = Some(partner.clone());
        Ok(Met { partner, safety_number, prefetch, held })
    }

    /// Encrypt `text` to the partner: the full send lifecycle, then replenishment if a tier ran
    /// low. Nothing is sent (and [`ChatError::NoCoin`] returned) when no coin of the range is
    /// cached or in the directory.
    pub fn send<R: CryptoRng + ?Sized>(&mut self, text: &str, rng: &mut R) -> Result<Outgoing, ChatError> {
        let partner = self
            .partner
            .clone()
            .ok_or_else(|| ChatError::NotJoined { partner: self.partner_name.clone(), me: self.name.clone() })?;
        // Borrow the fields, not `self`: `rekey_next` changes while the messenger lives.
        let m = Messenger::new(self.store, &self.identity, &self.device_key);
        let ctx = self.place.context();
        let opts = SendOptions::default();
        let range = m.send_range(&partner.id, &ctx, opts).store("tier range")?;
        let outcome = if self.rekey_next {
            m.send_rekeyed(&partner.id, &ctx, text.as_bytes(), opts, now(), rng)
        } else {
            m.send(&partner.id, &ctx, text.as_bytes(), opts, now(), rng)
        }
        .store("encrypt the message")?;
        let (sent, source) = match outcome {
            SendOutcome::Sent(s) => {
                let source = if s.rekeyed { CoinSource::Inventory } else { CoinSource::OpenChain };
                (s, source)
            }
            SendOutcome::NeedCoin { range, .. } => {
                let idem: [u8; 16] = rng.random();
                let coin = m
                    .fetch_on_demand(self.directory, &partner.id, range, Some(idem), now())
                    .store("fetch a coin on demand")?
                    .ok_or_else(|| ChatError::NoCoin { partner: partner.name.clone(), range })?;
                let s = m
                    .send_with_coin(&partner.id, &coin, range.desired, text.as_bytes(), now(), rng)
                    .store("encrypt the message")?;
                (s, CoinSource::OnDemand)
            }
        };
        self.rekey_next = false;
        let envelope = sent.envelope.to_vec().store("encode the envelope")?;
        let mut held = self.store.counts(&partner.id).store("count the inventory")?;
        let mut replenished = None;
        if source == CoinSource::Inventory && low(self.policy(), self.priority, &held) {
            let r = m.prefetch(self.directory, &partner.id, None, now()).store("replenish from the directory")?;
            held = self.store.counts(&partner.id).store("count the inventory")?;
            replenished = Some(r);
        }
        Ok(Outgoing {
            envelope_len: envelope.len(),
            frame: Frame::Message { envelope }.encode(),
            affordable: ctx.affordable_tier(),
            range,
            source,
            sent,
            replenished,
            held,
        })
    }

    /// Open one envelope from the partner (verify, decapsulate, decrypt, burn), then restock the
    /// directory if a coin was used.
    pub fn receive<R: CryptoRng + ?Sized>(&mut self, envelope: &[u8], rng: &mut R) -> Result<Incoming, ChatError> {
        let got = self.messenger().receive(envelope, now(), rng).store("open the message")?;
        let from = match &self.partner {
            Some(p) if p.id == got.from => p.name.clone(),
            _ => got.from.to_string(),
        };
        let coin_status =
            if got.rekeyed { self.store.status(&got.chain).store("read the coin's status")? } else { None };
        let restocked = if got.rekeyed { self.restock(rng)? } else { TierCounts::default() };
        Ok(Incoming {
            from,
            text: String::from_utf8_lossy(&got.plaintext).into_owned(),
            chain: got.chain,
            tier: got.tier,
            counter: got.counter,
            rekeyed: got.rekeyed,
            coin_status,
            unverified: got.unverified(),
            restocked,
        })
    }
}
