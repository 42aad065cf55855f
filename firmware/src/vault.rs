//! The vault in NOR flash: [`FlashVault`], the core's [`VaultStore`] over any
//! [`MultiwriteNorFlash`].
//!
//! # Layout
//!
//! The flash region given to the vault is split in two page-aligned parts:
//!
//! - a **record map** (`sequential-storage` map, power-fail safe and wear levelled): one *format*
//!   record (the version of this layout, [`FLASH_FORMAT`]), one record per key id (tier, status,
//!   created time, the coin's signed `expires_at`, burned time, secret slot, and a stamp; a
//!   last-resort coin's record ends with one more byte, its kind, so every record without it,
//!   including all written before issue 14, is one-time), one *opens* item per last-resort key
//!   that has opened a first message (a stamp and the core's `LastResortOpens::to_bytes`), one
//!   *meta* record (a stamp and a pending-deletion intent), and the sealed identity of the
//!   device;
//! - a **secret slab** ([`crate::secret_slots`]): fixed [`crate::SLOT_SIZE`]-byte slots, each holding one sealed secret
//!   (`[0xA5, tier, length, key id byte 0] ‖ nonce ‖ sealed seed`, rest left erased).
//!
//! The map alone cannot destroy a secret: `sequential-storage` writes a new item for a new value
//! and only zeroes the old item's CRC when removing it, so the old bytes stay in flash until the
//! page is erased. Secrets therefore live in the slab, where the vault controls every byte.
//!
//! # Counters
//!
//! The vault's counters ([`VaultStats`]) move only by the core's [`VaultStats::apply`], and are
//! stored in the same map write that commits the step that moves them: every record and meta
//! item the vault writes carries a *stamp*, the counters *after* its step and a sequence number
//! one higher than the previous stamped write's. Boot takes the counters of the item with the
//! highest sequence number; nothing is recounted, so a step that forgot to apply its transition
//! (or applied it twice) shows as counters that differ from the entries, which the conformance
//! kit's recount checks. The newest item is always in the map: an item is only replaced by a
//! newer one of its key, and the only removal (a purge's deletion of a record) comes after the
//! meta write that commits it, which carries a higher number.
//!
//! # Steps and power cuts
//!
//! Each step commits with one map write (atomic in `sequential-storage`) that carries the step's
//! new state and its counters together, and every other write is ordered so that a cut before or
//! after it is repaired at the next boot:
//!
//! - **put**: program a free slot, then write the ACTIVE record pointing at it, stamped with the
//!   counters after `Stored(tier)` (the commit). A cut before the commit leaves an unreferenced
//!   slot, which the boot scrub zeroes, and the counters of the previous commit.
//! - **burn**: write the BURNED record stamped with the counters after `Burned(tier)` (the
//!   commit), then program the slot to all zeros in place (1 → 0 needs no erase). A cut before
//!   the zeroing is finished by the boot scrub: *every* slot not referenced by an ACTIVE record is
//!   zeroed at boot, so a burned secret never survives a reboot.
//! - **purge**: for each key that goes, write the meta record stamped with the counters after
//!   `Expired(tier)` (a burned key's deletion moves none) and the key id as a pending deletion
//!   (the commit), zero the slot, remove the record; at the end clear the pending intent (a
//!   stamped write that moves no counter). Boot finishes any pending deletion.
//! - **last-resort open** ([`VaultStore::open_last_resort`]): the core's
//!   [`VaultEntry::open_last_resort`] decides on the entry and its opens read from flash (a refusal
//!   writes nothing); the commit is one stamped write of the key's opens item with the digest
//!   (no counter moves). An open that fills the record retires the key instead: the BURNED record
//!   stamped with the counters after `Burned(tier)` (the commit), the slot zeroed, then the opens
//!   item removed.
//! - **opens of a key that is no longer ACTIVE**: a burn or a retiring open removes the key's
//!   opens item after its commit, a purge before removing the record; boot removes every opens
//!   item whose key is not an ACTIVE last-resort key, so a cut between a commit and that removal
//!   leaves nothing behind (and a stale item never reads as a later key's opens). An opens item is
//!   only removed after a newer stamped write, so the newest stamp stays in the map.
//! - **slab compaction** (when the only free slots left are in the spare page,
//!   [`crate::secret_slots`]): copy each live slot of the page with the most dead slots to the
//!   spare page and re-point its record (one stamped map write each, no counter moved), then
//!   erase the page, which becomes the new spare.
//!
//! The writes and their order are those of format 2; format 3 only adds the stamps. Last-resort
//! coins (issue 14) are additive within format 3: the kind byte and the opens items; a vault
//! written before reads as all one-time.
//!
//! - **format**: the first boot of an erased flash writes the format record before anything
//!   else (a cut before it leaves an empty map, which the next boot formats again). A map with
//!   items but no format record is format 1 (the only one that had none); any format other than
//!   [`FLASH_FORMAT`] is refused ([`Error::FlashFormat`]) before boot writes anything, so an old
//!   vault is never half-read or "repaired" into something else. Older data is not migrated.
//!
//! Expiry is the core's rule on the stored `expires_at` ([`VaultEntry::is_expired`]: the secret
//! goes at `expires_at + vault_grace`); the vault keeps no lifetime of its own.
//!
//! The records of the map are mirrored in RAM (an index of at most `N` keys, about 48 bytes each)
//! so lookups, counters and purges do not scan flash.
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use core::cell::RefCell;
use core::ops::Range;

use aqm_core::coin::CoinKind;
use aqm_core::crypto::SealedSecret;
use aqm_core::crypto::sizes::AEAD_NONCE;
use aqm_core::store::VaultStore;
use aqm_core::vault::{
    KeyStatus, LAST_RESORT_OPENS_BYTES, LastResortOpens, OpenDigest, PurgeAction, PurgeReport, Transition, VaultEntry,
    VaultStats,
};
use aqm_core::{KeyId, Policy, Tier, TierCounts, UnixSeconds};
use embassy_futures::block_on;
use embedded_storage::nor_flash::{MultiwriteNorFlash, NorFlash, NorFlashError};
use sequential_storage::cache::{Cache, Uncached};
use sequential_storage::map::{MapConfig, MapStorage, PostcardValue, SerializationError, Value};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::erase_log::EraseLog;
use crate::flash::BlockingAsync;
use crate::secret_slots::{LiveSlots, SecretSlots, SlotState};

/// A BURNED record's slot: none (the number lies past every slab, [`crate::MAX_SLOTS`]).
const NO_SLOT: u16 = u16::MAX;

