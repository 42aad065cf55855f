//! The core's conformance kit, unchanged, against a local Redis Cluster (3 masters + 3 replicas,
//! `scripts/redis-cluster.sh`, started here if it is not running): each case gets a fresh store
//! under its own random prefix, so the cases spread over the cluster's slots and nodes.
//!
//! `AQM_REDIS_CLUSTER=unavailable` cannot skip kit cases one by one; leave this binary out instead
//! (`cargo nextest run -E 'not binary(cluster_kit)'`). CI runs it.

mod common;

use std::sync::OnceLock;

use aqm_core::Policy;
use common::{LocalCluster, TestStore};

fn cluster_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| LocalCluster::shared().url())
}

fn fresh(policy: Policy) -> TestStore {
    let fx = TestStore::on(cluster_url(), "ckit", policy);
    assert!(fx.is_cluster(), "the kit must run on the cluster");
    fx
}

aqm_core::conformance!(fresh => |fx| &fx.0; vault, session, pins, inventory; sync);
