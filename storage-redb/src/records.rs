//! The records this crate stores, owned here rather than borrowed from the core.
//!
//! Every value written to a table is one of these types, encoded with postcard. Postcard is not
//! self-describing: had the tables held the core's own structs, adding a field to one of them
//! would have turned every existing file into `Corrupt` without any change in this crate. Here
//! each record spells out its fields, with plain integers and byte strings for the core's enums
//! and bounded vectors, and converts to and from the core type explicitly. A change to a core
//! type breaks the conversion at compile time, which is where the choice belongs: keep the
//! record (the format stays) or change it and bump [`crate::FORMAT_VERSION`].
//!
//! The layout of every record is pinned by the golden file `tests/golden/format-v4.redb`
//! (opened by `tests/golden.rs`).

use aqm_core::coin::{CoinKind, PublicCoin};
use aqm_core::crypto::{PublicIdentity, SealedSecret};
use aqm_core::directory::{Claimed, DirectoryCoin};
use aqm_core::inventory::{CachedCoin, ContactMeta};
use aqm_core::pins::{Pinned, Trust};
use aqm_core::store::SessionBlob;
use aqm_core::vault::{KeyStatus, LAST_RESORT_OPENS_BYTES, LastResortOpens, VaultEntry, VaultStats};
use aqm_core::{KeyId, Priority, Tier, TierCounts, UnixSeconds, UserId};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::sealing::Sealing;