type MapKey = [u8; 17];
const KIND_META: u8 = 0;
const KIND_IDENTITY: u8 = 1;
const KIND_RECORD: u8 = 2;
const KIND_FORMAT: u8 = 3;
/// A last-resort key's opens (issue 14): one item per key, beside its record.
const KIND_OPENS: u8 = 4;

/// Most bytes postcard writes for a [`Stamp`] (varints: the sequence number 10, three `u32`
/// counters 5 each, two `u64` counters 10 each).
const MAX_STAMP_BYTES: usize = 45;
/// The map's read and write buffer: the largest item's data, which is an opens item (key, stamp,
/// the largest [`LastResortOpens`] encoding), rounded up to 8-byte words.
const ITEM_BUF: usize = 576;
const _: () = assert!(ITEM_BUF >= 17 + MAX_STAMP_BYTES + LAST_RESORT_OPENS_BYTES && ITEM_BUF.is_multiple_of(8));

/// The version of the vault's flash format this firmware reads and writes. Version 2 added the
/// format record itself and `expires_at` to every key record (protocol v2, docs/protocol.md, §6);
/// version 3 stamps every record and meta item with the vault's counters (they move only by the
/// core's `VaultStats::apply`, in the write that commits their step).
pub const FLASH_FORMAT: u32 = 3;
/// What a map with items but no format record is: format 1 had no format record.
const UNRECORDED_FORMAT: u32 = 1;

/// `kind ‖ id`: the map key of a record.
const fn map_key(kind: u8, id: &[u8; 16]) -> MapKey {
    let [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p] = *id;
    [kind, a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p]
}

const META_KEY: MapKey = map_key(KIND_META, &[0; 16]);
const IDENTITY_KEY: MapKey = map_key(KIND_IDENTITY, &[0; 16]);
const FORMAT_KEY: MapKey = map_key(KIND_FORMAT, &[0; 16]);

/// The format record: written once, at the first boot of an erased flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct FormatRecord {
    version: u32,
}
impl PostcardValue<'_> for FormatRecord {}

/// Where the vault lives in the flash: two page-aligned ranges (byte addresses).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultLayout {
    /// The record map (`sequential-storage`): at least 2 pages.
    pub map: Range<u32>,
    /// The secret slab: at least 2 pages (one is always kept erased as the compaction spare).
    pub slab: Range<u32>,
    /// One page for the record map's erase journal (`None`: no journal). Without it, a power
    /// cut during an erase of a record page is survived only if the part leaves that page's
    /// first word erased or its last word programmed, as one erasing in address order does;
    /// with it, whatever state the cut leaves (firmware/README.md, "Power cuts").
    pub erase_log: Option<u32>,
}

impl VaultLayout {
    /// `map_pages` pages of records from `start`, then `slab_pages` pages of secrets. A layout
    /// past the end of the 32-bit address space is cut at its end (saturating, never wrapping
    /// round to low addresses), so that [`FlashVault::open`] refuses it with
    /// [`Error::BadLayout`].
    pub const fn contiguous(start: u32, page_size: u32, map_pages: u32, slab_pages: u32) -> Self {
        let mid = start.saturating_add(map_pages.saturating_mul(page_size));
        let end = mid.saturating_add(slab_pages.saturating_mul(page_size));
        VaultLayout { map: start..mid, slab: mid..end, erase_log: None }
    }

    /// The same layout with the record map's erase journal in the page at `page_start`.
    pub const fn with_erase_log(self, page_start: u32) -> Self {
        VaultLayout { erase_log: Some(page_start), ..self }
    }
}

/// One key's record, in flash (the map value) and in the RAM index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    tier: Tier,
    status: KeyStatus,
    created_at: UnixSeconds,
    /// The coin's signed expiry: the core deletes the secret at `expires_at + vault_grace`.
    expires_at: UnixSeconds,
    burned_at: Option<UnixSeconds>,
    /// Slot index in the slab, [`NO_SLOT`] once burned.
    slot: u16,
    /// The counters after the step that wrote this record.
    stamp: Stamp,
    /// The coin's kind is last-resort. Not a serde field: it is stored as one byte
    /// (`CoinKind::LastResort`) after the record, and a record without it (every record of a
    /// one-time coin, and every record written before issue 14) is one-time ([`decode_record`]).
    #[serde(skip)]
    last_resort: bool,
}

/// A record as stored: its postcard encoding, then the kind byte of a last-resort coin.
fn decode_record(raw: &[u8]) -> Result<Record, Error> {
    let (mut rec, rest): (Record, &[u8]) =
        postcard::take_from_bytes(raw).map_err(|_| Error::Corrupt { what: "vault record" })?;
    rec.last_resort = match rest {
        [] => false,
        [b] if *b == CoinKind::LastResort.to_byte() => true,
        _ => return Err(Error::Corrupt { what: "vault record (coin kind)" }),
    };
    Ok(rec)
}

impl Value<'_> for Record {
    fn serialize_into(&self, buffer: &mut [u8]) -> Result<usize, SerializationError> {
        let n = postcard::to_slice(self, buffer)?.len();
        if !self.last_resort {
            return Ok(n);
        }
        *buffer.get_mut(n).ok_or(SerializationError::BufferTooSmall)? = CoinKind::LastResort.to_byte();
        n.checked_add(1).ok_or(SerializationError::BufferTooSmall)
    }

    fn deserialize_from(buffer: &[u8]) -> Result<(Self, usize), SerializationError> {
        decode_record(buffer).map(|r| (r, buffer.len())).map_err(|_| SerializationError::InvalidFormat)
    }
}

/// A last-resort key's opens item: the stamp of the write (the open that wrote it, module doc
/// "Counters"), then the core's encoding of the opens ([`LastResortOpens::to_bytes`]).
struct OpensItem {
    stamp: Stamp,
    opens: LastResortOpens,
}

impl Value<'_> for OpensItem {
    fn serialize_into(&self, buffer: &mut [u8]) -> Result<usize, SerializationError> {
        let n = postcard::to_slice(&self.stamp, buffer)?.len();
        let bytes = self.opens.to_bytes();
        let end = n.checked_add(bytes.len()).ok_or(SerializationError::BufferTooSmall)?;
        buffer.get_mut(n..end).ok_or(SerializationError::BufferTooSmall)?.copy_from_slice(&bytes);
        Ok(end)
    }

    fn deserialize_from(buffer: &[u8]) -> Result<(Self, usize), SerializationError> {
        let (stamp, rest) = postcard::take_from_bytes::<Stamp>(buffer)?;
        let opens = LastResortOpens::from_bytes(rest).map_err(|_| SerializationError::InvalidFormat)?;
        Ok((OpensItem { stamp, opens }, buffer.len()))
    }
}

