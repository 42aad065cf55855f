//! The core's conformance kit, unchanged, against the machine's Redis: each case gets a fresh
//! store under its own random prefix, deleted when the case ends.

mod common;

use aqm_core::Policy;
use common::TestStore;

fn fresh(policy: Policy) -> TestStore {
    TestStore::with_policy("kit", policy)
}

// Redis is the phones' device store: it implements no coin directory (the directory runs on
// the server, PostgreSQL), so the `directory` family is not declared.
aqm_core::conformance!(fresh => |fx| &fx.0; vault, session, pins, inventory; sync; except {
    "vault::last_resort_store_keeps_kind" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_open_burns_nothing" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_replay_refused" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_records_are_per_key" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_open_refusals_change_nothing" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_full_record_retires" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_expires" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_replay_race" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "vault::last_resort_retires_once" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "session::last_resort_open_and_save" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "session::last_resort_open_and_save_is_atomic" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
    "inventory::last_resort_never_cached" => "the Redis store does not handle last-resort coins yet (issue 14): its vault refuses them",
});
