//! An erase journal for the record map: one flash page that records "about to erase page X"
//! before every erase of a record page and "done" after it, so a boot can finish an erase that
//! a power cut interrupted.
//!
//! # Why
//!
//! `sequential-storage` recognises an interrupted erase only if it leaves the page's first word
//! erased and its last word still programmed (true of a part that erases in address order). A
//! real NOR part may leave every word of an interrupted erase in any state; the page can then
//! read as *closed* or *partially open*, and the crate's repair takes it for an interrupted
//! migration: it erases the newest page and migrates the half-erased garbage into it, losing
//! records (the identity among them). Every erase the crate performs targets a page whose
//! content it no longer needs (a migrated buffer page, an incomplete partial page, a page already
//! half-erased), so finishing an interrupted erase is always right; what the crate lacks is the
//! knowledge of which page it was erasing. This journal supplies it, below the crate, in the
//! flash driver it is given.
//!
//! # Format
//!
//! The page holds entries of `H + W` bytes (`W` = the write size, at least 4; `H` = 12 bytes
//! rounded up to `W`), appended in address order:
//!
//! - a header written in one program: `ENTRY_MAGIC`, the erased page's address, and the CRC-32
//!   of those 8 bytes; a header cut half-way fails its CRC and means "the erase never started";
//! - a done block, programmed to zeros once the erase has finished. Any programmed bit means done
//!   (programming can only clear bits, and it starts only after the erase returned).
//!
//! Only the last valid entry can be pending: an erase starts only after the previous one is
//! done. When the page is full it is first programmed to zeros (so no old entry can reappear
//! as pending from a half-erase of the journal: a zero header fails its CRC), then erased.
//! A cut during that erase leaves random words; an entry made of them passes the CRC with
//! probability 2⁻³² per slot, the one residual risk (README, "Power cuts").
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use core::ops::Range;

use embedded_storage::nor_flash::NorFlash;

const ENTRY_MAGIC: u32 = 0x4C45_5141; // "AQEL" little-endian
const HEADER: usize = 12;
/// The largest write size the journal supports (the header buffer is sized for it).
const MAX_WRITE: usize = 32;

/// Where the journal lives, which pages it covers, and its geometry on the flash it was made for
/// (checked once by [`EraseLog::new`], so that every address below is inside the journal page).
#[derive(Clone, Debug)]
pub(crate) struct EraseLog {
    /// The journal page.
    page: u32,
    /// The record map's range: only erases inside it are journaled.
    covers: Range<u32>,
    /// The flash's erase size.
    page_size: u32,
    /// Bytes programmed at once: the write size, at least 4.
    write: u32,
    /// Header bytes: [`HEADER`] rounded up to `write`.
    header: u32,
    /// Entries in the page (`slots * (header + write) <= page_size`).
    slots: u32,
}

/// What a scan of the journal found: the slot a new entry goes to (`None`: the page is full),
/// and the `(slot, target page)` of an entry whose erase may not have finished.
type Scan = (Option<u32>, Option<(u32, u32)>);

enum Slot {
    Free,
    Entry { target: u32, done: bool },
    Garbage,
}