/// What every record and meta write carries (module doc, "Counters"): the vault's counters after
/// the write's step, and the write's place in the order of all stamped writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    /// One more than the previous stamped write's; the highest in the map is the newest.
    seq: u64,
    counters: StoredCounters,
}

/// The vault's counters as stored: the firmware's own record of the core's [`VaultStats`]
/// (a field added to the core type must not change this format silently).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct StoredCounters {
    active_gold: u32,
    active_silver: u32,
    active_bronze: u32,
    total_burned: u64,
    total_expired: u64,
}

impl Stamp {
    /// The newer of two stamps (the higher sequence number).
    fn max_by_seq(self, other: Stamp) -> Stamp {
        if other.seq > self.seq { other } else { self }
    }
}

impl From<VaultStats> for StoredCounters {
    fn from(s: VaultStats) -> Self {
        StoredCounters {
            active_gold: s.active.get(Tier::Gold),
            active_silver: s.active.get(Tier::Silver),
            active_bronze: s.active.get(Tier::Bronze),
            total_burned: s.total_burned,
            total_expired: s.total_expired,
        }
    }
}

impl From<StoredCounters> for VaultStats {
    fn from(c: StoredCounters) -> Self {
        let mut active = TierCounts::default();
        *active.get_mut(Tier::Gold) = c.active_gold;
        *active.get_mut(Tier::Silver) = c.active_silver;
        *active.get_mut(Tier::Bronze) = c.active_bronze;
        VaultStats { active, total_burned: c.total_burned, total_expired: c.total_expired }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Meta {
    /// The counters after the step that wrote this meta record.
    stamp: Stamp,
    /// The key id of a deletion committed (and counted) by this write whose record may still
    /// exist.
    pending: Option<[u8; 16]>,
}
impl PostcardValue<'_> for Meta {}

/// The device identity as stored: its user id and its two seeds sealed under the device key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    /// The user id.
    pub user_id: aqm_core::UserId,
    /// Ed25519 seed ‖ ML-DSA-65 seed, sealed.
    pub sealed: SealedSecret,
}
impl PostcardValue<'_> for StoredIdentity {}

#[derive(Clone, Copy, Debug)]
struct Indexed {
    key_id: KeyId,
    rec: Record,
}

impl Indexed {
    /// The record as a core entry (without its secret), so the core's rules decide.
    fn entry(&self) -> Result<VaultEntry, Error> {
        VaultEntry::from_stored(
            self.key_id,
            self.rec.tier,
            if self.rec.last_resort { CoinKind::LastResort } else { CoinKind::OneTime },
            SealedSecret { nonce: [0; AEAD_NONCE], ciphertext: heapless::Vec::new() },
            self.rec.created_at,
            self.rec.expires_at,
            self.rec.status,
            self.rec.burned_at,
        )
        .map_err(Error::from)
    }
}

#[repr(C, align(4))]
struct AlignedBuf([u8; ITEM_BUF]);

/// What the slab holds, as counted by [`FlashVault::usage`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaultUsage {
    /// Records the RAM index holds (ACTIVE and BURNED keys).
    pub records: u32,
    /// Most records the RAM index can hold.
    pub record_capacity: u32,
    /// Slots holding a live (ACTIVE) secret.
    pub live_slots: u32,
    /// Erased slots ready for a new secret.
    pub free_slots: u32,
    /// Zeroed slots waiting for their page to be erased.
    pub dead_slots: u32,
    /// Live secrets the slab can hold at most (one page is kept as the spare).
    pub slot_capacity: u32,
}

type Map<F> = MapStorage<MapKey, BlockingAsync<F>, Cache<Uncached, Uncached, Uncached, MapKey>>;

struct Inner<F: NorFlash, const N: usize> {
    map: Map<F>,
    slots: SecretSlots,
    index: heapless::Vec<Indexed, N>,
    /// The newest meta record (its pending deletion).
    meta: Meta,
    /// The newest stamp in the map: the vault's counters and the last sequence number.
    last: Stamp,
    buf: AlignedBuf,
    /// A step failed half-way: rebuild from flash before the next one.
    dirty: bool,
}

/// The vault in NOR flash. `N` is the most keys (ACTIVE or BURNED within their grace) it holds.
///
/// Not `Sync`: a board has one thread; a host wraps it in a mutex if it must share it.
///
/// ```
/// use aqm_core::{coin, crypto::{DeviceKey, Identity}, store::VaultStore, Policy, Tier};
/// use aqm_firmware::{flash::{RamFlash, PAGE_SIZE}, FlashVault, VaultLayout};
/// let mut rng = rand::rng();
/// let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 4, 4);
/// let vault: FlashVault<_, 64> =
///     FlashVault::open(RamFlash::new(vec![0xFF; 8 * PAGE_SIZE]), layout, Policy::DEFAULT).unwrap();
/// let bob = Identity::generate(&mut rng);
/// let dk = DeviceKey::random(&mut rng);
/// let minted = coin::mint(&bob, Tier::Bronze, &dk, 1_000, &mut rng).unwrap();
/// vault.put(&minted.vault).unwrap();
/// vault.burn(&minted.public.key_id, 1_001).unwrap();
/// assert!(vault.burn(&minted.public.key_id, 1_002).is_err()); // a coin opens once
/// assert_eq!(vault.stats().unwrap().total_burned, 1);
/// ```
pub struct FlashVault<F: NorFlash, const N: usize> {
    inner: RefCell<Inner<F, N>>,
    policy: Policy,
}

fn flash_err<E: NorFlashError>(e: E) -> Error {
    Error::Flash(e.kind())
}

fn map_err<E: NorFlashError>(e: sequential_storage::Error<E>) -> Error {
    match e {
        sequential_storage::Error::Storage { value, .. } => Error::Flash(value.kind()),
        sequential_storage::Error::FullStorage => Error::Core(aqm_core::Error::CapacityFull { what: "vault flash" }),
        sequential_storage::Error::Corrupted { .. } => Error::Corrupt { what: "record map" },
        sequential_storage::Error::SerializationError(_) => Error::Corrupt { what: "vault record" },
        _ => Error::Corrupt { what: "record map (store logic)" },
    }
}

