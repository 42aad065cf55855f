//! Minimal reproduction, against `sequential-storage` alone, of the bug behind issue 17 (written
//! up in firmware/README.md, "sequential-storage: no repair in fetch_all_items"): after a power
//! cut half-way through the erase that ends a page migration, `MapStorage::fetch_all_items`
//! returns `Error::Corrupted` and repairs nothing, while `fetch_item` on the same flash repairs
//! the page and succeeds. The vault works around it in `recover()`.
//!
//! This test pins the crate's current behaviour: when it fails after a `sequential-storage`
//! upgrade, the bug is fixed upstream and the workaround in `firmware/src/vault.rs` can go.

use aqm_firmware::flash::{FlashError, PAGE_SIZE, RamFlash};
use embassy_futures::block_on;
use embedded_storage::nor_flash::{ErrorType, NorFlash as _, ReadNorFlash as _};
use embedded_storage_async::nor_flash::{MultiwriteNorFlash, NorFlash, ReadNorFlash};
use sequential_storage::cache::Cache;
use sequential_storage::map::{MapConfig, MapStorage};

/// `RamFlash` behind the async traits, with the power cut in the middle of the first erase once
/// armed (half the page erased, lowest addresses first, as a byte-by-byte erase leaves it).
struct Flash {
    ram: RamFlash<Vec<u8>>,
    cut_next_erase: bool,
}

impl ErrorType for Flash {
    type Error = FlashError;
}

impl ReadNorFlash for Flash {
    const READ_SIZE: usize = 1;
    async fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        self.ram.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.ram.capacity()
    }
}

impl NorFlash for Flash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE_SIZE;
    async fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        if std::mem::take(&mut self.cut_next_erase) {
            self.ram.cut_power_after(1);
        }
        self.ram.erase(from, to)
    }
    async fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        self.ram.write(offset, bytes)
    }
}

impl MultiwriteNorFlash for Flash {}

type Map = MapStorage<
    u8,
    Flash,
    Cache<
        sequential_storage::cache::Uncached,
        sequential_storage::cache::Uncached,
        sequential_storage::cache::Uncached,
        u8,
    >,
>;

fn map(flash: Flash) -> Map {
    MapStorage::new(flash, MapConfig::new(0..3 * PAGE_SIZE as u32), Cache::new_uncached())
}

#[test]
fn fetch_all_items_does_not_repair_a_half_erased_page() {
    let mut buf = [0u8; 64];
    // The first erase a map ever does is the one that ends its first wrap-around migration.
    let mut m = map(Flash { ram: RamFlash::new(vec![0xFF; 3 * PAGE_SIZE]), cut_next_erase: true });
    // Key 0 is written once and never again, so page 0 holds its only copy; key 1 is rewritten
    // until page 2 is full and page 0 must be migrated into it and erased, and the power is cut
    // half-way through that erase.
    block_on(m.store_item(&mut buf, &0u8, &[0u32; 8])).unwrap();
    let mut n = 0u32;
    loop {
        n += 1;
        match block_on(m.store_item(&mut buf, &1u8, &[n; 8])) {
            Ok(()) => {}
            Err(sequential_storage::Error::Storage { value: FlashError::PowerLost, .. }) => break,
            Err(e) => panic!("store {n}: {e:?}"),
        }
    }
    let mut flash = m.destroy().0;
    assert!(flash.ram.power_lost(), "the cut happened during the erase");
    flash.ram.power_on();
    // Page 0: first half erased (start marker gone), second half and end marker still there.
    let raw = flash.ram.as_bytes();
    assert_eq!(raw[0], 0xFF);
    assert_eq!(raw[PAGE_SIZE - 1], 0x00);
    let snapshot = raw.to_vec();

    // The bug: iterating all items fails and leaves the flash as it was.
    let mut m = map(flash);
    assert!(matches!(
        block_on(m.fetch_all_items(&mut buf)).map(|_| ()),
        Err(sequential_storage::Error::Corrupted { .. })
    ));
    assert_eq!(m.flash().ram.as_bytes(), &snapshot[..], "fetch_all_items repaired nothing");

    // fetch_item on the same flash repairs (re-erases page 0) and both keys are intact.
    assert_eq!(block_on(m.fetch_item::<[u32; 8]>(&mut buf, &0u8)).unwrap(), Some([0; 8]));
    assert_eq!(block_on(m.fetch_item::<[u32; 8]>(&mut buf, &1u8)).unwrap(), Some([n - 1; 8]));
    let mut it = block_on(m.fetch_all_items(&mut buf)).unwrap();
    let mut keys = Vec::new();
    let mut item_buf = [0u8; 64];
    while let Some((k, _)) = block_on(it.next::<[u32; 8]>(&mut item_buf)).unwrap() {
        keys.push(k);
    }
    assert!(keys.contains(&0) && keys.contains(&1));
}
