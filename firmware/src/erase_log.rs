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

use core::ops::Range;

use embedded_storage::nor_flash::NorFlash;

const ENTRY_MAGIC: u32 = 0x4C45_5141; // "AQEL" little-endian
const HEADER: usize = 12;
/// The largest write size the journal supports (the header buffer is sized for it).
const MAX_WRITE: usize = 32;

/// Where the journal lives and which pages it covers.
#[derive(Clone, Debug)]
pub(crate) struct EraseLog {
    /// The journal page.
    page: u32,
    /// The record map's range: only erases inside it are journaled.
    covers: Range<u32>,
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
    /// A journal in page `page` for erases inside `covers`. The caller checks the layout.
    pub(crate) fn new(page: u32, covers: Range<u32>) -> Self {
        EraseLog { page, covers }
    }

    fn write_size<F: NorFlash>() -> usize {
        F::WRITE_SIZE.max(4)
    }
    fn header_len<F: NorFlash>() -> usize {
        HEADER.next_multiple_of(Self::write_size::<F>())
    }
    fn entry_len<F: NorFlash>() -> usize {
        Self::header_len::<F>() + Self::write_size::<F>()
    }
    fn slots<F: NorFlash>() -> u32 {
        (F::ERASE_SIZE / Self::entry_len::<F>()) as u32
    }
    fn slot_addr<F: NorFlash>(&self, slot: u32) -> u32 {
        self.page + slot * Self::entry_len::<F>() as u32
    }

    /// Whether this flash's geometry fits the journal.
    pub(crate) fn fits<F: NorFlash>() -> bool {
        F::WRITE_SIZE <= MAX_WRITE && MAX_WRITE.is_multiple_of(Self::write_size::<F>()) && Self::slots::<F>() >= 2
    }

    /// Whether an erase of `from..to` is one the journal covers.
    pub(crate) fn covers(&self, from: u32, to: u32) -> bool {
        self.covers.start <= from && to <= self.covers.end
    }

    fn read_slot<F: NorFlash>(&self, flash: &mut F, slot: u32) -> Result<Slot, F::Error> {
        let mut b = [0u8; 2 * MAX_WRITE];
        // `fits` (checked before a journal is made) bounds an entry by 2 · MAX_WRITE.
        let Some(b) = b.get_mut(..Self::entry_len::<F>()) else { return Ok(Slot::Garbage) };
        flash.read(self.slot_addr::<F>(slot), b)?;
        let b = &*b;
        if b.iter().all(|x| *x == 0xFF) {
            return Ok(Slot::Free);
        }
        let Some(header) = b.first_chunk::<HEADER>() else { return Ok(Slot::Garbage) };
        let word = |i: usize| header.get(i..i + 4).and_then(|w| w.try_into().ok()).map_or(0, u32::from_le_bytes);
        let target = word(4);
        let valid = word(0) == ENTRY_MAGIC
            && word(8) == crc32(&header[..8])
            && self.covers.contains(&target)
            && (target - self.covers.start).is_multiple_of(F::ERASE_SIZE as u32);
        if !valid {
            return Ok(Slot::Garbage);
        }
        let done = b.get(Self::header_len::<F>()..).is_some_and(|mark| mark.iter().any(|x| *x != 0xFF));
        Ok(Slot::Entry { target, done })
    }

    /// The slot after the last used one, and the last valid entry if it is still pending.
    fn scan<F: NorFlash>(&self, flash: &mut F) -> Result<Scan, F::Error> {
        let mut next = Some(0);
        let mut last_entry = None;
        for slot in 0..Self::slots::<F>() {
            match self.read_slot(flash, slot)? {
                Slot::Free => {}
                Slot::Garbage => next = (slot + 1 < Self::slots::<F>()).then_some(slot + 1),
                Slot::Entry { target, done } => {
                    next = (slot + 1 < Self::slots::<F>()).then_some(slot + 1);
                    last_entry = Some((slot, target, done));
                }
            }
        }
        let pending = last_entry.filter(|(_, _, done)| !done).map(|(slot, target, _)| (slot, target));
        Ok((next, pending))
    }

    fn mark_done<F: NorFlash>(&self, flash: &mut F, slot: u32) -> Result<(), F::Error> {
        let zeros = [0u8; MAX_WRITE];
        let at = self.slot_addr::<F>(slot) + Self::header_len::<F>() as u32;
        // `fits` (checked before a journal is made) bounds the write size by MAX_WRITE.
        flash.write(at, zeros.get(..Self::write_size::<F>()).unwrap_or(&zeros))
    }

    /// Boot: finish the erase a power cut interrupted, if any (the page it targeted holds
    /// nothing the map needs, see the module doc). Must run before the map reads the flash.
    pub(crate) fn finish_interrupted<F: NorFlash>(&self, flash: &mut F) -> Result<(), F::Error> {
        if let (_, Some((slot, target))) = self.scan(flash)? {
            flash.erase(target, target + F::ERASE_SIZE as u32)?;
            self.mark_done(flash, slot)?;
        }
        Ok(())
    }

    /// Erase `from..to` (whole pages inside the map), journaling each page.
    pub(crate) fn erase<F: NorFlash>(&self, flash: &mut F, from: u32, to: u32) -> Result<(), F::Error> {
        let page = F::ERASE_SIZE as u32;
        let mut at = from;
        while at < to {
            let slot = match self.scan(flash)? {
                // A pending entry here means an earlier erase failed without a reboot: finish it.
                (_, Some((slot, target))) => {
                    flash.erase(target, target + page)?;
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
            // `fits` bounds the header (12 bytes rounded up to the write size) by MAX_WRITE.
            flash.write(self.slot_addr::<F>(slot), h.get(..Self::header_len::<F>()).unwrap_or(&h))?;
            flash.erase(at, at + page)?;
            self.mark_done(flash, slot)?;
            at += page;
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
        let end = self.page + F::ERASE_SIZE as u32;
        let mut at = self.page;
        while at < end {
            let n = (end - at).min(256);
            flash.write(at, zeros.0.get(..n as usize).unwrap_or(&zeros.0))?;
            at += n;
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