impl<F: MultiwriteNorFlash, const N: usize> FlashVault<F, N> {
    /// Open the vault on `flash` (an erased flash is an empty vault). Only the layout is checked
    /// here; the first call (or [`FlashVault::recover`]) reads the flash, finishes whatever a
    /// power cut interrupted and zeroes every secret that is not live.
    pub fn open(flash: F, layout: VaultLayout, policy: Policy) -> Result<Self, Error> {
        let slots = SecretSlots::new::<F>(&layout.slab, flash.capacity())?;
        let s = &layout.slab;
        if layout.map.end as usize > flash.capacity() {
            return Err(Error::BadLayout { what: "a range lies outside the flash" });
        }
        if layout.map.start < s.end && s.start < layout.map.end {
            return Err(Error::BadLayout { what: "the map and the slab overlap" });
        }
        let log = match layout.erase_log {
            None => None,
            Some(at) => {
                // `SecretSlots::new` checked that a page fits in a u32.
                let page = F::ERASE_SIZE as u32;
                let end =
                    at.checked_add(page).ok_or(Error::BadLayout { what: "the erase log lies outside the flash" })?;
                if !at.is_multiple_of(page) || end as usize > flash.capacity() {
                    return Err(Error::BadLayout { what: "the erase log must be one whole page inside the flash" });
                }
                if (at < layout.map.end && layout.map.start < end) || (at < s.end && s.start < end) {
                    return Err(Error::BadLayout { what: "the erase log overlaps the map or the slab" });
                }
                Some(
                    EraseLog::new::<F>(at, layout.map.clone())
                        .ok_or(Error::BadLayout { what: "flash word or page size does not fit the erase log" })?,
                )
            }
        };
        let config = MapConfig::try_new(layout.map.clone())
            .map_err(|_| Error::BadLayout { what: "the map needs at least 2 whole pages" })?;
        let inner = Inner {
            map: MapStorage::new(BlockingAsync { flash, log }, config, Cache::new_uncached()),
            slots,
            index: heapless::Vec::new(),
            meta: Meta::default(),
            last: Stamp::default(),
            buf: AlignedBuf([0; ITEM_BUF]),
            dirty: true,
        };
        Ok(FlashVault { inner: RefCell::new(inner), policy })
    }

    /// Read the flash now: rebuild the index, finish an interrupted step, zero every secret that
    /// is not live. Boards call this at boot; otherwise the first call does it.
    pub fn recover(&self) -> Result<(), Error> {
        self.with(|_| Ok(()))
    }

    /// Direct access to the flash driver (tests use it to plan power cuts). Writing into the
    /// vault's ranges behind its back voids every guarantee.
    pub fn with_flash<T>(&self, f: impl FnOnce(&mut F) -> T) -> Result<T, Error> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| Error::Busy)?;
        Ok(f(inner.flash()))
    }

    /// The policy this vault applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Close the vault and get the flash back.
    pub fn into_flash(self) -> F {
        self.inner.into_inner().map.destroy().0.flash
    }

    /// Run `f` on the vault, repairing first if an earlier step failed half-way, and marking it
    /// for repair if this one fails.
    fn with<T>(&self, f: impl FnOnce(&mut Inner<F, N>) -> Result<T, Error>) -> Result<T, Error> {
        let mut inner = self.inner.try_borrow_mut().map_err(|_| Error::Busy)?;
        if inner.dirty {
            inner.recover()?;
            inner.dirty = false;
        }
        let r = f(&mut inner);
        if matches!(r, Err(Error::Flash(_) | Error::Corrupt { .. })) {
            inner.dirty = true;
        }
        r
    }

    /// The sealed device identity, if one was provisioned.
    pub fn identity(&self) -> Result<Option<StoredIdentity>, Error> {
        self.with(|i| block_on(i.map.fetch_item::<StoredIdentity>(&mut i.buf.0, &IDENTITY_KEY)).map_err(map_err))
    }

    /// Store the sealed device identity (one power-fail-safe map write).
    pub fn set_identity(&self, identity: &StoredIdentity) -> Result<(), Error> {
        self.with(|i| block_on(i.map.store_item(&mut i.buf.0, &IDENTITY_KEY, identity)).map_err(map_err))
    }

    /// Records, slots and capacities.
    pub fn usage(&self) -> Result<VaultUsage, Error> {
        self.with(|i| {
            let live = i.live_slots();
            let slots = i.slots.clone();
            let counts = slots.counts(i.flash(), &live)?;
            // Sums of per-page counts: at most `MAX_SLOTS` each.
            let sum =
                |f: fn(&crate::secret_slots::PageCounts) -> u32| counts.iter().map(f).fold(0u32, u32::saturating_add);
            Ok(VaultUsage {
                records: u32::try_from(i.index.len()).unwrap_or(u32::MAX),
                record_capacity: u32::try_from(N).unwrap_or(u32::MAX),
                live_slots: sum(|c| c.used),
                free_slots: sum(|c| c.free),
                dead_slots: sum(|c| c.dead),
                slot_capacity: slots.capacity(),
            })
        })
    }

    /// What the last-resort key `key_id` has opened, as stored in its opens item (empty for a
    /// key that opened nothing, a one-time key, a retired or a deleted one: their opens item is
    /// gone). Read from flash each time (the RAM index keeps no opens), for diagnostics and tests.
    pub fn last_resort_opens(&self, key_id: &KeyId) -> Result<LastResortOpens, Error> {
        self.with(|i| i.load_opens(key_id))
    }

    /// Most keys this vault can hold at once, whichever runs out first: the RAM index or the slab.
    pub fn capacity(&self) -> Result<u32, Error> {
        let u = self.usage()?;
        Ok(u.record_capacity.min(u.slot_capacity))
    }
}

impl<F: MultiwriteNorFlash, const N: usize> Inner<F, N> {
    fn flash(&mut self) -> &mut F {
        &mut self.map.flash().flash
    }

    fn find(&self, key_id: &KeyId) -> Option<usize> {
        self.index.iter().position(|e| e.key_id == *key_id)
    }

    /// Which slots ACTIVE records point at.
    fn live_slots(&self) -> LiveSlots {
        let mut live = LiveSlots::none();
        for e in self.index.iter().filter(|e| e.rec.status == KeyStatus::Active) {
            live.insert(u32::from(e.rec.slot));
        }
        live
    }

    fn zero_slot(&mut self, slot: u32) -> Result<(), Error> {
        let slots = self.slots.clone();
        slots.zero(self.flash(), slot)
    }

    fn write_slot(&mut self, slot: u32, key_id: &KeyId, tier: Tier, sealed: &SealedSecret) -> Result<(), Error> {
        let slots = self.slots.clone();
        slots.write(self.flash(), slot, key_id, tier, sealed)
    }

