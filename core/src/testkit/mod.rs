//! The conformance test kit (feature `testkit`): one behaviour suite, generic over the storage
//! traits of [`crate::store`], that every backend runs unchanged — the in-memory reference store,
//! redb, Redis, flash and Postgres, each for the traits it implements. A backend passes the kit
//! or it is not done.
//!
//! # Wiring a backend
//!
//! Add the core with the feature to the backend's dev-dependencies
//! (`aqm-core = { workspace = true, features = ["testkit"] }`), then in one file under `tests/`
//! call one macro per trait family the backend implements. Each macro takes an expression that
//! builds a **fresh, empty store applying [`crate::Policy::DEFAULT`]** and expands to a module
//! (named after the macro) holding one `#[test]` per case:
//!
//! ```
//! use aqm_core::memory::MemoryStore;
//! use aqm_core::Policy;
//!
//! fn fresh() -> MemoryStore {
//!     MemoryStore::new(Policy::DEFAULT)
//! }
//!
//! aqm_core::vault_conformance!(fresh);
//! aqm_core::session_conformance!(fresh);
//! aqm_core::inventory_conformance!(|| MemoryStore::new(Policy::DEFAULT));
//! aqm_core::directory_conformance!(fresh);
//! // For stores that are Sync (shared between threads):
//! aqm_core::concurrency_conformance!(fresh);
//! aqm_core::session_concurrency_conformance!(fresh);
//! # fn main() {}
//! ```
//!
//! A backend whose store needs something kept alive beside it (a temporary directory, a Redis
//! key prefix to clean up) returns that fixture from the factory and says how to borrow the
//! store from it, after `=>`:
//!
//! ```
//! # use aqm_core::memory::MemoryStore;
//! struct Fixture {
//!     store: MemoryStore,
//!     _guard: std::vec::Vec<u8>, // e.g. a tempfile::TempDir
//! }
//! fn open() -> Fixture {
//!     Fixture { store: MemoryStore::default(), _guard: Vec::new() }
//! }
//! aqm_core::vault_conformance!(open => |fx| &fx.store);
//! # fn main() {}
//! ```
//!
//! | Macro | Trait bound | Module of cases |
//! |-------|-------------|-----------------|
//! | [`vault_conformance!`](crate::vault_conformance) | [`VaultStore`](crate::store::VaultStore) | [`vault`] |
//! | [`session_conformance!`](crate::session_conformance) | [`SessionStore`](crate::store::SessionStore) | [`session`] |
//! | [`inventory_conformance!`](crate::inventory_conformance) | [`InventoryStore`](crate::store::InventoryStore) | [`inventory`] (with GC and stats) |
//! | [`directory_conformance!`](crate::directory_conformance) | [`DirectoryStore`](crate::store::DirectoryStore) | [`directory`] |
//! | [`vault_concurrency_conformance!`](crate::vault_concurrency_conformance) | `VaultStore + Sync` | [`concurrency`] |
//! | [`session_concurrency_conformance!`](crate::session_concurrency_conformance) | `SessionStore + Sync` | [`concurrency`] |
//! | [`inventory_concurrency_conformance!`](crate::inventory_concurrency_conformance) | `InventoryStore + Sync` | [`concurrency`] |
//! | [`directory_concurrency_conformance!`](crate::directory_concurrency_conformance) | `DirectoryStore + Sync` | [`concurrency`] |
//! | [`concurrency_conformance!`](crate::concurrency_conformance) | all three `+ Sync` | the three above |
//!
//! Every case is also a plain `pub fn case<S: Trait>(store: &S)`, so a backend can call one
//! directly (e.g. against a store reopened after a simulated crash). Errors are asserted through
//! [`StoreError::as_core`](crate::StoreError::as_core): a backend's own error type passes as long
//! as it carries the core's refusal. Coins are real (minted once per process from a seeded
//! ChaCha20 RNG, see [`fixtures`]); times are explicit (`now` starts at [`fixtures::T0`]).
//!
//! # Coverage of the prototype's test lists
//!
//! Every case's doc names the seed test it carries over (`seed test_…`). In short:
//! `test_vault.py` → [`vault`] (an unknown tier is unrepresentable, so "invalid category" becomes
//! "an entry that is not freshly minted is refused"); `test_inventory.py` → [`inventory`]
//! (likewise, an unknown priority is refused at parse time); `test_gc.py` and the storage
//! report / replenish needs of `stats.py` → the `gc_*` and `storage_report_*` cases of
//! [`inventory`]; `test_concurrency.py` → [`concurrency`]. Added beyond the seed: FIFO of coins
//! stored in the same second (insertion order), FIFO across interleaved contacts and refills,
//! trims evict the newest, no upward fallback, counters exact across expiry, purge of burned keys
//! after the 60 s grace, "bad input changes nothing" per family, the whole directory and the
//! session store (burn-and-save is atomic).

