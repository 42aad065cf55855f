//! The core's conformance kit on the PostgreSQL directory: every directory case, and the claim
//! races, under the default and the alternative policy, each in a fresh schema — once with every
//! claim its own transaction (`--claim-batch 1`) and once with claims batched as the server runs
//! them (the races then share transactions).

mod common;

use aqm_core::Policy;
use aqm_server::blocking::BlockingDirectory;

struct Fixture {
    store: BlockingDirectory,
    schema: String,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let schema = self.schema.clone();
        self.store.block_on(common::drop_schema(&schema));
    }
}

fn fresh(policy: Policy) -> Fixture {
    open(policy, None)
}

fn open(policy: Policy, batching: Option<aqm_server::directory::ClaimBatching>) -> Fixture {
    let schema = common::unique_schema("kit");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = rt.block_on(common::create_schema(&schema));
    // More connections than the kit's 8 concurrent claimers, so none waits for the pool.
    let mut store = BlockingDirectory::open(config, 12, policy).expect("open the PostgreSQL directory");
    if let Some(b) = batching {
        store = store.with_claim_batching(b).expect("claim batching");
    }
    Fixture { store, schema }
}

aqm_core::conformance!(fresh => |fx| &fx.store; directory; sync);

/// The same kit with the server's claim batching.
mod batched {
    use super::*;

    fn fresh_batched(policy: Policy) -> Fixture {
        open(policy, Some(aqm_server::directory::ClaimBatching::default()))
    }

    aqm_core::conformance!(fresh_batched => |fx| &fx.store; directory; sync);
}