    fn load_sealed(&mut self, e: &Indexed) -> Result<SealedSecret, Error> {
        let slots = self.slots.clone();
        slots.load(self.flash(), u32::from(e.rec.slot), &e.key_id, e.rec.tier)
    }

    /// The stamp of the next write: the counters after `transition` (none: unchanged), applied
    /// by the core's [`VaultStats::apply`], and the next sequence number. Nothing changes until
    /// the write that carries it succeeds (`store_record`, `store_meta`).
    fn stamp(&self, transition: Option<Transition>) -> Result<Stamp, Error> {
        let mut stats = VaultStats::from(self.last.counters);
        if let Some(t) = transition {
            // Counters come from flash: one at its maximum is a damaged stamp, refused here
            // rather than wrapped (or, in a debug build, a panic) inside `apply`.
            let room = match t {
                Transition::Stored(tier) => stats.active.get(tier) < u32::MAX,
                Transition::Burned(_) => stats.total_burned < u64::MAX,
                Transition::Expired(_) => stats.total_expired < u64::MAX,
            };
            if !room {
                return Err(Error::Corrupt { what: "vault counters (at their maximum)" });
            }
            stats.apply(t);
        }
        let seq =
            self.last.seq.checked_add(1).ok_or(Error::Corrupt { what: "vault sequence number (at its maximum)" })?;
        Ok(Stamp { seq, counters: stats.into() })
    }

    /// Write `rec` (the commit of a put or a burn, or a re-pointing): its stamp becomes the
    /// vault's counters.
    fn store_record(&mut self, key_id: &KeyId, rec: &Record) -> Result<(), Error> {
        let key = map_key(KIND_RECORD, &key_id.0);
        block_on(self.map.store_item(&mut self.buf.0, &key, rec)).map_err(map_err)?;
        self.last = rec.stamp;
        Ok(())
    }

    /// Write `meta` (the commit of a purge's deletion, or the clearing of its intent): its stamp
    /// becomes the vault's counters.
    fn store_meta(&mut self, meta: &Meta) -> Result<(), Error> {
        block_on(self.map.store_item(&mut self.buf.0, &META_KEY, meta)).map_err(map_err)?;
        self.meta = *meta;
        self.last = meta.stamp;
        Ok(())
    }

    /// Rebuild the RAM index from flash, finish an interrupted deletion, zero every secret that
    /// is not live. A flash of another format is refused first, with nothing written.
    // Never inlined: its walk buffers must not sit in the frame of every step (`with`), the
    // mint path's included (firmware/README.md, "Footprint").
    #[inline(never)]
    fn recover(&mut self) -> Result<(), Error> {
        self.index.clear();
        self.meta = Meta::default();
        self.last = Stamp::default();
        // First finish a record-page erase a cut interrupted, before the map reads a page the
        // cut may have left in any state (crate::erase_log).
        let async_flash = self.map.flash();
        if let Some(log) = &async_flash.log {
            log.finish_interrupted(&mut async_flash.flash).map_err(flash_err)?;
        }
        // Workaround for sequential-storage 8.0.2 (firmware/README.md, "sequential-storage: no
        // repair in fetch_all_items"): `fetch_all_items` returns `Corrupted` for a page left
        // half-erased by a power cut instead of repairing it, because the `?` inside its
        // auto-repair block returns before the repair runs. `fetch_item` goes through the same
        // page-state checks with the repair working, so on `Corrupted` it is asked for the
        // format record (read only for its side effect: the crate re-erases the half-erased page,
        // whose items it had already migrated; the format record because it decodes in every
        // format that has one, so an older vault is still refused as such below) and the walk is
        // retried. A map still corrupt after that is reported as such.
        if let Err(sequential_storage::Error::Corrupted { .. }) =
            block_on(self.map.fetch_all_items(&mut self.buf.0)).map(|_| ())
        {
            block_on(self.map.fetch_item::<FormatRecord>(&mut self.buf.0, &FORMAT_KEY)).map_err(map_err)?;
        }
        self.check_format()?;
        // The newest stamp seen in the walk (module doc, "Counters").
        let mut newest = Stamp::default();
        // Whether any opens item is in the map (then a second walk drops those of keys that are
        // no longer ACTIVE).
        let mut any_opens = false;
        {
            let mut it = block_on(self.map.fetch_all_items(&mut self.buf.0)).map_err(map_err)?;
            let mut buf = AlignedBuf([0; ITEM_BUF]);
            // Items come oldest first; a later item for the same key replaces an earlier one.
            while let Some((key, raw)) = block_on(it.next::<&[u8]>(&mut buf.0)).map_err(map_err)? {
                let ([kind], id) = key.split_first_chunk::<1>().map_or(([0xFF], &[][..]), |(k, id)| (*k, id));
                match kind {
                    KIND_META => {
                        self.meta = postcard::from_bytes(raw).map_err(|_| Error::Corrupt { what: "vault meta" })?;
                        newest = newest.max_by_seq(self.meta.stamp);
                    }
                    KIND_OPENS => {
                        // Only the stamp here; the opens are decoded when the key opens.
                        let (stamp, _) = postcard::take_from_bytes::<Stamp>(raw)
                            .map_err(|_| Error::Corrupt { what: "vault opens" })?;
                        newest = newest.max_by_seq(stamp);
                        any_opens = true;
                    }
                    KIND_RECORD => {
                        let rec = decode_record(raw)?;
                        newest = newest.max_by_seq(rec.stamp);
                        let key_id = KeyId(id.try_into().map_err(|_| Error::Corrupt { what: "vault record key" })?);
                        match self.index.iter_mut().find(|e| e.key_id == key_id) {
                            Some(e) => e.rec = rec,
                            None => self.index.push(Indexed { key_id, rec }).map_err(|_| Error::BadLayout {
                                what: "more records in flash than the RAM index holds",
                            })?,
                        }
                    }
                    _ => {}
                }
            }
        }
        self.last = newest;
        if let Some(key_id) = self.meta.pending {
            if let Some(i) = self.find(&KeyId(key_id)) {
                self.delete_record(i)?;
            }
            // The deletion was counted by the write that made it pending.
            let meta = Meta { stamp: self.stamp(None)?, pending: None };
            self.store_meta(&meta)?;
        }
        if any_opens {
            self.drop_stale_opens()?;
        }
        let live = self.live_slots();
        let slots = self.slots.clone();
        for slot in 0..slots.count() {
            if slots.state(self.flash(), slot, &live)? == SlotState::Dead {
                slots.zero(self.flash(), slot)?;
            }
        }
        Ok(())
    }

