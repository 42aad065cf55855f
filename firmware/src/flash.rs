//! An emulated NOR flash in RAM, with power cuts on demand.
//!
//! [`RamFlash`] behaves like the internal flash of a Cortex-M part (nRF52840 geometry by default):
//! 4 KiB erase pages, 4-byte words, erased state `0xFF`, and programming can only clear bits
//! (1 → 0). A write that would need a 0 → 1 transition is refused with
//! [`FlashError::NotErased`], so a layout bug shows up as an error instead of silently AND-ing
//! bytes. It serves three purposes:
//!
//! - the flash of the QEMU board, which has no flash controller the firmware could use;
//! - the host tests, including the power-fail test: [`RamFlash::cut_power_after`] makes the
//!   k-th following write or erase stop part-way and every later operation fail until
//!   [`RamFlash::power_on`], like a board that lost power and rebooted. What the cut operation
//!   leaves is the [`CutModel`]: a clean prefix ([`CutModel::Prefix`], the default), or any
//!   state in each word it touched ([`CutModel::AnyState`]), as a real NOR part may leave a word
//!   whose programming or erase was interrupted;
//! - the backing image of the host's file-backed flash ([`FileFlash`](crate::host::FileFlash), feature `std`).
#![cfg_attr(not(test), deny(clippy::arithmetic_side_effects))]

use crate::erase_log::EraseLog;
use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};

/// Erase page size of the emulated flash (nRF52840: 4 KiB).
pub const PAGE_SIZE: usize = 4096;
/// Program granularity of the emulated flash (nRF52840: one 32-bit word).
pub const WORD_SIZE: usize = 4;

/// Why an emulated flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashError {
    /// Offset or length not aligned to the word or page size.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// A write would have to turn a 0 bit back into 1: the word was not erased first.
    NotErased {
        /// Address of the offending byte.
        address: u32,
    },
    /// The emulated power was cut; nothing works until [`RamFlash::power_on`].
    PowerLost,
    /// The file behind a file-backed flash could not be written.
    Backing,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotErased { .. } | FlashError::PowerLost | FlashError::Backing => NorFlashErrorKind::Other,
        }
    }
}

impl core::fmt::Display for FlashError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FlashError::NotAligned => f.write_str("flash access not aligned to the word or page size"),
            FlashError::OutOfBounds => f.write_str("flash access outside the device"),
            FlashError::NotErased { address } => write!(f, "flash word at {address:#x} written without an erase"),
            FlashError::PowerLost => f.write_str("power lost: reboot the device"),
            FlashError::Backing => f.write_str("the flash image file could not be written: check the disk"),
        }
    }
}

/// What a write or erase interrupted by a power cut leaves behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CutModel {
    /// Half the operation, rounded down to whole words, is done in address order; the rest is
    /// untouched. Matches parts that program and erase word by word in order (and
    /// `sequential-storage`'s own mock flash).
    #[default]
    Prefix,
    /// Every word the operation covers is left, independently, untouched, done, or holding an
    /// arbitrary value (for a write: any value reachable by clearing bits of the old one, since
    /// programming never sets a bit; for an erase: any value at all). Words outside the
    /// operation are never touched. `seed` drives the choices, so a failing run replays.
    AnyState {
        /// Seed of the emulator's own generator (splitmix64).
        seed: u64,
    },
}

/// Counters of the operations a [`RamFlash`] performed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlashStats {
    /// Write operations.
    pub writes: u64,
    /// Erase operations (one per call, whatever its length).
    pub erases: u64,
    /// Bytes programmed.
    pub bytes_written: u64,
}

