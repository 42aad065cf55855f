//! The conformance test kit (feature `testkit`): one behaviour suite, generic over the storage
//! traits of [`crate::store`], that every backend runs unchanged — the in-memory reference store,
//! redb, Redis, flash and Postgres, each for the traits it implements. A backend passes the kit
//! or it is not done.
//!
//! # Wiring a backend
//!
//! Add the core with the feature to the backend's dev-dependencies
//! (`aqm-core = { workspace = true, features = ["testkit"] }`), then in one file under `tests/`
//! declare, **once**, which trait families the store implements and whether it is `Sync`:
//!
//! ```
//! use aqm_core::memory::MemoryStore;
//! use aqm_core::Policy;
//!
//! fn fresh(policy: Policy) -> Box<MemoryStore<64, 32>> {
//!     Box::new(MemoryStore::new(policy))
//! }
//!
//! aqm_core::conformance!(fresh => |fx| &**fx; vault, session, pins, inventory, directory; sync);
//! # fn main() {}
//! ```
//!
//! The factory builds a **fresh, empty store applying the policy it is given**; the part after
//! `=>` borrows the store from what the factory returned (a fixture that keeps a temporary
//! directory or a Redis prefix alive beside it: `open => |fx| &fx.store`); without it the
//! factory returns the store itself (`fresh; vault; nosync` is short for `fresh => |fx| fx;
//! vault; nosync`). `fx` is a reference to what the factory returned.
//!
//! The declaration expands to a module `conformance` with one module per family, and in each
//! one `#[test]` per case **under two policies**: [`Policy::DEFAULT`](crate::Policy::DEFAULT)
//! (module `default_policy`) and [`ALT_POLICY`] (module `alt_policy`, other caps, lifetimes,
//! graces and quotas), so a store that applies the defaults instead of its own policy fails.
//! Every case reads the numbers it checks from the store's policy ([`HasPolicy`]); every test
//! first checks that the factory built its store with the policy it was handed.
//!
//! | Family | Trait bound | Cases | With `sync` also |
//! |--------|-------------|-------|------------------|
//! | `vault` | [`VaultStore`](crate::store::VaultStore) | [`vault`], model [`model::vault_matches_model`] | [`concurrency::burn_exactly_once`] |
//! | `session` | [`SessionStore`](crate::store::SessionStore) | [`session`] | burn-and-save and save races; concurrent receives (these also need `InventoryStore + PinStore`) |
//! | `pins` | [`PinStore`](crate::store::PinStore) | [`pins`] | — |
//! | `inventory` | [`InventoryStore`](crate::store::InventoryStore) | [`inventory`] (with GC and stats), model [`model::inventory_matches_model`] | cap, selection and mixed races |
//! | `directory` | [`DirectoryStore`](crate::store::DirectoryStore) | [`directory`] | claim races |
//!
//! The last-resort cases ([`last_resort`]: kind kept, opens that burn nothing, replays refused,
//! a full record retires the key, open-and-save atomic, never cached, handed out after the
//! one-time coins and never used up) live in one module and are re-exported by the families
//! they belong to, so every backend of a family runs them.
//!
//! Each family's cases come from **one list** in this module (`__aqm_kit_family!`): a case added
//! there reaches every backend that declares the family. The concurrency cases run whenever the
//! declaration says `sync` (write `nosync` for a store that is not `Sync`).
//!
//! # Exclusions
//!
//! A case can be left out only by name and with a reason, in the backend's test file:
//!
//! ```
//! # use aqm_core::memory::MemoryStore;
//! # fn fresh(p: aqm_core::Policy) -> MemoryStore { MemoryStore::new(p) }
//! aqm_core::conformance!(fresh; vault; nosync; except {
//!     "vault::purge_updates_stats" => "an example: say here why this store cannot pass it",
//! });
//! # fn main() {}
//! ```
//!
//! An excluded case still appears as a test: it prints its name and the reason and passes. A
//! name that matches no case fails the declaration's `exclusions_name_real_cases` test, so a
//! renamed case cannot silently stay excluded. The test `case_count` prints
//! `kit cases: <generated> (<excluded> excluded)` (run it with `--nocapture`;
//! `scripts/kit-counts.sh` collects it for every backend).
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
//! "an entry that is not freshly minted is refused"); `test_inventory.py` → [`inventory`] (an
//! unknown priority is unrepresentable and refused at parse time, which the core's own unit
//! tests cover; it never reaches a store); `test_gc.py` and the storage
//! report / replenish needs of `stats.py` → the `gc_*` and `storage_report_*` cases of
//! [`inventory`]; `test_concurrency.py` → [`concurrency`]. Added beyond the seed: FIFO of coins
//! stored in the same second (insertion order), FIFO across interleaved contacts and refills,
//! trims evict the newest, no upward fallback, counters exact across expiry, purge of burned keys
//! after the grace, "bad input changes nothing" per family, the whole directory and the
//! session store (burn-and-save is atomic), and model-based property tests ([`model`]).