    /// Refuse a flash of another format before anything of it is decoded or written (an old
    /// record would not decode, and boot's repairs would rewrite what it cannot read); format an
    /// empty map.
    // Never inlined: its walk buffers must not sit in the frame of every step (`with`), the
    // mint path's included (firmware/README.md, "Footprint").
    #[inline(never)]
    fn check_format(&mut self) -> Result<(), Error> {
        let mut found = None;
        let mut any = false;
        {
            let mut it = block_on(self.map.fetch_all_items(&mut self.buf.0)).map_err(map_err)?;
            let mut buf = AlignedBuf([0; ITEM_BUF]);
            while let Some((key, raw)) = block_on(it.next::<&[u8]>(&mut buf.0)).map_err(map_err)? {
                any = true;
                if key == FORMAT_KEY {
                    let f: FormatRecord =
                        postcard::from_bytes(raw).map_err(|_| Error::Corrupt { what: "format record" })?;
                    found = Some(f.version);
                }
            }
        }
        match (found, any) {
            (Some(FLASH_FORMAT), _) => Ok(()),
            (Some(version), _) => Err(Error::FlashFormat { found: version, supported: FLASH_FORMAT }),
            (None, true) => Err(Error::FlashFormat { found: UNRECORDED_FORMAT, supported: FLASH_FORMAT }),
            (None, false) => {
                let f = FormatRecord { version: FLASH_FORMAT };
                block_on(self.map.store_item(&mut self.buf.0, &FORMAT_KEY, &f)).map_err(map_err)
            }
        }
    }