fn crc32(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32 (IEEE): a few hundred bytes at boot, no table needed.
    let mut crc = !0u32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

impl EraseLog {
    /// A journal in page `page` for erases inside `covers`, on a flash of geometry `F`; `None`
    /// if the geometry does not fit (a write size over [`MAX_WRITE`] or not dividing it, fewer
    /// than 2 entries a page) or the page does not fit the 32-bit address space. The caller
    /// checks that the page is page aligned, inside the flash and apart from the map.
    pub(crate) fn new<F: NorFlash>(page: u32, covers: Range<u32>) -> Option<Self> {
        if F::WRITE_SIZE > MAX_WRITE || !MAX_WRITE.is_multiple_of(F::WRITE_SIZE.max(4)) {
            return None;
        }
        let page_size = u32::try_from(F::ERASE_SIZE).ok()?;
        page.checked_add(page_size)?;
        let write = u32::try_from(F::WRITE_SIZE.max(4)).ok()?;
        let header = u32::try_from(HEADER).ok()?.checked_next_multiple_of(write)?;
        let slots = page_size.checked_div(header.checked_add(write)?)?;
        (slots >= 2).then_some(EraseLog { page, covers, page_size, write, header, slots })
    }

    /// The address of entry `slot` (`slot < self.slots`: inside the page, checked at `new`).
    fn slot_addr(&self, slot: u32) -> u32 {
        let entry = self.header.saturating_add(self.write);
        self.page.saturating_add(slot.saturating_mul(entry))
    }

    /// The address of entry `slot`'s done mark.
    fn done_addr(&self, slot: u32) -> u32 {
        self.slot_addr(slot).saturating_add(self.header)
    }

    /// The slot after `slot`, if the page has one.
    fn after(&self, slot: u32) -> Option<u32> {
        slot.checked_add(1).filter(|n| *n < self.slots)
    }

    /// The end of the erase that starts at `target` (one page).
    fn page_end(&self, target: u32) -> Option<u32> {
        target.checked_add(self.page_size)
    }

    /// Whether an erase of `from..to` is one the journal covers.
    pub(crate) fn covers(&self, from: u32, to: u32) -> bool {
        self.covers.start <= from && to <= self.covers.end
    }

    fn read_slot<F: NorFlash>(&self, flash: &mut F, slot: u32) -> Result<Slot, F::Error> {
        let mut b = [0u8; 2 * MAX_WRITE];
        // `new` bounds an entry (header + write) by 2 · MAX_WRITE.
        let entry = self.header.saturating_add(self.write) as usize;
        let Some(b) = b.get_mut(..entry) else { return Ok(Slot::Garbage) };
        flash.read(self.slot_addr(slot), b)?;
        let b = &*b;
        if b.iter().all(|x| *x == 0xFF) {
            return Ok(Slot::Free);
        }
        // What follows decodes bytes read from flash: a value that does not fit is garbage.
        let Some((header, rest)) = b.split_first_chunk::<HEADER>() else { return Ok(Slot::Garbage) };
        let [m0, m1, m2, m3, t0, t1, t2, t3, c0, c1, c2, c3] = *header;
        let target = u32::from_le_bytes([t0, t1, t2, t3]);
        let valid = u32::from_le_bytes([m0, m1, m2, m3]) == ENTRY_MAGIC
            && u32::from_le_bytes([c0, c1, c2, c3]) == crc32(&[m0, m1, m2, m3, t0, t1, t2, t3])
            && self.covers.contains(&target)
            && target.checked_sub(self.covers.start).is_some_and(|off| off.is_multiple_of(self.page_size))
            && self.page_end(target).is_some();
        if !valid {
            return Ok(Slot::Garbage);
        }
        // The done mark is the last `write` bytes of the entry, after the padded header.
        let pad = (self.header as usize).saturating_sub(HEADER);
        let done = rest.get(pad..).is_some_and(|mark| mark.iter().any(|x| *x != 0xFF));
        Ok(Slot::Entry { target, done })
    }

    /// The slot after the last used one, and the last valid entry if it is still pending.
    fn scan<F: NorFlash>(&self, flash: &mut F) -> Result<Scan, F::Error> {
        let mut next = Some(0);
        let mut last_entry = None;
        for slot in 0..self.slots {
            match self.read_slot(flash, slot)? {
                Slot::Free => {}
                Slot::Garbage => next = self.after(slot),
                Slot::Entry { target, done } => {
                    next = self.after(slot);
                    last_entry = Some((slot, target, done));
                }
            }
        }
        let pending = last_entry.filter(|(_, _, done)| !done).map(|(slot, target, _)| (slot, target));
        Ok((next, pending))
    }

    fn mark_done<F: NorFlash>(&self, flash: &mut F, slot: u32) -> Result<(), F::Error> {
        let zeros = [0u8; MAX_WRITE];
        // `new` bounds the write size by MAX_WRITE.
        flash.write(self.done_addr(slot), zeros.get(..self.write as usize).unwrap_or(&zeros))
    }

    /// Erase the page at `target` (an entry's target: `read_slot` checked that it ends inside
    /// the address space; a page of the map for a new entry).
    fn erase_target<F: NorFlash>(&self, flash: &mut F, target: u32) -> Result<(), F::Error> {
        flash.erase(target, self.page_end(target).unwrap_or(u32::MAX))
    }

    /// Boot: finish the erase a power cut interrupted, if any (the page it targeted holds
    /// nothing the map needs, see the module doc). Must run before the map reads the flash.
    pub(crate) fn finish_interrupted<F: NorFlash>(&self, flash: &mut F) -> Result<(), F::Error> {
        if let (_, Some((slot, target))) = self.scan(flash)? {
            self.erase_target(flash, target)?;
            self.mark_done(flash, slot)?;
        }
        Ok(())
    }

    /// Erase `from..to` (whole pages inside the map), journaling each page.
    pub(crate) fn erase<F: NorFlash>(&self, flash: &mut F, from: u32, to: u32) -> Result<(), F::Error> {
        let mut at = from;
        while at < to {
            let slot = match self.scan(flash)? {
                // A pending entry here means an earlier erase failed without a reboot: finish it.
                (_, Some((slot, target))) => {
                    self.erase_target(flash, target)?;
                    self.mark_done(flash, slot)?;
                    continue;
                }
                (Some(slot), None) => slot,
                (None, None) => {
                    self.clear(flash)?;
                    0
                }
            };
            let mut h = [0xFFu8; MAX_WRITE];
            h[0..4].copy_from_slice(&ENTRY_MAGIC.to_le_bytes());
            h[4..8].copy_from_slice(&at.to_le_bytes());
            let crc = crc32(&h[..8]);
            h[8..12].copy_from_slice(&crc.to_le_bytes());
            // `new` bounds the header (12 bytes rounded up to the write size) by MAX_WRITE.
            flash.write(self.slot_addr(slot), h.get(..self.header as usize).unwrap_or(&h))?;
            // `covers` put `at..to` inside the map, so the page ends inside it.
            let end = self.page_end(at).unwrap_or(u32::MAX);
            flash.erase(at, end)?;
            self.mark_done(flash, slot)?;
            at = end;
        }
        Ok(())
    }

    /// Empty a full journal (nothing is pending when this runs): program every word that still
    /// has a set bit to zero, so a cut in the erase after it cannot bring back an old entry
    /// without its done mark, then erase the page.
    fn clear<F: NorFlash>(&self, flash: &mut F) -> Result<(), F::Error> {
        // In chunks (one driver call each); a word is programmed at most twice between erases
        // (its entry data, then these zeros: done marks are zeros already).
        #[repr(C, align(4))]
        struct Zeros([u8; 256]);
        let zeros = Zeros([0; 256]);
        // `new` checked that the journal page ends inside the address space.
        let end = self.page_end(self.page).unwrap_or(u32::MAX);
        let mut at = self.page;
        while at < end {
            // At least one byte each round (`at < end`), at most 256.
            let n = end.saturating_sub(at).min(256);
            flash.write(at, zeros.0.get(..n as usize).unwrap_or(&zeros.0))?;
            at = at.saturating_add(n);
        }
        flash.erase(self.page, end)
    }
}

#[cfg(test)]
mod tests {
    use super::crc32;

    #[test]
    fn crc32_is_ieee() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        // A zeroed header never passes: clearing the journal relies on it.
        assert_ne!(crc32(&[0; 8]), 0);
    }
}