pub mod concurrency;
pub mod directory;
pub mod fixtures;
pub mod inventory;
pub mod session;
pub mod vault;

/// Expands one `#[test]` per listed case of `$family`. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __aqm_kit_cases {
    ($family:ident; [$($case:ident),* $(,)?]; $factory:expr => |$fx:ident| $store:expr) => {
        $(
            #[test]
            fn $case() {
                let $fx = ($factory)();
                $crate::testkit::$family::$case($store);
            }
        )*
    };
    ($family:ident; [$($case:ident),* $(,)?]; $factory:expr) => {
        $(
            #[test]
            fn $case() {
                let store = ($factory)();
                $crate::testkit::$family::$case(&store);
            }
        )*
    };
}

/// One `#[test]` per case of [`testkit::vault`](crate::testkit::vault), in a module
/// `vault_conformance`. Argument: a factory of fresh stores (`fresh` or `|| Store::new(..)`),
/// optionally followed by `=> |fx| &fx.store` to borrow the store from a fixture.
#[macro_export]
macro_rules! vault_conformance {
    ($($factory:tt)+) => {
        mod vault_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(vault; [
                store_success, store_duplicate_refused, store_not_fresh_refused, store_sets_ttl,
                store_increments_stats, fetch_existing, fetch_missing_is_none, fetch_burned_is_none,
                fetch_preserves_blobs, burn_success, burn_missing_refused, burn_twice_refused,
                burn_expired_refused, burn_grace_then_purged, burn_decrements_active,
                burn_increments_burned, count_active_all_tiers, count_active_single_tier, stats_empty,
                exists, active_ids_all, active_ids_filtered, active_ids_exclude_burned,
                purge_removes_old, purge_keeps_recent, purge_updates_stats, stats_after_operations,
                counters_exact_after_expiry, bad_input_changes_nothing,
            ]; $($factory)+);
        }
    };
}

/// One `#[test]` per case of [`testkit::session`](crate::testkit::session), in a module
/// `session_conformance`. Arguments as [`vault_conformance!`](crate::vault_conformance).
#[macro_export]
macro_rules! session_conformance {
    ($($factory:tt)+) => {
        mod session_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(session; [
                load_missing_is_none, save_load_per_peer_and_direction, save_replaces,
                stale_version_refused, create_only_if_absent, burn_and_save,
                burn_and_save_refused_saves_nothing, burn_and_save_stale_version_refused,
                pin_first_identity, pin_change_refused, pin_trust_only_rises,
            ]; $($factory)+);
        }
    };
}

/// One `#[test]` per case of [`testkit::inventory`](crate::testkit::inventory) (contacts, store,
/// select, consume, queries, GC, storage report), in a module `inventory_conformance`.
/// Arguments as [`vault_conformance!`](crate::vault_conformance).
#[macro_export]
macro_rules! inventory_conformance {
    ($($factory:tt)+) => {
        mod inventory_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(inventory; [
                register_success, register_duplicate_is_idempotent, register_invalid_priority_refused,
                contact_meta, set_priority_upgrade, set_priority_downgrade_trims_excess,
                trim_evicts_newest, set_priority_unregistered_refused, store_success,
                store_budget_exceeded, store_mate_cannot_store_gold,
                store_stranger_cannot_store_anything, store_unregistered_refused,
                store_foreign_or_duplicate_refused, store_updates_index, select_correct_tier,
                select_fifo_within_one_second, select_fifo_interleaved,
                select_fallback_gold_to_silver, select_fallback_to_bronze, select_no_upward_fallback,
                select_empty_is_none, select_removes_coin, select_updates_last_msg_at,
                select_unregistered_refused, consume_success, consume_missing_is_false,
                inventory_single_contact, inventory_all_contacts, has_keys_and_available_tiers,
                store_after_select_refills, downgrade_then_select, gc_removes_inactive,
                gc_keeps_active, gc_returns_correct_counts, gc_downgrades_to_stranger,
                collect_single_contact, gc_dry_run_does_not_delete, gc_empty,
                storage_report_and_replenish_needs, select_stops_at_lowest,
                expiring_coins_are_refused_and_dropped, restore_returns_coin_to_its_place,
                bad_input_changes_nothing,
            ]; $($factory)+);
        }
    };
}