use crate::store::HasPolicy;
use crate::{Policy, Tier};

const DAY: u64 = 86_400;

/// The non-default policy every case also runs under: every cap that is not structurally zero
/// (a tier above a priority's ceiling) moves, and so do the lifetimes, graces, GC window, quota
/// and budget. Chosen so the fixture pools ([`fixtures::BOB_POOL`] …) cover every case.
pub const ALT_POLICY: Policy = Policy {
    caps: [[3, 5, 2], [0, 4, 3], [0, 0, 0]],
    ceilings: [Tier::Gold, Tier::Silver, Tier::Bronze],
    ratchet_limits: [20, 8, 4],
    max_skipped_keys: 16,
    coin_min_life_secs: 3 * DAY,
    vault_grace_secs: 7 * DAY,
    burn_grace_secs: 120,
    gc_inactive_secs: 20 * DAY,
    storage_budget_bytes: 32 * 1024,
    // Above the fixture coins' selection limit (27 days here), as with the defaults.
    directory_stale_secs: 29 * DAY,
    directory_claim_grace_secs: 2 * DAY,
    claim_quota: [3, 4, 3],
    claim_quota_window_secs: DAY / 2,
    // Small, so the case that fills a last-resort coin's record and retires it stays short.
    last_resort_max_opens: 3,
    last_resort_renew_secs: 2 * DAY,
};

/// Check, before a case runs, that the factory built its store with the policy it was handed.
#[track_caller]
pub fn check_policy<S: HasPolicy + ?Sized>(store: &S, want: &Policy) {
    assert_eq!(store.policy(), want, "the kit's factory must build its store with the policy it is given");
}

/// The reason `case` is excluded, if `excluded` names it (see "Exclusions" above).
pub fn exclusion(excluded: &[(&'static str, &'static str)], case: &str) -> Option<&'static str> {
    excluded.iter().find(|(name, _)| *name == case).map(|(_, why)| *why)
}

/// Fail if an exclusion names no generated case (`cases`: every `family::case` generated).
#[track_caller]
pub fn check_exclusions(excluded: &[(&'static str, &'static str)], cases: &[&[&str]]) {
    for (name, why) in excluded {
        assert!(
            cases.iter().flat_map(|c| c.iter()).any(|c| c == name),
            "exclusion {name:?} ({why}) names no case of the declared families"
        );
        assert!(!why.trim().is_empty(), "exclusion {name:?} gives no reason");
    }
}

pub mod concurrency;
pub mod directory;
pub mod fixtures;
pub mod inventory;
pub mod last_resort;
pub mod model;
pub mod pins;
pub mod session;
pub mod vault;

