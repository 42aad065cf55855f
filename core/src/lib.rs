//! # aqm-core
//!
//! The sans-I/O heart of AQM (Amortized Quantum Messaging): every rule, state machine, crypto
//! operation, wire format and storage trait, with no I/O, no clock and no global RNG.
//! `#![no_std]` with `default-features = false`, and no allocator needed on that path.
#![no_std]
#![forbid(unsafe_code)]
// No panic on anything from outside: non-test code returns typed errors. Each exception is a
// narrowly scoped `#[allow]` that says in place why it cannot fire. Tests, benches, examples and
// the test kit may unwrap and index freely. `clippy::arithmetic_side_effects` is denied per module
// where lengths and counters come from outside (see the top of those modules).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing))]
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
// The conformance kit is test code that backends' tests call: failing loudly is its job.
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
pub mod testkit;

pub mod envelope;
pub mod messaging;
pub mod pins;
pub mod protocol;
pub mod ratchet;
pub mod rekey;