/// One `#[test]` per case of [`testkit::directory`](crate::testkit::directory), in a module
/// `directory_conformance`. Arguments as [`vault_conformance!`](crate::vault_conformance).
#[macro_export]
macro_rules! directory_conformance {
    ($($factory:tt)+) => {
        mod directory_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(directory; [
                register_identity, register_without_possession_refused, upload_unregistered_refused,
                upload_idempotent, upload_expiry_checked, claim_skips_expiring_coins,
                upload_forged_refuses_batch, upload_foreign_refuses_batch, claim_oldest_first,
                claim_each_coin_once, claim_quota, claim_empty_uses_no_quota, claim_idempotent_retry,
                purge_stale, hard_delete_claimed, available_counts, bad_input_changes_nothing,
            ]; $($factory)+);
        }
    };
}

/// The vault's concurrency case (exactly-once burn) for a `VaultStore + Sync`, in a module
/// `vault_concurrency_conformance`. Arguments as [`vault_conformance!`](crate::vault_conformance).
#[macro_export]
macro_rules! vault_concurrency_conformance {
    ($($factory:tt)+) => {
        mod vault_concurrency_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(concurrency; [burn_exactly_once]; $($factory)+);
        }
    };
}

/// The session store's concurrency cases (one coin opened from several threads: exactly one
/// burn-and-save wins, and its session is the one saved; concurrent compare-and-swap saves:
/// exactly one wins) for a `SessionStore + Sync`, in a module
/// `session_concurrency_conformance`. Arguments as [`vault_conformance!`](crate::vault_conformance).
/// Not part of [`concurrency_conformance!`](crate::concurrency_conformance): call it beside it.
#[macro_export]
macro_rules! session_concurrency_conformance {
    ($($factory:tt)+) => {
        mod session_concurrency_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(concurrency; [
                burn_and_save_exactly_once, concurrent_saves_one_wins, concurrent_receives_accept_each_once,
            ]; $($factory)+);
        }
    };
}

/// The inventory's concurrency cases (cap under concurrent stores, no duplicate selections, a
/// second of mixed store/select) for an `InventoryStore + Sync`, in a module
/// `inventory_concurrency_conformance`. Arguments as [`vault_conformance!`](crate::vault_conformance).
#[macro_export]
macro_rules! inventory_concurrency_conformance {
    ($($factory:tt)+) => {
        mod inventory_concurrency_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(concurrency; [
                store_respects_budget, select_no_duplicates, store_and_select_mixed,
            ]; $($factory)+);
        }
    };
}

/// The directory's concurrency cases (concurrent claims never hand a coin out twice; a claim
/// retried concurrently with one idempotency key is served once) for a
/// `DirectoryStore + Sync`, in a module `directory_concurrency_conformance`. Arguments as
/// [`vault_conformance!`](crate::vault_conformance).
#[macro_export]
macro_rules! directory_concurrency_conformance {
    ($($factory:tt)+) => {
        mod directory_concurrency_conformance {
            #![allow(unused_imports)]
            use super::*;
            $crate::__aqm_kit_cases!(concurrency; [claims_never_duplicate, idempotent_claims_race]; $($factory)+);
        }
    };
}

/// All concurrency cases, for a store implementing all of `VaultStore`, `InventoryStore` and
/// `DirectoryStore` and `Sync`: expands the three family macros above.
#[macro_export]
macro_rules! concurrency_conformance {
    ($($factory:tt)+) => {
        $crate::vault_concurrency_conformance!($($factory)+);
        $crate::inventory_concurrency_conformance!($($factory)+);
        $crate::directory_concurrency_conformance!($($factory)+);
    };
}