/// Declare a backend's conformance once; see the [module docs](crate::testkit).
///
/// `conformance!(factory [=> |fx| store_of_fx]; family, …; sync | nosync [; except { "family::case" => "why", … }])`
/// with families among `vault`, `session`, `pins`, `inventory`, `directory`.
#[macro_export]
macro_rules! conformance {
    ($factory:expr => |$fx:ident| $store:expr; $($family:ident),+ $(,)?; $sync:ident
        $(; except { $($name:literal => $why:literal),* $(,)? })? $(;)?) => {
        mod conformance {
            #![allow(unused_imports)]
            use super::*;
            /// The exclusions this backend declares: (family::case, reason).
            pub const EXCLUDED: &[(&str, &str)] = &[$($(($name, $why)),*)?];
            $( $crate::__aqm_kit_family!($family; $sync; ($factory) => |$fx| $store); )+
            #[test]
            fn case_count() {
                let all: &[&[&str]] = &[$($family::NAMES),+];
                let cases: usize = all.iter().map(|c| c.len()).sum();
                let excluded = EXCLUDED.len();
                // Every case runs under two policies.
                std::println!("kit cases: {} ({} excluded)", 2 * cases, 2 * excluded);
            }
            #[test]
            fn exclusions_name_real_cases() {
                $crate::testkit::check_exclusions(EXCLUDED, &[$($family::NAMES),+]);
            }
        }
    };
    ($factory:expr; $($rest:tt)+) => {
        $crate::conformance!($factory => |fx| fx; $($rest)+);
    };
}

/// The one case list per family. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __aqm_kit_family {
    (vault; $sync:ident; $($ctx:tt)+) => {
        $crate::__aqm_kit_emit!(vault; $sync; [
            store_success, store_duplicate_refused, store_not_fresh_refused, store_sets_ttl,
            store_increments_stats, fetch_existing, fetch_missing_is_none, fetch_burned_is_none,
            fetch_preserves_blobs, burn_success, burn_missing_refused, burn_twice_refused,
            burn_expired_refused, burn_grace_then_purged, burn_decrements_active,
            burn_increments_burned, count_active_all_tiers, count_active_single_tier, stats_empty,
            exists, active_ids_all, active_ids_filtered, active_ids_exclude_burned,
            purge_removes_old, purge_keeps_recent, purge_updates_stats, stats_after_operations,
            counters_exact_after_expiry, bad_input_changes_nothing,
            last_resort_store_keeps_kind, last_resort_open_burns_nothing, last_resort_replay_refused,
            last_resort_records_are_per_key, last_resort_open_refusals_change_nothing,
            last_resort_full_record_retires, last_resort_expires,
        ]; [burn_exactly_once, last_resort_replay_race, last_resort_retires_once]; [vault_matches_model]; $($ctx)+);
    };
    (session; $sync:ident; $($ctx:tt)+) => {
        $crate::__aqm_kit_emit!(session; $sync; [
            load_missing_is_none, save_load_per_peer_and_direction, save_replaces,
            stale_version_refused, create_only_if_absent, burn_and_save,
            burn_and_save_refused_saves_nothing, burn_and_save_stale_version_refused,
            last_resort_open_and_save, last_resort_open_and_save_is_atomic,
        ]; [burn_and_save_exactly_once, concurrent_saves_one_wins, concurrent_receives_accept_each_once];
        []; $($ctx)+);
    };
    (pins; $sync:ident; $($ctx:tt)+) => {
        $crate::__aqm_kit_emit!(pins; $sync; [
            pin_first_identity, pin_change_refused, pin_trust_only_rises,
        ]; []; []; $($ctx)+);
    };
    (inventory; $sync:ident; $($ctx:tt)+) => {
        $crate::__aqm_kit_emit!(inventory; $sync; [
            register_success, register_duplicate_is_idempotent,
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
            bad_input_changes_nothing, last_resort_never_cached,
        ]; [store_respects_budget, select_no_duplicates, store_and_select_mixed];
        [inventory_matches_model]; $($ctx)+);
    };
    (directory; $sync:ident; $($ctx:tt)+) => {
        $crate::__aqm_kit_emit!(directory; $sync; [
            register_identity, register_without_possession_refused, upload_unregistered_refused,
            upload_idempotent, upload_expiry_checked, claim_skips_expiring_coins,
            upload_forged_refuses_batch, upload_foreign_refuses_batch, claim_oldest_first,
            claim_each_coin_once, claim_quota, claim_empty_uses_no_quota, claim_idempotent_retry,
            purge_stale, hard_delete_claimed, available_counts, bad_input_changes_nothing,
            last_resort_after_one_time, last_resort_counts_against_quota, last_resort_newest_kept,
            last_resort_upload_expiry_checked, last_resort_purged_when_stale,
        ]; [claims_never_duplicate, idempotent_claims_race]; []; $($ctx)+);
    };
    ($other:ident; $($rest:tt)*) => {
        compile_error!(concat!(
            "unknown conformance family `", stringify!($other),
            "` (families: vault, session, pins, inventory, directory)"
        ));
    };
}