/// An emulated NOR flash over any byte buffer (a `static mut` array on a board, a `Vec` on a
/// host). The buffer's length must be a multiple of [`PAGE_SIZE`].
///
/// ```
/// use aqm_firmware::flash::{FlashError, RamFlash, PAGE_SIZE};
/// use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
/// let mut flash = RamFlash::new(vec![0xFF; 2 * PAGE_SIZE]);
/// flash.write(0, &[0x0F, 0xF0, 0x00, 0xFF]).unwrap();
/// // Programming only clears bits; setting one needs an erase.
/// assert_eq!(flash.write(0, &[0xFF, 0xFF, 0xFF, 0xFF]), Err(FlashError::NotErased { address: 0 }));
/// flash.erase(0, PAGE_SIZE as u32).unwrap();
/// let mut word = [0u8; 4];
/// flash.read(0, &mut word).unwrap();
/// assert_eq!(word, [0xFF; 4]);
/// ```
#[derive(Debug)]
pub struct RamFlash<B> {
    mem: B,
    cut_after: Option<u32>,
    powered: bool,
    stats: FlashStats,
    model: CutModel,
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> RamFlash<B> {
    /// Wrap a buffer as flash. Its current content is the flash content (all `0xFF` = erased).
    pub fn new(mem: B) -> Self {
        RamFlash { mem, cut_after: None, powered: true, stats: FlashStats::default(), model: CutModel::Prefix }
    }

    /// Choose what an interrupted operation leaves (see [`CutModel`]).
    pub fn set_cut_model(&mut self, model: CutModel) {
        self.model = model;
    }

    /// The model in use.
    pub fn cut_model(&self) -> CutModel {
        self.model
    }

    /// Cut the power during the `ops`-th write or erase from now (1 = the next one): that
    /// operation is left half done and every operation after it fails with
    /// [`FlashError::PowerLost`] until [`RamFlash::power_on`].
    pub fn cut_power_after(&mut self, ops: u32) {
        self.cut_after = Some(ops.max(1));
    }

    /// Restore power (a reboot) and cancel any planned cut.
    pub fn power_on(&mut self) {
        self.powered = true;
        self.cut_after = None;
    }

    /// Whether a planned cut has happened.
    pub fn power_lost(&self) -> bool {
        !self.powered
    }

    /// Operation counters.
    pub fn stats(&self) -> FlashStats {
        self.stats
    }

    /// The raw content (for tests and persistence).
    pub fn as_bytes(&self) -> &[u8] {
        self.mem.as_ref()
    }

    /// Give the buffer back.
    pub fn into_inner(self) -> B {
        self.mem
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<core::ops::Range<usize>, FlashError> {
        if !self.powered {
            return Err(FlashError::PowerLost);
        }
        let start = offset as usize;
        let end = start.checked_add(len).ok_or(FlashError::OutOfBounds)?;
        if end > self.mem.as_ref().len() {
            return Err(FlashError::OutOfBounds);
        }
        if !start.is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(FlashError::NotAligned);
        }
        Ok(start..end)
    }

    /// Count one write/erase; `true` if the power goes during this one.
    fn tick(&mut self) -> bool {
        match self.cut_after {
            Some(1) => {
                self.cut_after = None;
                self.powered = false;
                true
            }
            Some(n) => {
                self.cut_after = Some(n.saturating_sub(1));
                false
            }
            None => false,
        }
    }

    /// The next value of the [`CutModel::AnyState`] generator (splitmix64); it advances the
    /// seed so that successive cuts differ.
    fn next_random(&mut self) -> u64 {
        let CutModel::AnyState { seed } = &mut self.model else { return 0 };
        *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Leave the words of `range` as an interrupted operation would: `done(old, word index)`
    /// is the word's value had the operation finished; `any(old, random)` an arbitrary value.
    fn leave_half_done(
        &mut self,
        range: core::ops::Range<usize>,
        done: impl Fn(&[u8], usize) -> [u8; WORD_SIZE],
        any: impl Fn(&[u8], u32) -> [u8; WORD_SIZE],
    ) {
        // `check` made `range` word aligned and inside the memory, so every word's bounds are.
        let words = range.len().div_euclid(WORD_SIZE);
        for w in 0..words {
            let at = range.start.saturating_add(w.saturating_mul(WORD_SIZE));
            let word = at..at.saturating_add(WORD_SIZE);
            let old: [u8; WORD_SIZE] =
                self.mem.as_ref().get(word.clone()).and_then(|w| w.try_into().ok()).unwrap_or([0xFF; WORD_SIZE]);
            let new = match self.model {
                CutModel::Prefix => {
                    if w < words.div_euclid(2) {
                        done(&old, w)
                    } else {
                        old
                    }
                }
                CutModel::AnyState { .. } => {
                    let r = self.next_random();
                    match r % 3 {
                        0 => old,
                        1 => done(&old, w),
                        _ => any(&old, (r >> 32) as u32),
                    }
                }
            };
            if let Some(word) = self.mem.as_mut().get_mut(word) {
                word.copy_from_slice(&new);
            }
        }
    }
}

/// The bitwise AND of the first word of `a` and of `b` (zeros where either is short).
fn and_word(a: &[u8], b: &[u8]) -> [u8; WORD_SIZE] {
    let mut out = [0u8; WORD_SIZE];
    for ((o, x), y) in out.iter_mut().zip(a).zip(b) {
        *o = x & y;
    }
    out
}

impl<B> ErrorType for RamFlash<B> {
    type Error = FlashError;
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> ReadNorFlash for RamFlash<B> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let r = self.check(offset, bytes.len(), 1)?;
        bytes.copy_from_slice(self.mem.as_ref().get(r).ok_or(FlashError::OutOfBounds)?);
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.as_ref().len()
    }
}

impl<B: AsRef<[u8]> + AsMut<[u8]>> NorFlash for RamFlash<B> {
    const WRITE_SIZE: usize = WORD_SIZE;
    const ERASE_SIZE: usize = PAGE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let len = (to as usize).checked_sub(from as usize).ok_or(FlashError::OutOfBounds)?;
        let r = self.check(from, len, PAGE_SIZE)?;
        self.stats.erases = self.stats.erases.saturating_add(1);
        if self.tick() {
            self.leave_half_done(r, |_, _| [0xFF; WORD_SIZE], |_, any| any.to_le_bytes());
            return Err(FlashError::PowerLost);
        }
        self.mem.as_mut().get_mut(r).ok_or(FlashError::OutOfBounds)?.fill(0xFF);
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let r = self.check(offset, bytes.len(), WORD_SIZE)?;
        let mem = self.mem.as_ref().get(r.clone()).ok_or(FlashError::OutOfBounds)?;
        if let Some(i) = mem.iter().zip(bytes).position(|(old, new)| old & new != *new) {
            // `check` put the whole write inside the memory, so this address is inside it too.
            return Err(FlashError::NotErased { address: offset.saturating_add(i as u32) });
        }
        self.stats.writes = self.stats.writes.saturating_add(1);
        if self.tick() {
            // Counted as half the operation, whatever the model left in it.
            let half = bytes.len().div_euclid(2 * WORD_SIZE).saturating_mul(WORD_SIZE);
            self.stats.bytes_written = self.stats.bytes_written.saturating_add(half as u64);
            self.leave_half_done(
                r,
                |old, w| and_word(old, bytes.get(w.saturating_mul(WORD_SIZE)..).unwrap_or_default()),
                // Programming only clears bits: whatever it left is a subset of the old bits.
                |old, any| and_word(old, &any.to_le_bytes()),
            );
            return Err(FlashError::PowerLost);
        }
        self.stats.bytes_written = self.stats.bytes_written.saturating_add(bytes.len() as u64);
        for (m, b) in self.mem.as_mut().get_mut(r).ok_or(FlashError::OutOfBounds)?.iter_mut().zip(bytes) {
            *m &= *b;
        }
        Ok(())
    }
}

