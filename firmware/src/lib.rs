//! # aqm-firmware
//!
//! A `#![no_std]` firmware library that turns a microcontroller into Bob's vault (docs/architecture.md §5):
//!
//! - [`FlashVault`]: the core's [`aqm_core::store::VaultStore`] over any NOR flash
//!   (`embedded-storage`), power-fail safe, burning secrets by programming them to zero in place;
//! - [`protocol`]: postcard + COBS frames with request ids and typed errors;
//! - [`Device`]: the request handler (identity in flash, mint, open-burns-first, status, purge)
//!   over `embedded-io` and `embedded-hal` pins;
//! - [`Client`]: the host side of the same protocol;
//! - [`flash::RamFlash`]: an emulated NOR flash with power cuts on demand.
#![no_std]
#![deny(unsafe_code)]
// No panic on anything from outside (frames, flash contents): non-test code returns typed errors.
// Each exception is a narrowly scoped `#[allow]` that says in place why it cannot fire. Tests and
// examples may unwrap and index freely. `clippy::arithmetic_side_effects` is denied per module
// where offsets, lengths and counters come from the wire or the flash (see those modules).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]

#[cfg(feature = "std")]
extern crate std;

mod client;
mod device;
mod erase_log;
mod error;
pub mod flash;
#[cfg(feature = "std")]
pub mod host;
#[cfg(target_os = "none")]
mod no_heap;
pub mod protocol;
mod secret_slots;
mod vault;

pub use client::{Client, DeviceSigner};
pub use device::{Approver, Button, Device, NoButton, NoLed};
pub use error::Error;
pub use secret_slots::{MAX_SLOTS, SLOT_SIZE};
pub use vault::{FLASH_FORMAT, FlashVault, StoredIdentity, VaultLayout, VaultUsage};

/// Log a protocol event with `defmt` (feature `defmt`); compiled out otherwise. Never pass a
/// secret.
#[macro_export]
#[doc(hidden)]
macro_rules! log {
    ($($t:tt)*) => {
        #[cfg(feature = "defmt")]
        defmt::info!($($t)*);
    };
}

#[cfg(target_os = "none")]
pub use no_heap::NoHeap;
