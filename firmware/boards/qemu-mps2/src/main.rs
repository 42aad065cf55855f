//! AQM firmware for QEMU's `mps2-an386` (Cortex-M4F).
//!
//! - The vault's NOR flash is emulated in RAM ([`aqm_firmware::flash::RamFlash`], nRF52840
//!   geometry) over 64 KiB of the board's PSRAM, which the linker map leaves alone. It starts
//!   erased at every boot: the emulator has no persistent flash.
//! - The serial protocol runs on UART0 (CMSDK APB UART at 0x4000_4000); run QEMU with
//!   `-serial tcp:127.0.0.1:PORT,server=on,wait=on` and drive it with the host side.
//! - The activity LED is LED0 of the FPGA I/O block (0x4002_8000).
//! - **RNG: not a hardware TRNG.** The machine has none. The host injects 32 bytes from its own
//!   CSPRNG (`/dev/urandom`) at 0x21FF_F000 with QEMU's loader device
//!   (`-device loader,file=seed.bin,addr=0x21fff000,force-raw=on`); they seed ChaCha20. The
//!   board refuses to start without them. Anyone who controls the emulator knows the seed: this
//!   board is for testing the firmware, never for real keys.
//! - Semihosting prints the stack high-water mark after boot and after each command, and exits
//!   QEMU with status 0 on a `Shutdown` request.
#![no_std]
#![no_main]

mod stack;
mod uart;

use aqm_core::Policy;
use aqm_core::crypto::DeviceKey;
use aqm_firmware::flash::{PAGE_SIZE, RamFlash};
use aqm_firmware::protocol::CommandKind;
use aqm_firmware::{Device, FlashVault, NoButton, VaultLayout};
use cortex_m_rt::entry;
use cortex_m_semihosting::{debug, hprintln};
use embedded_hal::digital::OutputPin;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use static_cell::StaticCell;

/// Keys the vault indexes in RAM (96 bytes each). With the record map's buffer at 576 bytes (a
/// last-resort key's opens item, issue 14) a GOLD mint leaves about 1.7 KiB of the 128 KiB
/// (firmware/README.md "Footprint").
const KEYS: usize = 128;
/// Emulated flash: 4 pages of records, 11 pages of secrets (10 × 42 live slots), and the record
/// map's erase journal in the last page (so a cut erase is finished at boot whatever state it
/// left the page in; firmware/README.md, "Power cuts").
const MAP_PAGES: u32 = 4;
const SLAB_PAGES: u32 = 11;
const FLASH_BYTES: usize = (MAP_PAGES + SLAB_PAGES + 1) as usize * PAGE_SIZE;
/// Where the emulated flash lives (PSRAM, outside the linker's memory map).
const FLASH_BASE: usize = 0x2100_0000;
/// Where the host injects the RNG seed (top page of PSRAM).
const SEED_ADDR: usize = 0x21FF_F000;

type Flash = RamFlash<&'static mut [u8]>;
type Board = Device<Flash, KEYS, ChaCha20Rng, FpgaLed, NoButton>;

static DEVICE: StaticCell<Board> = StaticCell::new();

// No heap: see `aqm_firmware::NoHeap` for why an allocator must exist at all.
#[global_allocator]
static HEAP: aqm_firmware::NoHeap = aqm_firmware::NoHeap;

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // The message never holds a secret: secrets are never formatted anywhere.
    hprintln!("aqm: panic: {}", info);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

/// LED0 of the MPS2 FPGA I/O block, as an `embedded-hal` output pin.
struct FpgaLed;

const FPGAIO_LED0: usize = 0x4002_8000;

impl embedded_hal::digital::ErrorType for FpgaLed {
    type Error = core::convert::Infallible;
}

impl OutputPin for FpgaLed {
    fn set_low(&mut self) -> Result<(), Self::Error> {
        led_write(0);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), Self::Error> {
        led_write(1);
        Ok(())
    }
}

fn led_write(v: u32) {
    #[allow(unsafe_code)]
    // SAFETY: FPGAIO LED0 is a 32-bit memory-mapped register of this machine; no Rust object
    // lives there and writing it only changes the (emulated) LEDs.
    unsafe {
        core::ptr::write_volatile(FPGAIO_LED0 as *mut u32, v)
    }
}

fn read_seed() -> Option<[u8; 32]> {
    let mut seed = [0u8; 32];
    for (i, b) in seed.iter_mut().enumerate() {
        #[allow(unsafe_code)]
        // SAFETY: PSRAM is plain RAM on this machine, outside the linker's memory map, so no
        // Rust object lives there; reading bytes of it is always defined.
        unsafe {
            *b = core::ptr::read_volatile((SEED_ADDR + i) as *const u8)
        };
    }
    (seed != [0; 32]).then_some(seed)
}

