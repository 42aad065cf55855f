//! The core's conformance kit on the PostgreSQL directory: every directory case, and the claim
//! races, under the default and the alternative policy, each in a fresh schema.

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
    let schema = common::unique_schema("kit");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let config = rt.block_on(common::create_schema(&schema));
    // More connections than the kit's 8 concurrent claimers, so none waits for the pool.
    let store = BlockingDirectory::open(config, 12, policy).expect("open the PostgreSQL directory");
    Fixture { store, schema }
}

aqm_core::conformance!(fresh => |fx| &fx.store; directory; sync);
