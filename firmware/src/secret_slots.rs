//! The secret slab: fixed [`SLOT_SIZE`]-byte slots in whole flash pages, each holding one sealed
//! secret, and the allocator that picks the slot a new secret goes to.
//!
//! A slot is in one of three states, read from the flash and the RAM index (the vault passes
//! the [`LiveSlots`] its ACTIVE records point at):
//!
//! - **free**: every byte erased (`0xFF`), ready to be programmed;
//! - **used**: an ACTIVE record points at it;
//! - **dead**: anything else (zeroed after a burn or an expiry, or half-written and never
//!   committed). A dead slot becomes free again only when its whole page is erased.
//!
//! # Allocation ([`plan`])
//!
//! One page is kept fully erased as the **spare** (the first fully free page). A new secret goes
//! to the first free slot of the lowest page other than the spare. When only the spare has room,
//! the page with the most dead slots is *evacuated*: the vault copies its live secrets into the
//! spare (re-pointing each record, one map write each), then erases it, and the erased page is the
//! new spare — so the spare moves round the slab as pages are reclaimed, and no page is erased
//! while a record still points into it. If a power cut interrupted an evacuation there may be no
//! spare; one is then made from the page with the fewest live secrets that fit in the free slots
//! elsewhere. With no dead slot anywhere the spare itself is used (no reclaim is possible, so
//! nothing needs it); with no free and no dead slot the slab is full
//! ([`aqm_core::Error::CapacityFull`]).
//!
//! # Arithmetic
//!
//! Slot numbers come from records read back from flash, so they are outside input: a slot past
//! the slab (a damaged or foreign record) is [`Error::Corrupt`], never an address computed past
//! the slab's end. Every address is computed with checked arithmetic
//! (`clippy::arithmetic_side_effects` is denied in this module).
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use core::ops::Range;

use aqm_core::crypto::SealedSecret;
use aqm_core::crypto::sizes::{AEAD_NONCE, MAX_SEALED};
use aqm_core::{KeyId, Tier};
use embedded_storage::nor_flash::{NorFlash, NorFlashError};

use crate::Error;

/// Bytes of one secret slot: 4-byte header, 12-byte nonce, up to 80 sealed bytes.
pub const SLOT_SIZE: usize = 96;
/// Most slots a slab may have (the live-slot bitmap is built on the stack).
pub const MAX_SLOTS: usize = 2048;
/// Most pages a slab may have (the per-page counts are built on the stack).
pub(crate) const MAX_PAGES: usize = 64;

const SLOT_HEADER: usize = 4;
const SLOT_MAGIC: u8 = 0xA5;
/// Where the sealed bytes start in a slot: after the header and the nonce.
const SEALED_AT: usize = SLOT_HEADER + AEAD_NONCE;
const SLOT_SIZE_U32: u32 = SLOT_SIZE as u32;
const _: () = assert!(SEALED_AT + MAX_SEALED <= SLOT_SIZE, "a sealed secret fits one slot");

/// A slot number past the slab: what a record that points outside it is.
const OUTSIDE: Error = Error::Corrupt { what: "secret slot number (a record points outside the slab)" };
/// Counts that contradict each other: the RAM index and the flash disagree.
const ACCOUNTING: Error = Error::Corrupt { what: "slab accounting" };

fn flash_err<E: NorFlashError>(e: E) -> Error {
    Error::Flash(e.kind())
}

#[repr(C, align(4))]
struct AlignedSlot([u8; SLOT_SIZE]);

/// Which slots ACTIVE records point at: a bitmap of [`MAX_SLOTS`] bits.
pub(crate) struct LiveSlots([u32; MAX_SLOTS / 32]);

impl LiveSlots {
    /// No slot live.
    pub(crate) const fn none() -> Self {
        LiveSlots([0; MAX_SLOTS / 32])
    }

    /// Mark `slot` live. A slot past [`MAX_SLOTS`] (a damaged record) is ignored here; reading
    /// it through [`SecretSlots`] is refused as [`Error::Corrupt`].
    pub(crate) fn insert(&mut self, slot: u32) {
        let (word, bit) = (slot / 32, slot % 32);
        if let Some(w) = self.0.get_mut(word as usize) {
            *w |= 1 << bit;
        }
    }

    /// Whether an ACTIVE record points at `slot`.
    pub(crate) fn contains(&self, slot: u32) -> bool {
        let (word, bit) = (slot / 32, slot % 32);
        self.0.get(word as usize).is_some_and(|w| w & (1 << bit) != 0)
    }
}

