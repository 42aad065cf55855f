//! AQM firmware for the nRF52840 (pinout of the nRF52840-DK).
//!
//! - Vault: the last 64 KiB of the internal flash through the NVMC (`nrf52840-hal`'s `Nvmc`,
//!   an `embedded-storage` `MultiwriteNorFlash`: 4 KiB pages, 32-bit words).
//! - Device key: 32 bytes from the hardware RNG, written once to the page before the vault.
//!   It is readable with a debugger unless APPROTECT is enabled: enable it on a production part.
//! - RNG: ChaCha20 seeded with 32 bytes of the on-chip hardware TRNG (`RNG` peripheral).
//! - Serial protocol on UARTE0 at 115200 baud: TX P0.06, RX P0.08 (the DK's USB virtual COM port).
//! - Activity LED: LED1 (P0.13, active low). Approve button: Button 1 (P0.11, active low); an
//!   open or a re-key signature waits up to 10 s for it.
//! - Logs: `defmt` over RTT (`probe-rs run` prints them). Secrets are never logged.
#![no_std]
#![no_main]

use aqm_core::Policy;
use aqm_core::crypto::DeviceKey;
use aqm_firmware::{Button, Device, FlashVault, VaultLayout};
use cortex_m_rt::entry;
use defmt_rtt as _;
use embedded_hal::digital::OutputPin;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use hal::gpio::{Input, Level, Output, Pin, PullUp, PushPull};
use hal::pac::{NVMC, UARTE0};
use hal::uarte::{Baudrate, Parity, Pins, Uarte};
use nrf52840_hal as hal;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use static_cell::StaticCell;

const PAGE: u32 = 4096;
/// Start of the key page; the vault follows it.
const STORAGE_BASE: usize = 0x000E_F000;
const STORAGE_LEN: usize = 17 * PAGE as usize;
const KEY_MARKER: [u8; 4] = *b"AQMk";
const KEYS: usize = 256;

type Flash = hal::nvmc::Nvmc<NVMC>;
type Board = Device<Flash, KEYS, ChaCha20Rng, ActiveLow<Pin<Output<PushPull>>>, Button<Pin<Input<PullUp>>, hal::Delay>>;

static DEVICE: StaticCell<Board> = StaticCell::new();

/// An LED wired to light when its pin is low.
struct ActiveLow<P>(P);

impl<P: OutputPin> embedded_hal::digital::ErrorType for ActiveLow<P> {
    type Error = P::Error;
}

impl<P: OutputPin> OutputPin for ActiveLow<P> {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        self.0.set_high()
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        self.0.set_low()
    }
}

/// UARTE0 as an `embedded-io` 0.7 port (EasyDMA: buffers must be in RAM, which the firmware's
/// frame buffers are).
struct Serial(Uarte<UARTE0>);

impl embedded_io::ErrorType for Serial {
    type Error = embedded_io::ErrorKind;
}

impl embedded_io::Read for Serial {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let Some(first) = buf.first_mut() else { return Ok(0) };
        let mut b = [0u8; 1];
        self.0.read(&mut b).map_err(|_| embedded_io::ErrorKind::Other)?;
        *first = b[0];
        Ok(1)
    }
}

impl embedded_io::Write for Serial {
    fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        for chunk in buf.chunks(4096) {
            self.0.write(chunk).map_err(|_| embedded_io::ErrorKind::Other)?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        Ok(())
    }
}

// No heap: see `aqm_firmware::NoHeap` for why an allocator must exist at all.
#[global_allocator]
static HEAP: aqm_firmware::NoHeap = aqm_firmware::NoHeap;

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    defmt::error!("panic");
    cortex_m::asm::udf()
}

fn storage() -> &'static mut [u8] {
    #[allow(unsafe_code)]
    // SAFETY: 0x000E_F000..0x0010_0000 is internal flash that memory.x keeps out of the image;
    // this function is called once, so the slice is the only reference to it, and the NVMC
    // driver that owns it is the only writer.
    unsafe {
        core::slice::from_raw_parts_mut(STORAGE_BASE as *mut u8, STORAGE_LEN)
    }
}

/// The device key from the key page, created from the TRNG on first boot. The marker is written
/// after the key, so a cut in between leaves no marker and the page is simply redone (no vault
/// data exists yet at that point).
fn device_key(flash: &mut Flash, trng: &mut hal::Rng) -> Option<DeviceKey> {
    let mut page = [0u8; 36];
    flash.read(0, &mut page).ok()?;
    if page[32..36] != KEY_MARKER {
        flash.erase(0, PAGE).ok()?;
        let mut key = [0u8; 36];
        trng.random(&mut key[..32]);
        flash.write(0, &key[..32]).ok()?;
        flash.write(32, &KEY_MARKER).ok()?;
        flash.read(0, &mut page).ok()?;
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(&page[..32]);
    Some(DeviceKey::from_bytes(key))
}

fn halt(what: &str) -> ! {
    defmt::error!("{=str}", what);
    loop {
        cortex_m::asm::wfi();
    }
}

#[inline(never)]
fn boot() -> (&'static mut Board, Serial) {
    let (Some(p), Some(cp)) = (hal::pac::Peripherals::take(), cortex_m::Peripherals::take()) else {
        halt("peripherals taken twice")
    };
    let port0 = hal::gpio::p0::Parts::new(p.P0);
    let led = ActiveLow(port0.p0_13.into_push_pull_output(Level::High).degrade());
    let button = Button::new(port0.p0_11.into_pullup_input().degrade(), hal::Delay::new(cp.SYST), 10_000);
    let pins = Pins {
        txd: port0.p0_06.into_push_pull_output(Level::High).degrade(),
        rxd: port0.p0_08.into_floating_input().degrade(),
        cts: None,
        rts: None,
    };
    let serial = Serial(Uarte::new(p.UARTE0, pins, Parity::EXCLUDED, Baudrate::BAUD115200));

    let mut trng = hal::Rng::new(p.RNG);
    let mut seed = [0u8; 32];
    trng.random(&mut seed);
    let mut flash = hal::nvmc::Nvmc::new(p.NVMC, storage());
    let Some(key) = device_key(&mut flash, &mut trng) else { halt("device key page unusable") };
    // After the key page: 4 record pages, 11 slot pages, and the record map's erase journal in
    // the last page (0xFF000), so a cut erase is finished at boot whatever state the NVMC left
    // the page in. The vault range is the one flash format v1 used; a v1 vault is refused by
    // its format check (no format record), naming both versions.
    let layout = VaultLayout::contiguous(PAGE, PAGE, 4, 11).with_erase_log(16 * PAGE);
    let Ok(vault) = FlashVault::open(flash, layout, Policy::DEFAULT) else { halt("vault layout refused") };
    match Device::new(vault, key, ChaCha20Rng::from_seed(seed), led, button) {
        Ok(d) => (DEVICE.init(d), serial),
        Err(e) => {
            defmt::error!("boot failed: {}", e);
            halt("device boot failed")
        }
    }
}

#[entry]
fn main() -> ! {
    let (device, mut serial) = boot();
    defmt::info!("aqm: ready on UARTE0");
    loop {
        match device.serve(&mut serial) {
            Ok(kind) => defmt::info!("served {}", kind),
            Err(e) => defmt::warn!("serial: {}", e),
        }
    }
}