// Programming clears bits and never needs an erase for that, so a word may be written again
// as long as the new value only clears bits (checked in `write`). Real parts limit how often a
// word may be programmed between erases (nRF52840: twice); the vault programs each word at
// most twice in normal operation (data, then zeros).
impl<B: AsRef<[u8]> + AsMut<[u8]>> MultiwriteNorFlash for RamFlash<B> {}

/// Lets `sequential-storage` (whose API is async) use a blocking [`NorFlash`]. Every future it
/// returns is ready on its first poll. With an erase journal, every erase of a record page goes
/// through it (see [`crate::erase_log`]).
#[derive(Debug)]
pub(crate) struct BlockingAsync<F> {
    pub(crate) flash: F,
    pub(crate) log: Option<EraseLog>,
}

impl<F: ErrorType> ErrorType for BlockingAsync<F> {
    type Error = F::Error;
}

impl<F: ReadNorFlash> embedded_storage_async::nor_flash::ReadNorFlash for BlockingAsync<F> {
    const READ_SIZE: usize = F::READ_SIZE;

    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.flash.read(offset, bytes)
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl<F: NorFlash> embedded_storage_async::nor_flash::NorFlash for BlockingAsync<F> {
    const WRITE_SIZE: usize = F::WRITE_SIZE;
    const ERASE_SIZE: usize = F::ERASE_SIZE;

    async fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        match &self.log {
            Some(log) if log.covers(from, to) => log.erase(&mut self.flash, from, to),
            _ => self.flash.erase(from, to),
        }
    }

    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.flash.write(offset, bytes)
    }
}