/// What one slot holds (module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Erased.
    Free,
    /// Zeroed or never committed: reclaimed by erasing its page.
    Dead,
    /// An ACTIVE record points at it.
    Used,
}

/// The slots of one page, by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct PageCounts {
    pub(crate) free: u32,
    pub(crate) dead: u32,
    pub(crate) used: u32,
}

/// Per-page counts of the whole slab.
pub(crate) type SlabCounts = heapless::Vec<PageCounts, MAX_PAGES>;

/// What the allocator does next ([`plan`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Take the first free slot of this page.
    Take(u32),
    /// Move this page's live secrets elsewhere and erase it, then plan again.
    Evacuate(u32),
    /// No free slot and nothing to reclaim.
    Full,
}

/// The allocator's decision over the per-page counts (module doc, "Allocation"). Pure, so that
/// its every branch is tested without a flash. Ties go as they always have (flash format 2 cut
/// points depend on them): the *last* page with the most dead slots is evacuated into the spare;
/// without a spare, the *first* page with the fewest live secrets.
pub(crate) fn plan(counts: &[PageCounts], slots_per_page: u32) -> Plan {
    let page = |p: usize| u32::try_from(p).unwrap_or(u32::MAX);
    let spare = counts.iter().position(|c| c.free == slots_per_page);
    if let Some(spare) = spare
        && let Some(p) = counts.iter().enumerate().position(|(p, c)| p != spare && c.free > 0)
    {
        return Plan::Take(page(p));
    }
    let total_free = counts.iter().fold(0u32, |n, c| n.saturating_add(c.free));
    let victim = match spare {
        // Only the spare has room: the page with the most dead slots goes.
        Some(spare) => counts
            .iter()
            .enumerate()
            .filter(|(p, c)| *p != spare && c.dead > 0)
            .max_by_key(|(_, c)| c.dead)
            .map(|(p, _)| p),
        // No spare (a cut interrupted an evacuation): make one from the page with the fewest
        // live secrets that fit in the free slots of the other pages.
        None => counts
            .iter()
            .enumerate()
            .filter(|(_, c)| c.dead > 0 && c.used <= total_free.saturating_sub(c.free))
            .min_by_key(|(_, c)| c.used)
            .map(|(p, _)| p),
    };
    match victim {
        Some(v) => Plan::Evacuate(page(v)),
        // Nothing to reclaim, so no spare is needed: use what is left.
        None => counts.iter().position(|c| c.free > 0).map_or(Plan::Full, |p| Plan::Take(page(p))),
    }
}

/// The slab's geometry, checked once ([`SecretSlots::new`]): every slot number below
/// [`SecretSlots::count`] has an address inside the slab.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SecretSlots {
    /// The slab's first byte.
    start: u32,
    /// Erase size of the flash.
    page: u32,
    pages: u32,
    per_page: u32,
    /// `pages * per_page`, at most [`MAX_SLOTS`].
    count: u32,
}

impl SecretSlots {
    /// The slots of `range` on a flash of `capacity` bytes and geometry `F`. Refused
    /// ([`Error::BadLayout`]) unless a slot fits the flash's word and page sizes, the range is
    /// at least 2 whole pages inside the flash, and it has at most [`MAX_SLOTS`] slots and
    /// [`MAX_PAGES`] pages.
    pub(crate) fn new<F: NorFlash>(range: &Range<u32>, capacity: usize) -> Result<Self, Error> {
        if !SLOT_SIZE.is_multiple_of(F::WRITE_SIZE) || F::READ_SIZE > SLOT_HEADER || F::ERASE_SIZE < SLOT_SIZE {
            return Err(Error::BadLayout { what: "flash word or page size does not fit a 96-byte slot" });
        }
        let page =
            u32::try_from(F::ERASE_SIZE).map_err(|_| Error::BadLayout { what: "flash page larger than 4 GiB" })?;
        let two_pages = range.start.checked_add(page).and_then(|a| a.checked_add(page));
        if !range.start.is_multiple_of(page)
            || !range.end.is_multiple_of(page)
            || two_pages.is_none_or(|e| range.end < e)
        {
            return Err(Error::BadLayout { what: "the slab needs at least 2 whole pages" });
        }
        if range.end as usize > capacity {
            return Err(Error::BadLayout { what: "a range lies outside the flash" });
        }
        let too_big = Error::BadLayout { what: "the slab is larger than 2048 slots or 64 pages" };
        // `range.end > range.start` (checked above) and `page >= SLOT_SIZE > 0`.
        let pages = range.end.checked_sub(range.start).and_then(|n| n.checked_div(page)).ok_or(too_big)?;
        let per_page = page.checked_div(SLOT_SIZE_U32).ok_or(too_big)?;
        let count = pages.checked_mul(per_page).ok_or(too_big)?;
        if count as usize > MAX_SLOTS || pages as usize > MAX_PAGES {
            return Err(too_big);
        }
        Ok(SecretSlots { start: range.start, page, pages, per_page, count })
    }