    /// Remove every opens item of a key that is not an ACTIVE last-resort key: what a cut left
    /// between a retiring open's, a burn's or a purge's commit and the removal of the key's opens
    /// (and an opens item a format-3 firmware without last-resort coins would have left behind).
    /// A few per walk; a cut leaves at most one.
    // Never inlined: its walk buffers must not sit in the frame of every step (`with`), the
    // mint path's included (firmware/README.md, "Footprint").
    #[inline(never)]
    fn drop_stale_opens(&mut self) -> Result<(), Error> {
        loop {
            let mut stale: heapless::Vec<[u8; 16], 4> = heapless::Vec::new();
            let mut more = false;
            let mut newest_stale = 0u64;
            {
                let mut it = block_on(self.map.fetch_all_items(&mut self.buf.0)).map_err(map_err)?;
                let mut buf = AlignedBuf([0; ITEM_BUF]);
                while let Some((key, raw)) = block_on(it.next::<&[u8]>(&mut buf.0)).map_err(map_err)? {
                    let Some((&KIND_OPENS, id)) = key.split_first() else { continue };
                    let id: [u8; 16] = id.try_into().map_err(|_| Error::Corrupt { what: "vault opens key" })?;
                    let live = self
                        .index
                        .iter()
                        .any(|e| e.key_id.0 == id && e.rec.last_resort && e.rec.status == KeyStatus::Active);
                    if live || stale.contains(&id) {
                        continue;
                    }
                    let (stamp, _) =
                        postcard::take_from_bytes::<Stamp>(raw).map_err(|_| Error::Corrupt { what: "vault opens" })?;
                    newest_stale = newest_stale.max(stamp.seq);
                    if stale.push(id).is_err() {
                        more = true;
                    }
                }
            }
            if stale.is_empty() {
                return Ok(());
            }
            // The newest stamp must stay in the map (module doc, "Counters"): every commit that
            // makes an opens item stale is newer than it, but if a damaged map says otherwise,
            // carry the counters forward in a meta write first.
            if newest_stale >= self.last.seq {
                let meta = Meta { stamp: self.stamp(None)?, pending: self.meta.pending };
                self.store_meta(&meta)?;
            }
            for id in &stale {
                self.remove_opens(&KeyId(*id))?;
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// The opens of a last-resort key (none yet: empty).
    fn load_opens(&mut self, key_id: &KeyId) -> Result<LastResortOpens, Error> {
        let key = map_key(KIND_OPENS, &key_id.0);
        let item = block_on(self.map.fetch_item::<OpensItem>(&mut self.buf.0, &key)).map_err(|e| match e {
            sequential_storage::Error::SerializationError(_) => Error::Corrupt { what: "vault opens" },
            e => map_err(e),
        })?;
        Ok(item.map(|i| i.opens).unwrap_or_default())
    }

    /// Write a last-resort key's opens (the commit of an open that does not retire it): its
    /// stamp becomes the vault's counters.
    fn store_opens(&mut self, key_id: &KeyId, item: &OpensItem) -> Result<(), Error> {
        let key = map_key(KIND_OPENS, &key_id.0);
        block_on(self.map.store_item(&mut self.buf.0, &key, item)).map_err(map_err)?;
        self.last = item.stamp;
        Ok(())
    }

    /// Remove a key's opens item, after the commit that made it stale (a newer stamp is in the
    /// map, so removing it never loses the newest). Removing none is not an error.
    fn remove_opens(&mut self, key_id: &KeyId) -> Result<(), Error> {
        let key = map_key(KIND_OPENS, &key_id.0);
        block_on(self.map.remove_item(&mut self.buf.0, &key)).map_err(map_err)
    }

    /// Zero the record's secret (if any), remove a last-resort key's opens, and remove its record
    /// from flash and from the index. A cut after the opens went leaves the record and the pending
    /// deletion, which boot finishes; a cut after the record went leaves no opens to drop.
    fn delete_record(&mut self, i: usize) -> Result<(), Error> {
        let e = *self.index.get(i).ok_or(aqm_core::Error::KeyNotFound)?;
        if e.rec.slot != NO_SLOT && e.rec.status == KeyStatus::Active {
            self.zero_slot(u32::from(e.rec.slot))?;
        }
        if e.rec.last_resort {
            self.remove_opens(&e.key_id)?;
        }
        let key = map_key(KIND_RECORD, &e.key_id.0);
        block_on(self.map.remove_item(&mut self.buf.0, &key)).map_err(map_err)?;
        self.index.swap_remove(i);
        Ok(())
    }

    /// Move every live secret of `page` to free slots of other pages, re-pointing each record
    /// (one map write each), then erase `page`.
    fn evacuate(&mut self, page: u32) -> Result<(), Error> {
        let slots = self.slots.clone();
        for i in 0..self.index.len() {
            let Some(&e) = self.index.get(i) else { break };
            let slot = u32::from(e.rec.slot);
            if e.rec.status != KeyStatus::Active || slots.page_of(slot)? != page {
                continue;
            }
            let live = self.live_slots();
            let to = slots
                .first_free_outside(self.flash(), page, &live)?
                .ok_or(Error::Corrupt { what: "slab accounting" })?;
            let sealed = self.load_sealed(&e)?;
            self.write_slot(to, &e.key_id, e.rec.tier, &sealed)?;
            // Slot numbers are below `MAX_SLOTS` (2048), so they fit the record's u16.
            let slot = u16::try_from(to).map_err(|_| Error::Corrupt { what: "slab accounting" })?;
            let rec = Record { slot, stamp: self.stamp(None)?, ..e.rec };
            self.store_record(&e.key_id, &rec)?;
            if let Some(x) = self.index.get_mut(i) {
                x.rec = rec;
            }
        }
        slots.erase_page(self.flash(), page)
    }

    /// A free slot for a new secret, evacuating pages as the allocator plans
    /// ([`crate::secret_slots`]): at most two evacuations (one to remake a spare a cut lost,
    /// one to reclaim dead slots) before a slot is taken.
    fn alloc_slot(&mut self) -> Result<u32, Error> {
        let slots = self.slots.clone();
        for _ in 0..3 {
            let live = self.live_slots();
            match slots.allocate(self.flash(), &live)? {
                Ok(slot) => return Ok(slot),
                Err(page) => self.evacuate(page)?,
            }
        }
        Err(Error::Core(aqm_core::Error::CapacityFull { what: "vault slab" }))
    }

    /// The counters of the newest stamp: never recounted (module doc, "Counters").
    fn stats(&self) -> VaultStats {
        self.last.counters.into()
    }
}

impl<F: MultiwriteNorFlash, const N: usize> aqm_core::store::HasPolicy for FlashVault<F, N> {
    fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl<F: MultiwriteNorFlash, const N: usize> VaultStore for FlashVault<F, N> {
    type Error = Error;

    fn put(&self, entry: &VaultEntry) -> Result<(), Error> {
        let transition = entry.check_new()?;
        self.with(|i| {
            if i.find(&entry.key_id).is_some() {
                return Err(aqm_core::Error::KeyAlreadyExists.into());
            }
            if i.index.is_full() {
                return Err(aqm_core::Error::CapacityFull { what: "vault index" }.into());
            }
            let slot = i.alloc_slot()?;
            // Slot numbers are below `MAX_SLOTS` (2048), so they fit the record's u16.
            let slot16 = u16::try_from(slot).map_err(|_| Error::Corrupt { what: "slab accounting" })?;
            // After the allocation (an evacuation makes stamped writes of its own), before the
            // secret is written (a refused stamp writes nothing).
            let stamp = i.stamp(Some(transition))?;
            i.write_slot(slot, &entry.key_id, entry.tier, &entry.sealed)?;
            let rec = Record {
                tier: entry.tier,
                status: KeyStatus::Active,
                created_at: entry.created_at,
                expires_at: entry.expires_at,
                burned_at: None,
                slot: slot16,
                stamp,
                last_resort: entry.is_last_resort(),
            };
            if let Err(e) = i.store_record(&entry.key_id, &rec) {
                // Not committed: the secret must not linger (the boot scrub would catch it too).
                let _ = i.zero_slot(slot);
                return Err(e);
            }
            // Cannot fail: fullness was checked above.
            let _ = i.index.push(Indexed { key_id: entry.key_id, rec });
            Ok(())
        })
    }

    fn get(&self, key_id: &KeyId, now: UnixSeconds) -> Result<Option<VaultEntry>, Error> {
        self.with(|i| {
            let Some(e) = i.find(key_id).and_then(|n| i.index.get(n).copied()) else { return Ok(None) };
            let mut entry = e.entry()?;
            if !entry.is_usable(&self.policy, now) {
                return Ok(None);
            }
            entry.sealed = i.load_sealed(&e)?;
            Ok(Some(entry))
        })
    }

    fn status(&self, key_id: &KeyId) -> Result<Option<KeyStatus>, Error> {
        self.with(|i| Ok(i.find(key_id).and_then(|n| i.index.get(n)).map(|e| e.rec.status)))
    }

    fn burn(&self, key_id: &KeyId, now: UnixSeconds) -> Result<(), Error> {
        self.with(|i| {
            let n = i.find(key_id).ok_or(aqm_core::Error::KeyNotFound)?;
            let e = *i.index.get(n).ok_or(aqm_core::Error::KeyNotFound)?;
            let mut entry = e.entry()?;
            entry.burn(&self.policy, now)?;
            let stamp = i.stamp(Some(Transition::Burned(e.rec.tier)))?;
            let rec = Record { status: entry.status(), burned_at: entry.burned_at(), slot: NO_SLOT, stamp, ..e.rec };
            // The commit: from here on the key is burned, whatever happens next.
            i.store_record(key_id, &rec)?;
            if let Some(x) = i.index.get_mut(n) {
                x.rec = rec;
            }
            // Destroy the secret in place; a cut here is finished by the boot scrub.
            i.zero_slot(u32::from(e.rec.slot))?;
            // A retired last-resort key keeps no opens; a cut before this is finished at boot.
            if e.rec.last_resort {
                i.remove_opens(key_id)?;
            }
            Ok(())
        })
    }

    fn purge(&self, now: UnixSeconds) -> Result<PurgeReport, Error> {
        self.with(|i| {
            let mut report = PurgeReport::default();
            let mut n = 0;
            while n < i.index.len() {
                let Some(&e) = i.index.get(n) else { break };
                let transition = match e.entry()?.purge_action(&self.policy, now) {
                    PurgeAction::Keep => {
                        // `n < index.len() <= N`.
                        n = n.saturating_add(1);
                        continue;
                    }
                    PurgeAction::Expire => {
                        report.expired = report.expired.saturating_add(1);
                        Some(Transition::Expired(e.rec.tier))
                    }
                    // Counted as burned when it was burned.
                    PurgeAction::Delete => {
                        report.deleted_burned = report.deleted_burned.saturating_add(1);
                        None
                    }
                };
                // The commit: the counters move with the intent to delete.
                let meta = Meta { stamp: i.stamp(transition)?, pending: Some(e.key_id.0) };
                i.store_meta(&meta)?;
                i.delete_record(n)?;
            }
            if i.meta.pending.is_some() {
                let meta = Meta { stamp: i.stamp(None)?, pending: None };
                i.store_meta(&meta)?;
            }
            Ok(report)
        })
    }

    fn stats(&self) -> Result<VaultStats, Error> {
        self.with(|i| Ok(i.stats()))
    }

    fn open_last_resort(&self, key_id: &KeyId, digest: &OpenDigest, now: UnixSeconds) -> Result<bool, Error> {
        self.with(|i| {
            let n = i.find(key_id).ok_or(aqm_core::Error::KeyNotFound)?;
            let e = *i.index.get(n).ok_or(aqm_core::Error::KeyNotFound)?;
            let mut entry = e.entry()?;
            // A one-time key has no opens item; the core refuses it (`NotLastResort`).
            let mut opens = if e.rec.last_resort { i.load_opens(key_id)? } else { LastResortOpens::default() };
            // The core decides; a refusal writes nothing.
            match entry.open_last_resort(&mut opens, *digest, &self.policy, now)? {
                None => {
                    // The commit: one map write, the opens with the digest, stamped (no counter
                    // moves). A cut leaves the old opens or the new ones.
                    let item = OpensItem { stamp: i.stamp(None)?, opens };
                    i.store_opens(key_id, &item)?;
                    Ok(false)
                }
                Some(transition) => {
                    // The open filled the record and retires the key: committed as a burn (the
                    // BURNED record stamped with the counters after `Burned(tier)`), then the
                    // secret is zeroed and the opens dropped; a cut after the commit is finished
                    // at boot (scrub, stale opens).
                    let stamp = i.stamp(Some(transition))?;
                    let rec =
                        Record { status: entry.status(), burned_at: entry.burned_at(), slot: NO_SLOT, stamp, ..e.rec };
                    i.store_record(key_id, &rec)?;
                    if let Some(x) = i.index.get_mut(n) {
                        x.rec = rec;
                    }
                    i.zero_slot(u32::from(e.rec.slot))?;
                    i.remove_opens(key_id)?;
                    Ok(true)
                }
            }
        })
    }

    fn active_ids(&self, tier: Option<Tier>, visit: &mut dyn FnMut(KeyId)) -> Result<(), Error> {
        self.with(|i| {
            i.index
                .iter()
                .filter(|e| e.rec.status == KeyStatus::Active && tier.is_none_or(|t| e.rec.tier == t))
                .for_each(|e| visit(e.key_id));
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash::{PAGE_SIZE, RamFlash};

    #[test]
    fn a_newer_format_is_refused_naming_both_versions() {
        let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 2, 2);
        let mut mem = [0xFFu8; 4 * PAGE_SIZE];
        let v: FlashVault<_, 8> =
            FlashVault::open(RamFlash::new(&mut mem[..]), layout.clone(), Policy::DEFAULT).unwrap();
        v.recover().unwrap();
        {
            // What a later firmware would have written at its first boot.
            let mut inner = v.inner.borrow_mut();
            let i = &mut *inner;
            let newer = FormatRecord { version: FLASH_FORMAT + 1 };
            block_on(i.map.store_item(&mut i.buf.0, &FORMAT_KEY, &newer)).unwrap();
        }
        let v: FlashVault<_, 8> = FlashVault::open(v.into_flash(), layout, Policy::DEFAULT).unwrap();
        assert_eq!(v.recover(), Err(Error::FlashFormat { found: FLASH_FORMAT + 1, supported: FLASH_FORMAT }));
    }

    fn gold(key: u8) -> VaultEntry {
        let sealed =
            SealedSecret { nonce: [key; AEAD_NONCE], ciphertext: heapless::Vec::from_slice(&[key; 48]).unwrap() };
        VaultEntry::new_active(KeyId([key; 16]), Tier::Gold, CoinKind::OneTime, sealed, 1_000, 1_000_000)
    }

    #[test]
    fn counters_are_the_newest_stamp_not_a_recount() {
        let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 2, 2);
        let mut mem = [0xFFu8; 4 * PAGE_SIZE];
        let v: FlashVault<_, 8> =
            FlashVault::open(RamFlash::new(&mut mem[..]), layout.clone(), Policy::DEFAULT).unwrap();
        v.put(&gold(1)).unwrap();
        v.put(&gold(2)).unwrap();
        v.burn(&KeyId([1; 16]), 1_001).unwrap();
        let want = VaultStats { active: TierCounts([1, 0, 0]), total_burned: 1, total_expired: 0 };
        assert_eq!(v.stats().unwrap(), want);
        {
            // A stamped write with other counters and the highest number: boot believes it,
            // whatever the records say (so a step that moved them wrongly shows in the kit).
            let mut inner = v.inner.borrow_mut();
            let i = &mut *inner;
            let counters = StoredCounters { active_silver: 7, ..StoredCounters::from(want) };
            let meta = Meta { stamp: Stamp { seq: i.last.seq + 1, counters }, pending: None };
            block_on(i.map.store_item(&mut i.buf.0, &META_KEY, &meta)).unwrap();
        }
        let v: FlashVault<_, 8> = FlashVault::open(v.into_flash(), layout.clone(), Policy::DEFAULT).unwrap();
        assert_eq!(v.stats().unwrap().active, TierCounts([1, 7, 0]));
        // An older stamp does not win over a newer one.
        let v: FlashVault<_, 8> = FlashVault::open(v.into_flash(), layout, Policy::DEFAULT).unwrap();
        v.put(&gold(3)).unwrap();
        assert_eq!(v.stats().unwrap().active, TierCounts([2, 7, 0]));
    }

    #[test]
    fn a_counter_at_its_maximum_is_refused_and_nothing_is_stored() {
        let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, 2, 2);
        let mut mem = [0xFFu8; 4 * PAGE_SIZE];
        let v: FlashVault<_, 8> =
            FlashVault::open(RamFlash::new(&mut mem[..]), layout.clone(), Policy::DEFAULT).unwrap();
        v.recover().unwrap();
        {
            let mut inner = v.inner.borrow_mut();
            let i = &mut *inner;
            let counters = StoredCounters { active_gold: u32::MAX, ..StoredCounters::default() };
            let meta = Meta { stamp: Stamp { seq: 5, counters }, pending: None };
            block_on(i.map.store_item(&mut i.buf.0, &META_KEY, &meta)).unwrap();
        }
        let v: FlashVault<_, 8> = FlashVault::open(v.into_flash(), layout, Policy::DEFAULT).unwrap();
        assert_eq!(v.put(&gold(1)), Err(Error::Corrupt { what: "vault counters (at their maximum)" }));
        assert_eq!(v.status(&KeyId([1; 16])).unwrap(), None);
        let u = v.usage().unwrap();
        assert_eq!((u.live_slots, u.dead_slots), (0, 0), "no secret was written");
    }
}