/// One family's module: its case names, then the cases under each policy. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __aqm_kit_emit {
    ($family:ident; sync; [$($case:ident),* $(,)?]; [$($conc:ident),* $(,)?]; [$($model:ident),* $(,)?];
        $($ctx:tt)+) => {
        $crate::__aqm_kit_emit!(@module $family; [$($case),*]; [$($conc),*]; [$($model),*]; $($ctx)+);
    };
    ($family:ident; nosync; [$($case:ident),* $(,)?]; [$($conc:ident),* $(,)?]; [$($model:ident),* $(,)?];
        $($ctx:tt)+) => {
        $crate::__aqm_kit_emit!(@module $family; [$($case),*]; []; [$($model),*]; $($ctx)+);
    };
    ($family:ident; $other:ident; $($rest:tt)*) => {
        compile_error!(concat!("write `sync` or `nosync`, not `", stringify!($other), "`"));
    };
    (@module $family:ident; [$($case:ident),*]; [$($conc:ident),*]; [$($model:ident),*]; $($ctx:tt)+) => {
        pub mod $family {
            #![allow(unused_imports)]
            use super::*;
            /// Every case this family generates (each once per policy), as `family::case`.
            pub const NAMES: &[&str] = &[
                $(concat!(stringify!($family), "::", stringify!($case)),)*
                $(concat!(stringify!($family), "::", stringify!($conc)),)*
                $(concat!(stringify!($family), "::", stringify!($model)),)*
            ];
            mod default_policy {
                #![allow(unused_imports)]
                use super::*;
                fn policy() -> $crate::Policy {
                    $crate::Policy::DEFAULT
                }
                $crate::__aqm_kit_emit!(@cases $family; $family; [$($case),*]; $($ctx)+);
                $crate::__aqm_kit_emit!(@cases $family; concurrency; [$($conc),*]; $($ctx)+);
                $crate::__aqm_kit_emit!(@models $family; [$($model),*]; $($ctx)+);
            }
            mod alt_policy {
                #![allow(unused_imports)]
                use super::*;
                fn policy() -> $crate::Policy {
                    $crate::testkit::ALT_POLICY
                }
                $crate::__aqm_kit_emit!(@cases $family; $family; [$($case),*]; $($ctx)+);
                $crate::__aqm_kit_emit!(@cases $family; concurrency; [$($conc),*]; $($ctx)+);
                $crate::__aqm_kit_emit!(@models $family; [$($model),*]; $($ctx)+);
            }
        }
    };
    (@cases $family:ident; $module:ident; [$($case:ident),*]; ($factory:expr) => |$fx:ident| $store:expr) => {
        $(
            #[test]
            fn $case() {
                let name = concat!(stringify!($family), "::", stringify!($case));
                if let Some(why) = $crate::testkit::exclusion(super::super::EXCLUDED, name) {
                    std::println!("kit case {name} excluded: {why}");
                    return;
                }
                let policy = policy();
                // The fixture is borrowed, as in the model cases' `|fx| store` closure.
                let fixture = ($factory)(policy.clone());
                let $fx = &fixture;
                $crate::testkit::check_policy($store, &policy);
                $crate::testkit::$module::$case($store);
            }
        )*
    };
    (@models $family:ident; [$($case:ident),*]; ($factory:expr) => |$fx:ident| $store:expr) => {
        $(
            #[test]
            fn $case() {
                let name = concat!(stringify!($family), "::", stringify!($case));
                if let Some(why) = $crate::testkit::exclusion(super::super::EXCLUDED, name) {
                    std::println!("kit case {name} excluded: {why}");
                    return;
                }
                let policy = policy();
                $crate::testkit::model::$case(|| ($factory)(policy.clone()), |$fx| $store);
            }
        )*
    };
}