    /// Slots in the slab.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Pages in the slab.
    #[cfg(test)]
    pub(crate) fn pages(&self) -> u32 {
        self.pages
    }

    /// Slots in one page.
    #[cfg(test)]
    pub(crate) fn per_page(&self) -> u32 {
        self.per_page
    }

    /// Live secrets the slab holds at most: every page but the spare.
    pub(crate) fn capacity(&self) -> u32 {
        // `pages >= 2`, so this never saturates; the product is at most `count`.
        self.pages.saturating_sub(1).saturating_mul(self.per_page)
    }

    /// The page `slot` lies in ([`Error::Corrupt`] for a slot past the slab).
    pub(crate) fn page_of(&self, slot: u32) -> Result<u32, Error> {
        if slot >= self.count {
            return Err(OUTSIDE);
        }
        slot.checked_div(self.per_page).ok_or(OUTSIDE)
    }

    /// The flash address of `slot`.
    pub(crate) fn addr(&self, slot: u32) -> Result<u32, Error> {
        let page = self.page_of(slot)?;
        let within = slot.checked_rem(self.per_page).ok_or(OUTSIDE)?;
        page.checked_mul(self.page)
            .and_then(|a| a.checked_add(self.start))
            .and_then(|a| a.checked_add(within.checked_mul(SLOT_SIZE_U32)?))
            .ok_or(OUTSIDE)
    }

    /// The slot numbers of `page` (empty for a page past the slab).
    pub(crate) fn slots_of(&self, page: u32) -> Range<u32> {
        if page >= self.pages {
            return 0..0;
        }
        // `page < pages`, so both products are at most `count`.
        let first = page.saturating_mul(self.per_page);
        first..first.saturating_add(self.per_page)
    }

    fn read<F: NorFlash>(&self, flash: &mut F, slot: u32) -> Result<AlignedSlot, Error> {
        let addr = self.addr(slot)?;
        let mut b = AlignedSlot([0; SLOT_SIZE]);
        flash.read(addr, &mut b.0).map_err(flash_err)?;
        Ok(b)
    }

    /// Free = erased; Used = in `live`; Dead = anything else.
    pub(crate) fn state<F: NorFlash>(&self, flash: &mut F, slot: u32, live: &LiveSlots) -> Result<SlotState, Error> {
        if slot >= self.count {
            return Err(OUTSIDE);
        }
        if live.contains(slot) {
            return Ok(SlotState::Used);
        }
        let b = self.read(flash, slot)?;
        Ok(if b.0.iter().all(|x| *x == 0xFF) { SlotState::Free } else { SlotState::Dead })
    }

    /// Every page's slots by state.
    pub(crate) fn counts<F: NorFlash>(&self, flash: &mut F, live: &LiveSlots) -> Result<SlabCounts, Error> {
        let mut all = SlabCounts::new();
        for page in 0..self.pages {
            let mut c = PageCounts::default();
            for slot in self.slots_of(page) {
                let n = match self.state(flash, slot, live)? {
                    SlotState::Free => &mut c.free,
                    SlotState::Dead => &mut c.dead,
                    SlotState::Used => &mut c.used,
                };
                // At most `per_page` per state.
                *n = n.saturating_add(1);
            }
            all.push(c).map_err(|_| ACCOUNTING)?;
        }
        Ok(all)
    }