impl<F: MultiwriteNorFlash> embedded_storage_async::nor_flash::MultiwriteNorFlash for BlockingAsync<F> {}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::vec;

    #[test]
    fn power_cut_leaves_half_a_write_and_blocks_until_reboot() {
        let mut f = RamFlash::new(vec![0xFF; 2 * PAGE_SIZE]);
        f.cut_power_after(2);
        f.write(0, &[0; 8]).unwrap();
        assert_eq!(f.write(8, &[0; 8]), Err(FlashError::PowerLost));
        assert_eq!(&f.as_bytes()[8..16], &[0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF]);
        let mut b = [0u8; 4];
        assert_eq!(f.read(0, &mut b), Err(FlashError::PowerLost));
        f.power_on();
        f.read(0, &mut b).unwrap();
        f.cut_power_after(1);
        assert_eq!(f.erase(0, PAGE_SIZE as u32), Err(FlashError::PowerLost));
        assert_eq!(f.as_bytes()[0], 0xFF);
        assert_eq!(f.as_bytes()[PAGE_SIZE - 4], 0xFF);
        assert_eq!(f.as_bytes()[PAGE_SIZE / 2 - 1], 0xFF);
        f.power_on();
        assert_eq!(f.write(2, &[0; 4]), Err(FlashError::NotAligned));
        assert_eq!(f.write(2 * PAGE_SIZE as u32, &[0; 4]), Err(FlashError::OutOfBounds));
        assert_eq!(f.stats().erases, 1);
    }

    #[test]
    fn any_state_cut_stays_inside_the_operation_and_never_sets_a_programmed_bit() {
        for seed in 0..50 {
            let mut f = RamFlash::new(vec![0xFF; 2 * PAGE_SIZE]);
            f.set_cut_model(CutModel::AnyState { seed });
            f.write(0, &[0x5A; 64]).unwrap();
            f.cut_power_after(1);
            assert_eq!(f.write(64, &[0x00; 64]), Err(FlashError::PowerLost));
            assert!(f.as_bytes()[..64].iter().all(|b| *b == 0x5A), "outside the write");
            assert!(f.as_bytes()[128..].iter().all(|b| *b == 0xFF), "outside the write");
            f.power_on();
            f.cut_power_after(1);
            assert_eq!(f.write(0, &[0x00; 64]), Err(FlashError::PowerLost));
            // Programming only clears bits: every byte is a subset of 0x5A.
            assert!(f.as_bytes()[..64].iter().all(|b| b & !0x5A == 0));
            f.power_on();
            f.write(PAGE_SIZE as u32, &[0; 16]).unwrap();
            f.cut_power_after(1);
            assert_eq!(f.erase(0, PAGE_SIZE as u32), Err(FlashError::PowerLost));
            assert!(f.as_bytes()[PAGE_SIZE..PAGE_SIZE + 16].iter().all(|b| *b == 0), "outside the erase");
        }
    }
}