/// A record type of one table: encodes itself and converts from and to its core type.
pub(crate) trait Record: Serialize + DeserializeOwned {
    /// The core type this record stores.
    type Core;
    /// The record of a core value.
    fn from_core(value: &Self::Core) -> Self;
    /// The core value back; `table` names where the record came from, for the error.
    fn into_core(self, table: &'static str) -> Result<Self::Core, Error>;
}

/// Encode a core value as its record of `table`, stored under `key` (the table key as stored),
/// sealed as the store's [`Sealing`] says.
pub(crate) fn encode<R: Record>(
    sealing: &Sealing,
    table: &'static str,
    key: &[u8],
    value: &R::Core,
) -> Result<Vec<u8>, Error> {
    let plain = postcard::to_allocvec(&R::from_core(value))
        .map_err(|_| Error::Corrupt { table, detail: "value does not encode" })?;
    sealing.seal(table, key, plain)
}

/// Decode a record read from `table` under `key` into its core value.
pub(crate) fn decode<R: Record>(
    sealing: &Sealing,
    table: &'static str,
    key: &[u8],
    bytes: &[u8],
) -> Result<R::Core, Error> {
    let plain = sealing.open(table, key, bytes)?;
    let record: R =
        postcard::from_bytes(&plain).map_err(|_| Error::Corrupt { table, detail: "record does not decode" })?;
    record.into_core(table)
}

fn corrupt(table: &'static str, detail: &'static str) -> Error {
    Error::Corrupt { table, detail }
}

fn tier(table: &'static str, b: u8) -> Result<Tier, Error> {
    Tier::try_from(b).map_err(|_| corrupt(table, "unknown tier byte"))
}

fn bounded<const N: usize>(
    table: &'static str,
    bytes: &[u8],
    detail: &'static str,
) -> Result<heapless::Vec<u8, N>, Error> {
    heapless::Vec::from_slice(bytes).map_err(|_| corrupt(table, detail))
}

/// A vault entry. `burned_at` is None exactly while the key is ACTIVE.
#[derive(Serialize, Deserialize)]
pub(crate) struct VaultRecord {
    key_id: [u8; 16],
    tier: u8,
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
    created_at: u64,
    expires_at: u64,
    burned_at: Option<u64>,
}

impl Record for VaultRecord {
    type Core = VaultEntry;
    fn from_core(e: &VaultEntry) -> Self {
        VaultRecord {
            key_id: e.key_id.0,
            tier: e.tier.to_byte(),
            nonce: e.sealed.nonce,
            ciphertext: e.sealed.ciphertext.to_vec(),
            created_at: e.created_at,
            expires_at: e.expires_at,
            burned_at: e.burned_at(),
        }
    }
    fn into_core(self, table: &'static str) -> Result<VaultEntry, Error> {
        let sealed = SealedSecret {
            nonce: self.nonce,
            ciphertext: bounded(table, &self.ciphertext, "sealed secret longer than the maximum")?,
        };
        let status = if self.burned_at.is_some() { KeyStatus::Burned } else { KeyStatus::Active };
        VaultEntry::from_stored(
            KeyId(self.key_id),
            tier(table, self.tier)?,
            // The kind lives in its own table (`vault_kinds`), read beside this record: a
            // record of a file from before that table is one-time, and so is this default.
            CoinKind::OneTime,
            sealed,
            self.created_at,
            self.expires_at,
            status,
            self.burned_at,
        )
        .map_err(|_| corrupt(table, "inconsistent vault state"))
    }
}

/// The kind of a vault entry that is not one-time (table `vault_kinds`).
#[derive(Serialize, Deserialize)]
pub(crate) struct KindRecord {
    kind: u8,
}

impl Record for KindRecord {
    type Core = CoinKind;
    fn from_core(k: &CoinKind) -> Self {
        KindRecord { kind: k.to_byte() }
    }
    fn into_core(self, table: &'static str) -> Result<CoinKind, Error> {
        CoinKind::try_from(self.kind).map_err(|_| corrupt(table, "unknown coin kind byte"))
    }
}

/// The opens of a last-resort key: the core's own encoding, padded to its largest size so the
/// sealed value's length does not tell how many first messages the key opened.
#[derive(Serialize, Deserialize)]
pub(crate) struct OpensRecord {
    opens: Vec<u8>,
    padding: Vec<u8>,
}

impl Record for OpensRecord {
    type Core = LastResortOpens;
    fn from_core(o: &LastResortOpens) -> Self {
        let opens = o.to_bytes().to_vec();
        let padding = vec![0; LAST_RESORT_OPENS_BYTES.saturating_sub(opens.len())];
        OpensRecord { opens, padding }
    }
    fn into_core(self, table: &'static str) -> Result<LastResortOpens, Error> {
        LastResortOpens::from_bytes(&self.opens).map_err(|_| corrupt(table, "last-resort opens do not decode"))
    }
}

/// The vault counters.
#[derive(Serialize, Deserialize)]
pub(crate) struct StatsRecord {
    active: [u32; 3],
    total_burned: u64,
    total_expired: u64,
}

impl Record for StatsRecord {
    type Core = VaultStats;
    fn from_core(s: &VaultStats) -> Self {
        StatsRecord { active: s.active.0, total_burned: s.total_burned, total_expired: s.total_expired }
    }
    fn into_core(self, _: &'static str) -> Result<VaultStats, Error> {
        Ok(VaultStats {
            active: TierCounts(self.active),
            total_burned: self.total_burned,
            total_expired: self.total_expired,
        })
    }
}

/// A public coin, inside the inventory and directory records.
#[derive(Serialize, Deserialize)]
pub(crate) struct CoinRecord {
    owner: [u8; 16],
    key_id: [u8; 16],
    tier: u8,
    kind: u8,
    expires_at: u64,
    public_key: Vec<u8>,
    signature: Vec<u8>,
}

impl Record for CoinRecord {
    type Core = PublicCoin;
    fn from_core(c: &PublicCoin) -> Self {
        CoinRecord {
            owner: c.owner.0,
            key_id: c.key_id.0,
            tier: c.tier.to_byte(),
            kind: c.kind.to_byte(),
            expires_at: c.expires_at,
            public_key: c.public_key.to_vec(),
            signature: c.signature.to_vec(),
        }
    }
    fn into_core(self, table: &'static str) -> Result<PublicCoin, Error> {
        Ok(PublicCoin {
            owner: UserId(self.owner),
            key_id: KeyId(self.key_id),
            tier: tier(table, self.tier)?,
            kind: CoinKind::try_from(self.kind).map_err(|_| corrupt(table, "unknown coin kind byte"))?,
            expires_at: self.expires_at,
            public_key: bounded(table, &self.public_key, "coin public key longer than the maximum")?,
            signature: bounded(table, &self.signature, "coin signature longer than the maximum")?,
        })
    }
}

/// A registered contact.
#[derive(Serialize, Deserialize)]
pub(crate) struct ContactRecord {
    contact_id: [u8; 16],
    priority: u8,
    last_msg_at: u64,
    display_name: String,
    require_pq: bool,
}

impl Record for ContactRecord {
    type Core = ContactMeta;
    fn from_core(m: &ContactMeta) -> Self {
        ContactRecord {
            contact_id: m.contact_id.0,
            priority: m.priority.to_byte(),
            last_msg_at: m.last_msg_at,
            display_name: m.display_name.as_str().to_owned(),
            require_pq: m.require_pq,
        }
    }
    fn into_core(self, table: &'static str) -> Result<ContactMeta, Error> {
        let priority = Priority::try_from(self.priority).map_err(|_| corrupt(table, "unknown priority byte"))?;
        let mut meta = ContactMeta::new(UserId(self.contact_id), priority, &self.display_name, self.last_msg_at)
            .map_err(|_| corrupt(table, "display name longer than the maximum"))?;
        meta.require_pq = self.require_pq;
        Ok(meta)
    }
}

/// A cached coin with its FIFO sequence number.
#[derive(Serialize, Deserialize)]
pub(crate) struct CachedRecord {
    coin: CoinRecord,
    seq: u64,
    fetched_at: u64,
}

impl Record for CachedRecord {
    type Core = CachedCoin;
    fn from_core(c: &CachedCoin) -> Self {
        CachedRecord { coin: CoinRecord::from_core(&c.coin), seq: c.seq, fetched_at: c.fetched_at }
    }
    fn into_core(self, table: &'static str) -> Result<CachedCoin, Error> {
        Ok(CachedCoin { coin: self.coin.into_core(table)?, seq: self.seq, fetched_at: self.fetched_at })
    }
}

/// A directory coin, claimed or not.
#[derive(Serialize, Deserialize)]
pub(crate) struct DirectoryRecord {
    coin: CoinRecord,
    uploaded_at: u64,
    seq: u64,
    claimed_by: Option<[u8; 16]>,
    claimed_at: Option<u64>,
}

impl Record for DirectoryRecord {
    type Core = DirectoryCoin;
    fn from_core(d: &DirectoryCoin) -> Self {
        DirectoryRecord {
            coin: CoinRecord::from_core(&d.coin),
            uploaded_at: d.uploaded_at,
            seq: d.seq,
            claimed_by: d.claimed_by.map(|u| u.0),
            claimed_at: d.claimed_at,
        }
    }
    fn into_core(self, table: &'static str) -> Result<DirectoryCoin, Error> {
        Ok(DirectoryCoin {
            coin: self.coin.into_core(table)?,
            uploaded_at: self.uploaded_at,
            seq: self.seq,
            claimed_by: self.claimed_by.map(UserId),
            claimed_at: self.claimed_at,
        })
    }
}

/// A public identity (directory registrations and pins).
#[derive(Serialize, Deserialize)]
pub(crate) struct IdentityRecord {
    user_id: [u8; 16],
    ed25519: [u8; 32],
    mldsa65: Vec<u8>,
}

impl Record for IdentityRecord {
    type Core = PublicIdentity;
    fn from_core(i: &PublicIdentity) -> Self {
        IdentityRecord { user_id: i.user_id.0, ed25519: i.ed25519, mldsa65: i.mldsa65.to_vec() }
    }
    fn into_core(self, table: &'static str) -> Result<PublicIdentity, Error> {
        Ok(PublicIdentity {
            user_id: UserId(self.user_id),
            ed25519: self.ed25519,
            mldsa65: bounded(table, &self.mldsa65, "ML-DSA-65 key longer than the maximum")?,
        })
    }
}

/// A pinned identity and how far it is trusted.
#[derive(Serialize, Deserialize)]
pub(crate) struct PinRecord {
    identity: IdentityRecord,
    trust: u8,
}

impl Record for PinRecord {
    type Core = Pinned;
    fn from_core(p: &Pinned) -> Self {
        PinRecord { identity: IdentityRecord::from_core(&p.identity), trust: p.trust.to_byte() }
    }
    fn into_core(self, table: &'static str) -> Result<Pinned, Error> {
        let trust = Trust::try_from(self.trust).map_err(|_| corrupt(table, "unknown trust byte"))?;
        Ok(Pinned { identity: self.identity.into_core(table)?, trust })
    }
}

/// The answer to an idempotent claim: when it was made and the coins it returned.
#[derive(Serialize, Deserialize)]
pub(crate) struct ReplyRecord {
    created_at: u64,
    coins: Vec<CoinRecord>,
}

impl Record for ReplyRecord {
    type Core = (UnixSeconds, Claimed);
    fn from_core((at, coins): &(UnixSeconds, Claimed)) -> Self {
        ReplyRecord { created_at: *at, coins: coins.iter().map(CoinRecord::from_core).collect() }
    }
    fn into_core(self, table: &'static str) -> Result<(UnixSeconds, Claimed), Error> {
        let mut out = Claimed::new();
        for c in self.coins {
            out.push(c.into_core(table)?).map_err(|_| corrupt(table, "more coins than a claim returns"))?;
        }
        Ok((self.created_at, out))
    }
}

/// A session record: its compare-and-swap version and the core's sealed blob.
#[derive(Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    version: u64,
    blob: Vec<u8>,
}