fn vault_flash() -> &'static mut [u8] {
    #[allow(unsafe_code)]
    // SAFETY: 64 KiB of PSRAM at FLASH_BASE: plain RAM that the linker never places anything
    // in; this function is called once, so the returned slice is the only reference to it.
    unsafe {
        core::slice::from_raw_parts_mut(FLASH_BASE as *mut u8, FLASH_BYTES)
    }
}

fn fail(what: &str) -> ! {
    hprintln!("aqm: {}", what);
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

const KINDS: usize = 17;

fn slot(kind: CommandKind) -> Option<(usize, &'static str)> {
    Some(match kind {
        CommandKind::Info => (0, "info"),
        CommandKind::Status => (1, "status"),
        CommandKind::Purge => (2, "purge"),
        CommandKind::Mint(1) => (3, "mint GOLD"),
        CommandKind::Mint(2) => (4, "mint SILVER"),
        CommandKind::Mint(3) => (5, "mint BRONZE"),
        CommandKind::Open(1) => (6, "open GOLD"),
        CommandKind::Open(2) => (7, "open SILVER"),
        CommandKind::Open(3) => (8, "open BRONZE"),
        CommandKind::Malformed | CommandKind::Open(_) => (9, "refused frame"),
        CommandKind::SignRekey(1) => (10, "sign re-key GOLD"),
        CommandKind::SignRekey(2) => (11, "sign re-key SILVER"),
        CommandKind::SignRekey(3) => (12, "sign re-key BRONZE"),
        CommandKind::MintLastResort(1) => (13, "mint last-resort GOLD"),
        CommandKind::MintLastResort(2) => (14, "mint last-resort SILVER"),
        CommandKind::MintLastResort(3) => (15, "mint last-resort BRONZE"),
        CommandKind::ProveRegistration => (16, "prove registration"),
        _ => return None,
    })
}

/// Everything that runs once, in its own frame so that its stack is free again afterwards.
#[inline(never)]
fn boot() -> &'static mut Board {
    let Some(seed) = read_seed() else {
        fail(
            "no RNG seed injected at 0x21fff000: start QEMU with -device loader,file=SEED,addr=0x21fff000,force-raw=on",
        )
    };
    let mut rng = ChaCha20Rng::from_seed(seed);
    // The emulated flash is erased at every boot, so a fresh device key per boot is consistent.
    let device_key = DeviceKey::random(&mut rng);
    let mem = vault_flash();
    mem.fill(0xFF);
    let layout = VaultLayout::contiguous(0, PAGE_SIZE as u32, MAP_PAGES, SLAB_PAGES)
        .with_erase_log((MAP_PAGES + SLAB_PAGES) * PAGE_SIZE as u32);
    let Ok(vault) = FlashVault::open(RamFlash::new(mem), layout, Policy::DEFAULT) else { fail("vault layout refused") };
    match Device::new(vault, device_key, rng, FpgaLed, NoButton) {
        Ok(device) => DEVICE.init(device),
        Err(e) => {
            // Errors never carry secrets (firmware Error is plain data).
            hprintln!("aqm: device boot failed: {}", e);
            fail("device boot failed")
        }
    }
}

#[entry]
fn main() -> ! {
    stack::paint();
    let device = boot();
    let boot = stack::peak();
    hprintln!("aqm: booted; stack region {} B, boot stack peak {} B", stack::capacity(), boot);
    stack::paint();

    let mut uart = uart::CmsdkUart::new(uart::UART0);
    let mut peaks = [0usize; KINDS];
    let mut names = [""; KINDS];
    loop {
        match device.serve(&mut uart) {
            Ok(CommandKind::Shutdown) => {
                hprintln!("FOOTPRINT stack boot {}", boot);
                for (name, peak) in names.iter().zip(peaks).filter(|(n, _)| !n.is_empty()) {
                    hprintln!("FOOTPRINT stack {} {}", name, peak);
                }
                hprintln!("FOOTPRINT stack-region {}", stack::capacity());
                debug::exit(debug::EXIT_SUCCESS);
            }
            Ok(kind) => {
                let peak = stack::peak();
                if let Some((i, name)) = slot(kind) {
                    peaks[i] = peaks[i].max(peak);
                    names[i] = name;
                    hprintln!("aqm: {} stack peak {} B", name, peak);
                }
                stack::paint();
            }
            Err(_) => hprintln!("aqm: serial link error"),
        }
    }
}
