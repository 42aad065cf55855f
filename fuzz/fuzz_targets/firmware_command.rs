//! The firmware's command handler on arbitrary request frames: a device booted on an emulated
//! flash holding an identity and one coin per tier (the fixture of `aqm_fuzz::firmware`) reads
//! the input as its serial stream and answers every frame. Never panic; every response frame
//! decodes; afterwards the vault's counters equal a recount of its active keys, and a reboot on
//! the same flash (the index rebuilt from flash) finds the same counters and keys.
#![no_main]

use std::sync::LazyLock;

use aqm_core::Tier;
use aqm_core::store::VaultStore;
use aqm_fuzz::firmware::{FirmwareFixture, FuzzDevice, boot, serve_all};
use libfuzzer_sys::fuzz_target;

static FIXTURE: LazyLock<FirmwareFixture> = LazyLock::new(FirmwareFixture::new);

fn active(dev: &FuzzDevice) -> [Vec<aqm_core::KeyId>; 3] {
    Tier::ALL.map(|t| {
        let mut ids = Vec::new();
        dev.vault().active_ids(Some(t), &mut |id| ids.push(id)).expect("lists");
        ids.sort();
        ids
    })
}

fuzz_target!(|data: &[u8]| {
    let mut dev = boot(FIXTURE.flash.clone(), 3).expect("the fixture boots");
    let user = dev.identity().user_id();
    serve_all(&mut dev, data);
    let stats = dev.vault().stats().expect("stats");
    let ids = active(&dev);
    for (t, ids) in Tier::ALL.into_iter().zip(&ids) {
        assert_eq!(stats.active.get(t) as usize, ids.len(), "{t} counter vs recount");
    }
    let flash = dev.into_vault().into_flash().into_inner();
    let again = boot(flash, 4).expect("the device reboots on its own flash");
    assert_eq!(again.identity().user_id(), user, "identity kept");
    assert_eq!(again.vault().stats().expect("stats"), stats, "counters survive a reboot");
    assert_eq!(active(&again), ids, "active keys survive a reboot");
});
