//! # aqm-core
//!
//! The sans-I/O heart of AQM (Amortized Quantum Messaging): every rule, state machine, crypto
//! operation, wire format and storage trait, with no I/O, no clock and no global RNG.
//! `#![no_std]` with `default-features = false`, and no allocator needed on that path.
#![no_std]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "alloc")]
extern crate alloc;

mod context;
pub mod crypto;
mod error;
mod ids;
mod policy;
mod tier;

pub use context::DeviceContext;
pub use error::{Error, StoreError};
pub use ids::{ContactId, KeyId, UnixSeconds, UserId};
pub use policy::Policy;
pub use tier::{Priority, Tier, TierCounts};

pub mod coin;
pub mod directory;
pub mod inventory;
pub mod store;
pub mod vault;

pub mod memory;
#[cfg(feature = "testkit")]
pub mod testkit;

pub mod envelope;
pub mod messaging;
pub mod pins;
pub mod protocol;
pub mod ratchet;
pub mod rekey;