    /// The first free slot of `page`.
    pub(crate) fn first_free_in<F: NorFlash>(
        &self,
        flash: &mut F,
        page: u32,
        live: &LiveSlots,
    ) -> Result<Option<u32>, Error> {
        for slot in self.slots_of(page) {
            if self.state(flash, slot, live)? == SlotState::Free {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// The first free slot outside page `except` (where an evacuation copies a secret to).
    pub(crate) fn first_free_outside<F: NorFlash>(
        &self,
        flash: &mut F,
        except: u32,
        live: &LiveSlots,
    ) -> Result<Option<u32>, Error> {
        for page in (0..self.pages).filter(|p| *p != except) {
            if let Some(slot) = self.first_free_in(flash, page, live)? {
                return Ok(Some(slot));
            }
        }
        Ok(None)
    }

    /// The slot a new secret goes to, if [`plan`] says one can be taken now; `Err(page)` if
    /// `page` must be evacuated first; [`aqm_core::Error::CapacityFull`] if the slab is full.
    pub(crate) fn allocate<F: NorFlash>(&self, flash: &mut F, live: &LiveSlots) -> Result<Result<u32, u32>, Error> {
        let counts = self.counts(flash, live)?;
        match plan(&counts, self.per_page) {
            Plan::Take(page) => Ok(Ok(self.first_free_in(flash, page, live)?.ok_or(ACCOUNTING)?)),
            Plan::Evacuate(page) => Ok(Err(page)),
            Plan::Full => Err(aqm_core::Error::CapacityFull { what: "vault slab" }.into()),
        }
    }

    /// Program `slot` with a sealed secret: `[magic, tier, length, key id byte 0] ‖ nonce ‖
    /// sealed bytes`, the rest left erased. The slot must be free.
    pub(crate) fn write<F: NorFlash>(
        &self,
        flash: &mut F,
        slot: u32,
        key_id: &KeyId,
        tier: Tier,
        sealed: &SealedSecret,
    ) -> Result<(), Error> {
        let addr = self.addr(slot)?;
        let ct = sealed.ciphertext.as_slice();
        let len = u8::try_from(ct.len()).map_err(|_| aqm_core::Error::BufferTooSmall)?;
        let mut b = AlignedSlot([0xFF; SLOT_SIZE]);
        let (header, rest) = b.0.split_at_mut(SLOT_HEADER);
        header.copy_from_slice(&[SLOT_MAGIC, tier.to_byte(), len, key_id.0[0]]);
        let (nonce, body) = rest.split_at_mut(AEAD_NONCE);
        nonce.copy_from_slice(&sealed.nonce);
        body.get_mut(..ct.len()).ok_or(aqm_core::Error::BufferTooSmall)?.copy_from_slice(ct);
        flash.write(addr, &b.0).map_err(flash_err)
    }

    /// Read back the sealed secret of `slot`, checking its header against the record that points
    /// at it (tier and first key id byte); a mismatch is [`Error::Corrupt`].
    pub(crate) fn load<F: NorFlash>(
        &self,
        flash: &mut F,
        slot: u32,
        key_id: &KeyId,
        tier: Tier,
    ) -> Result<SealedSecret, Error> {
        let bad = Error::Corrupt { what: "secret slot" };
        let b = self.read(flash, slot)?;
        let (header, rest) = b.0.split_at(SLOT_HEADER);
        let [magic, t, len, id0] = <[u8; SLOT_HEADER]>::try_from(header).map_err(|_| bad)?;
        if magic != SLOT_MAGIC || t != tier.to_byte() || id0 != key_id.0[0] || usize::from(len) > MAX_SEALED {
            return Err(bad);
        }
        let (nonce, body) = rest.split_at(AEAD_NONCE);
        let nonce = <[u8; AEAD_NONCE]>::try_from(nonce).map_err(|_| bad)?;
        let ciphertext = body.get(..usize::from(len)).and_then(|ct| heapless::Vec::from_slice(ct).ok()).ok_or(bad)?;
        Ok(SealedSecret { nonce, ciphertext })
    }

    /// Program `slot` to zeros in place (only the span of words that still have a set bit, so a
    /// word already zero is not programmed again: parts limit programs per word between erases).
    pub(crate) fn zero<F: NorFlash>(&self, flash: &mut F, slot: u32) -> Result<(), Error> {
        let b = self.read(flash, slot)?;
        let w = F::WRITE_SIZE;
        let nonzero = |c: &[u8]| c.iter().any(|x| *x != 0);
        let (Some(first), Some(last)) = (b.0.chunks(w).position(nonzero), b.0.chunks(w).rposition(nonzero)) else {
            return Ok(());
        };
        // `first <= last < SLOT_SIZE / w`, so the span lies inside the slot.
        let from = first.checked_mul(w).ok_or(OUTSIDE)?;
        let to = last.checked_add(1).and_then(|n| n.checked_mul(w)).ok_or(OUTSIDE)?;
        let zeros = AlignedSlot([0; SLOT_SIZE]);
        let span = zeros.0.get(from..to).ok_or(OUTSIDE)?;
        let addr = self.addr(slot)?.checked_add(u32::try_from(from).map_err(|_| OUTSIDE)?).ok_or(OUTSIDE)?;
        flash.write(addr, span).map_err(flash_err)
    }

    /// Erase `page`: its slots are free again.
    pub(crate) fn erase_page<F: NorFlash>(&self, flash: &mut F, page: u32) -> Result<(), Error> {
        if page >= self.pages {
            return Err(ACCOUNTING);
        }
        let from = page.checked_mul(self.page).and_then(|a| a.checked_add(self.start)).ok_or(OUTSIDE)?;
        let to = from.checked_add(self.page).ok_or(OUTSIDE)?;
        flash.erase(from, to).map_err(flash_err)
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::flash::{PAGE_SIZE, RamFlash};
    use std::vec;
    use std::vec::Vec;

    const PER_PAGE: u32 = (PAGE_SIZE / SLOT_SIZE) as u32;

    fn pc(free: u32, dead: u32, used: u32) -> PageCounts {
        PageCounts { free, dead, used }
    }
    fn fresh(n: u32) -> PageCounts {
        pc(n, 0, 0)
    }

    #[test]
    fn plan_keeps_the_first_fully_free_page_as_the_spare() {
        // An empty slab: page 0 is the spare, the first secret goes to page 1.
        assert_eq!(plan(&[fresh(4), fresh(4), fresh(4)], 4), Plan::Take(1));
        // Page 1 full: page 2 next; the spare is never taken while another page has room.
        assert_eq!(plan(&[fresh(4), pc(0, 1, 3), fresh(4)], 4), Plan::Take(2));
        assert_eq!(plan(&[fresh(4), pc(0, 1, 3), pc(1, 0, 3)], 4), Plan::Take(2));
        // A partly used page 0 is not a spare: page 1 (fully free) is, page 0 is filled.
        assert_eq!(plan(&[pc(2, 0, 2), fresh(4)], 4), Plan::Take(0));
    }

    #[test]
    fn plan_evacuates_the_page_with_most_dead_slots_into_the_spare() {
        assert_eq!(plan(&[pc(0, 1, 3), fresh(4), pc(0, 3, 1)], 4), Plan::Evacuate(2));
        // On a tie the last such page goes (the order flash formats 2 and 3 were tested with).
        assert_eq!(plan(&[pc(0, 2, 2), pc(0, 2, 2), fresh(4)], 4), Plan::Evacuate(1));
        // A page with no dead slot is never erased: nothing would be gained.
        assert_eq!(plan(&[pc(0, 0, 4), fresh(4), pc(0, 1, 3)], 4), Plan::Evacuate(2));
    }

    #[test]
    fn plan_without_a_spare_makes_one_from_the_page_with_fewest_live_secrets_that_fit() {
        // A cut interrupted an evacuation: page 1 got 2 copies, page 0 still has its originals.
        // Page 0's 2 live secrets fit in page 1's 2 free slots.
        assert_eq!(plan(&[pc(0, 2, 2), pc(2, 0, 2)], 4), Plan::Evacuate(0));
        // Fewest live first (page 2: 1 live), the first on a tie.
        assert_eq!(plan(&[pc(0, 1, 3), pc(2, 0, 2), pc(0, 3, 1), pc(0, 3, 1)], 4), Plan::Evacuate(2));
        // Live secrets that do not fit elsewhere: no evacuation, take what is free.
        assert_eq!(plan(&[pc(0, 1, 3), pc(1, 0, 3)], 4), Plan::Take(1));
    }

    #[test]
    fn plan_uses_the_spare_only_when_nothing_can_be_reclaimed_and_is_full_at_the_end() {
        // No dead slot anywhere: the spare cannot be needed for a reclaim, so it is filled.
        assert_eq!(plan(&[pc(0, 0, 4), fresh(4)], 4), Plan::Take(1));
        assert_eq!(plan(&[pc(0, 0, 4), pc(3, 0, 1)], 4), Plan::Take(1));
        // No free slot and no dead one: full.
        assert_eq!(plan(&[pc(0, 0, 4), pc(0, 0, 4)], 4), Plan::Full);
        // No free slot but dead ones, and no room to move live ones: full as well (the dead
        // slots come back only through an erase, which needs their page's live secrets moved).
        assert_eq!(plan(&[pc(0, 1, 3), pc(0, 2, 2)], 4), Plan::Full);
        assert_eq!(plan(&[], 4), Plan::Full);
    }

    fn sealed(k: u8, len: usize) -> SealedSecret {
        SealedSecret { nonce: [k; AEAD_NONCE], ciphertext: heapless::Vec::from_slice(&vec![k; len]).unwrap() }
    }

    fn slab(pages: u32) -> (SecretSlots, RamFlash<Vec<u8>>) {
        let flash = RamFlash::new(vec![0xFF; (pages as usize + 1) * PAGE_SIZE]);
        // One page of something else before the slab, so addresses are not slot offsets.
        let range = PAGE_SIZE as u32..(pages + 1) * PAGE_SIZE as u32;
        (SecretSlots::new::<RamFlash<Vec<u8>>>(&range, flash.as_bytes().len()).unwrap(), flash)
    }

    #[test]
    fn geometry_and_addresses() {
        let (s, _) = slab(3);
        assert_eq!((s.pages(), s.per_page(), s.count(), s.capacity()), (3, PER_PAGE, 3 * PER_PAGE, 2 * PER_PAGE));
        assert_eq!(s.addr(0).unwrap(), PAGE_SIZE as u32);
        assert_eq!(s.addr(1).unwrap(), PAGE_SIZE as u32 + 96);
        // The tail of a page that no whole slot fits in is skipped.
        assert_eq!(s.addr(PER_PAGE).unwrap(), 2 * PAGE_SIZE as u32);
        assert_eq!(s.addr(3 * PER_PAGE - 1).unwrap(), 4 * PAGE_SIZE as u32 - (PAGE_SIZE as u32 % 96) - 96);
        assert_eq!(s.slots_of(1), PER_PAGE..2 * PER_PAGE);
        assert_eq!(s.slots_of(3), 0..0);
    }

    #[test]
    fn a_slot_past_the_slab_is_a_typed_error_and_touches_nothing() {
        let (s, mut f) = slab(2);
        let before = f.as_bytes().to_vec();
        for slot in [s.count(), u32::from(u16::MAX), u32::MAX] {
            assert_eq!(s.addr(slot), Err(OUTSIDE));
            assert_eq!(s.zero(&mut f, slot), Err(OUTSIDE));
            assert_eq!(s.state(&mut f, slot, &LiveSlots::none()), Err(OUTSIDE));
            assert_eq!(s.load(&mut f, slot, &KeyId([1; 16]), Tier::Bronze), Err(OUTSIDE));
            assert_eq!(s.write(&mut f, slot, &KeyId([1; 16]), Tier::Bronze, &sealed(1, 48)), Err(OUTSIDE));
        }
        assert_eq!(s.erase_page(&mut f, 2), Err(ACCOUNTING));
        assert_eq!(f.as_bytes(), &before[..]);
        // A bitmap ignores what it cannot hold.
        let mut live = LiveSlots::none();
        live.insert(u32::MAX);
        assert!(!live.contains(u32::MAX));
    }

    #[test]
    fn layouts_that_do_not_fit_are_refused() {
        type F = RamFlash<Vec<u8>>;
        let p = PAGE_SIZE as u32;
        let cap = 80 * PAGE_SIZE;
        let refused = |r: Range<u32>| matches!(SecretSlots::new::<F>(&r, cap), Err(Error::BadLayout { .. }));
        assert!(refused(0..p), "one page");
        assert!(refused(1..2 * p + 1), "not page aligned");
        assert!(refused(2 * p..p), "backwards");
        assert!(refused(u32::MAX - p + 1..u32::MAX), "wraps");
        assert!(refused(0..81 * p), "outside the flash");
        assert!(refused(0..65 * p), "more than 64 pages");
        assert!(!refused(0..2 * p));
        assert!(!refused(0..48 * p), "48 pages x 42 slots = 2016 slots");
        assert!(refused(0..49 * p), "49 x 42 = 2058 slots > 2048");
    }

    #[test]
    fn write_load_zero_round_trip() {
        let (s, mut f) = slab(2);
        let live = LiveSlots::none();
        let id = KeyId([7; 16]);
        assert_eq!(s.state(&mut f, 5, &live).unwrap(), SlotState::Free);
        s.write(&mut f, 5, &id, Tier::Silver, &sealed(9, MAX_SEALED)).unwrap();
        assert_eq!(s.load(&mut f, 5, &id, Tier::Silver).unwrap(), sealed(9, MAX_SEALED));
        assert_eq!(s.state(&mut f, 5, &live).unwrap(), SlotState::Dead, "written but not live: dead");
        let mut live5 = LiveSlots::none();
        live5.insert(5);
        assert_eq!(s.state(&mut f, 5, &live5).unwrap(), SlotState::Used);
        // The header must match the record that points at the slot.
        let corrupt = Err(Error::Corrupt { what: "secret slot" });
        assert_eq!(s.load(&mut f, 5, &id, Tier::Gold), corrupt);
        assert_eq!(s.load(&mut f, 5, &KeyId([8; 16]), Tier::Silver), corrupt);
        assert_eq!(s.load(&mut f, 4, &id, Tier::Silver), corrupt, "an erased slot");
        // Zeroing programs only what is still set, and twice is a no-op.
        let writes = f.stats().writes;
        s.zero(&mut f, 5).unwrap();
        s.zero(&mut f, 5).unwrap();
        assert_eq!(f.stats().writes, writes + 1);
        let at = s.addr(5).unwrap() as usize;
        assert!(f.as_bytes()[at..at + SLOT_SIZE].iter().all(|b| *b == 0));
        assert_eq!(s.load(&mut f, 5, &id, Tier::Silver), corrupt);
        // Neighbours untouched.
        assert!(f.as_bytes()[at - 4..at].iter().chain(&f.as_bytes()[at + 96..at + 100]).all(|b| *b == 0xFF));
    }

    /// A slab driven as the vault drives it: `live` is what ACTIVE records point at, an
    /// evacuation copies each live secret to the first free slot outside the page, then erases.
    struct Driver {
        s: SecretSlots,
        f: RamFlash<Vec<u8>>,
        /// Slot of each live key, by key byte.
        live: std::collections::BTreeMap<u8, u32>,
        erases: u32,
    }

    impl Driver {
        fn new(pages: u32) -> Self {
            let (s, f) = slab(pages);
            Driver { s, f, live: Default::default(), erases: 0 }
        }
        fn live(&self) -> LiveSlots {
            let mut l = LiveSlots::none();
            self.live.values().for_each(|s| l.insert(*s));
            l
        }
        fn put(&mut self, k: u8) -> Result<u32, Error> {
            for _ in 0..3 {
                let live = self.live();
                match self.s.allocate(&mut self.f, &live)? {
                    Ok(slot) => {
                        self.s.write(&mut self.f, slot, &KeyId([k; 16]), Tier::Bronze, &sealed(k, 48))?;
                        assert!(self.live.insert(k, slot).is_none());
                        return Ok(slot);
                    }
                    Err(page) => {
                        let moving: Vec<(u8, u32)> = self
                            .live
                            .iter()
                            .filter(|(_, s)| self.s.page_of(**s).unwrap() == page)
                            .map(|(k, s)| (*k, *s))
                            .collect();
                        for (k, from) in moving {
                            let live = self.live();
                            let to = self.s.first_free_outside(&mut self.f, page, &live)?.unwrap();
                            let secret = self.s.load(&mut self.f, from, &KeyId([k; 16]), Tier::Bronze)?;
                            self.s.write(&mut self.f, to, &KeyId([k; 16]), Tier::Bronze, &secret)?;
                            self.live.insert(k, to);
                        }
                        self.s.erase_page(&mut self.f, page)?;
                        self.erases += 1;
                    }
                }
            }
            panic!("no slot after three plans")
        }
        fn burn(&mut self, k: u8) {
            let slot = self.live.remove(&k).unwrap();
            self.s.zero(&mut self.f, slot).unwrap();
        }
        fn check(&mut self) {
            for (k, slot) in self.live.clone() {
                assert_eq!(self.s.load(&mut self.f, slot, &KeyId([k; 16]), Tier::Bronze).unwrap(), sealed(k, 48));
            }
        }
    }

    #[test]
    fn allocation_fills_every_page_but_the_spare_then_is_full() {
        let mut d = Driver::new(3);
        let mut slots = Vec::new();
        for k in 0..2 * PER_PAGE as u8 {
            slots.push(d.put(k).unwrap());
        }
        // In order, pages 1 and 2; page 0 (the spare) untouched.
        assert_eq!(slots, (PER_PAGE..3 * PER_PAGE).collect::<Vec<_>>());
        // Nothing to reclaim: the spare is used last, slot by slot.
        for k in 0..PER_PAGE as u8 {
            assert_eq!(d.put(100 + k).unwrap(), u32::from(k));
        }
        let before = d.f.as_bytes().to_vec();
        assert_eq!(d.put(250), Err(Error::Core(aqm_core::Error::CapacityFull { what: "vault slab" })));
        assert_eq!(d.f.as_bytes(), &before[..], "a full slab writes nothing");
        d.check();
    }

    #[test]
    fn dead_slots_are_reused_after_their_page_is_erased_and_the_spare_moves_round() {
        let mut d = Driver::new(3);
        for k in 0..2 * PER_PAGE as u8 {
            d.put(k).unwrap();
        }
        // Two dead slots in page 2, one in page 1.
        d.burn(PER_PAGE as u8);
        d.burn(PER_PAGE as u8 + 1);
        d.burn(0);
        // Only the spare (page 0) has room: page 2 (2 dead) is evacuated into it and erased.
        let slot = d.put(200).unwrap();
        assert_eq!(d.erases, 1);
        let live = d.live();
        let counts = d.s.counts(&mut d.f, &live).unwrap();
        // Page 2 is the new spare; page 0 got page 2's live secrets and the new one.
        assert_eq!(counts[2], pc(PER_PAGE, 0, 0));
        assert_eq!(counts[0], pc(1, 0, PER_PAGE - 1));
        assert_eq!(d.s.page_of(slot).unwrap(), 0);
        d.check();
        // Round and round: burning the oldest secret and minting a new one, again and again
        // (coins are opened roughly in the order they were handed out), never runs out, every
        // page serves as the spare in turn, and each erase reclaims dead slots.
        let mut order: std::collections::VecDeque<u8> = d.live.keys().copied().collect();
        order.retain(|k| *k != 200);
        order.push_back(200);
        let mut next = 0u8;
        let mut spares = std::collections::BTreeSet::new();
        for round in 0..400u32 {
            d.burn(order.pop_front().unwrap());
            while d.live.contains_key(&next) {
                next = next.wrapping_add(1);
            }
            d.put(next).unwrap_or_else(|e| panic!("round {round}: {e}"));
            order.push_back(next);
            let live = d.live();
            let counts = d.s.counts(&mut d.f, &live).unwrap();
            spares.extend(counts.iter().position(|c| c.free == PER_PAGE));
            assert_eq!(counts.iter().map(|c| c.used).sum::<u32>(), d.live.len() as u32);
        }
        assert_eq!(spares.len(), 3, "every page was the spare at some point: {spares:?}");
        assert!(d.erases > 5);
        d.check();
    }

    #[test]
    fn an_interrupted_evacuation_leaves_no_spare_and_the_allocator_makes_one() {
        let mut d = Driver::new(2);
        for k in 0..PER_PAGE as u8 {
            d.put(k).unwrap();
        }
        // Page 1 full; burn two, then copy three live secrets into page 0 as an evacuation
        // would, without re-pointing them or erasing page 1 (the cut): page 0 is no spare.
        d.burn(0);
        d.burn(1);
        let live = d.live();
        for (i, k) in [2u8, 3, 4].into_iter().enumerate() {
            let from = d.live[&k];
            let secret = d.s.load(&mut d.f, from, &KeyId([k; 16]), Tier::Bronze).unwrap();
            d.s.write(&mut d.f, i as u32, &KeyId([k; 16]), Tier::Bronze, &secret).unwrap();
        }
        // The copies are dead (no record points at them), the originals live.
        let counts = d.s.counts(&mut d.f, &live).unwrap();
        assert_eq!(counts[0], pc(PER_PAGE - 3, 3, 0));
        assert_eq!(counts[1], pc(0, 2, PER_PAGE - 2));
        // Page 1's live secrets do not fit in page 0's free slots, page 0 has none: page 0 is
        // made the spare again by erasing it, then page 1 is evacuated into it.
        assert_eq!(plan(&counts, PER_PAGE), Plan::Evacuate(0));
        d.put(250).unwrap();
        d.check();
        assert_eq!(d.live.len(), PER_PAGE as usize - 1);
    }
}