impl Record for SessionRecord {
    type Core = (u64, SessionBlob);
    fn from_core((version, blob): &(u64, SessionBlob)) -> Self {
        SessionRecord { version: *version, blob: blob.to_vec() }
    }
    fn into_core(self, table: &'static str) -> Result<(u64, SessionBlob), Error> {
        Ok((self.version, bounded(table, &self.blob, "session record larger than the maximum")?))
    }
}

/// Where a cached coin sits in the inventory: its tier and sequence number.
#[derive(Serialize, Deserialize)]
pub(crate) struct SlotRecord {
    tier: u8,
    seq: u64,
}

impl Record for SlotRecord {
    type Core = (Tier, u64);
    fn from_core((t, seq): &(Tier, u64)) -> Self {
        SlotRecord { tier: t.to_byte(), seq: *seq }
    }
    fn into_core(self, table: &'static str) -> Result<(Tier, u64), Error> {
        Ok((tier(table, self.tier)?, self.seq))
    }
}

/// Where a directory coin sits: its tier, sequence number and whether it was claimed.
#[derive(Serialize, Deserialize)]
pub(crate) struct DirKeyRecord {
    tier: u8,
    seq: u64,
    claimed: bool,
}

impl Record for DirKeyRecord {
    type Core = (Tier, u64, bool);
    fn from_core((t, seq, claimed): &(Tier, u64, bool)) -> Self {
        DirKeyRecord { tier: t.to_byte(), seq: *seq, claimed: *claimed }
    }
    fn into_core(self, table: &'static str) -> Result<(Tier, u64, bool), Error> {
        Ok((tier(table, self.tier)?, self.seq, self.claimed))
    }
}

/// Coins one requester claimed from one owner and tier in one quota window.
#[derive(Serialize, Deserialize)]
pub(crate) struct QuotaRecord {
    used: u32,
}

impl Record for QuotaRecord {
    type Core = u32;
    fn from_core(used: &u32) -> Self {
        QuotaRecord { used: *used }
    }
    fn into_core(self, _: &'static str) -> Result<u32, Error> {
        Ok(self.used)
    }
}
