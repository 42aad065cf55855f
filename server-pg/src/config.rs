//! The server's configuration: flags, each with an environment variable (docs/http-api.md).

use std::net::SocketAddr;
use std::time::Duration;

use aqm_core::Policy;

use crate::directory::ClaimBatching;

/// `aqm-server` flags.
#[derive(Clone, clap::Parser)]
#[command(name = "aqm-server", version, about = "AQM coin directory: HTTP service on PostgreSQL")]
pub struct Config {
    /// PostgreSQL connection (URL or key=value form). Migrations are applied at start-up.
    #[arg(long, env = "AQM_DATABASE_URL", default_value = "postgres://postgres@127.0.0.1:5432/aqm")]
    pub database_url: String,
    /// Address to listen on. Loopback by default: put TLS termination in front of it.
    #[arg(long, env = "AQM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Token for /v1/admin/* calls; admin calls are refused when none is set.
    #[arg(long, env = "AQM_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Most PostgreSQL connections in the pool.
    #[arg(long, env = "AQM_POOL_SIZE", default_value_t = 16)]
    pub pool_size: usize,
    /// A request is answered 503 after this many milliseconds.
    #[arg(long, env = "AQM_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Largest request body in bytes (100 GOLD coins in base64 take about 620 KB).
    #[arg(long, env = "AQM_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Registrations allowed per client address per minute.
    #[arg(long, env = "AQM_REGISTER_PER_MINUTE", default_value_t = 30)]
    pub register_per_minute: u32,
    /// Anti-drain quota: coins per tier (GOLD,SILVER,BRONZE) one requester may claim of one
    /// owner per window.
    #[arg(long, env = "AQM_CLAIM_QUOTA", default_value_t = Quota(Policy::DEFAULT.claim_quota))]
    pub claim_quota: Quota,
    /// Length of the quota window in seconds.
    #[arg(long, env = "AQM_CLAIM_QUOTA_WINDOW_SECS", default_value_t = Policy::DEFAULT.claim_quota_window_secs)]
    pub claim_quota_window_secs: u64,
    /// Most claims committed in one transaction (group commit); 1 gives every claim its own
    /// transaction (use 1 on Citus, where a batch would span shards).
    #[arg(long, env = "AQM_CLAIM_BATCH", default_value_t = ClaimBatching::default().max_batch)]
    pub claim_batch: usize,
    /// Claim transactions in flight at once (each on a pooled connection).
    #[arg(long, env = "AQM_CLAIM_WORKERS", default_value_t = ClaimBatching::default().workers)]
    pub claim_workers: usize,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "AQM_LOG_JSON")]
    pub log_json: bool,
}

impl Config {
    /// The directory policy: the core's defaults with this configuration's quota.
    pub fn policy(&self) -> Policy {
        let mut p = Policy::DEFAULT;
        p.claim_quota = self.claim_quota.0;
        p.claim_quota_window_secs = self.claim_quota_window_secs.max(1);
        p
    }

    /// How claims are grouped into transactions.
    pub fn claim_batching(&self) -> ClaimBatching {
        ClaimBatching { max_batch: self.claim_batch.max(1), workers: self.claim_workers.max(1) }
    }

    /// The request timeout.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms.max(1))
    }
}

/// `--claim-quota`: three numbers in one argument, `GOLD,SILVER,BRONZE` (e.g. `5,6,4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota(pub [u32; 3]);

impl core::str::FromStr for Quota {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?}: give three numbers GOLD,SILVER,BRONZE, e.g. 5,6,4");
        let numbers =
            s.split(',').map(|n| n.trim().parse::<u32>().map_err(|_| bad())).collect::<Result<Vec<_>, _>>()?;
        <[u32; 3]>::try_from(numbers).map(Quota).map_err(|_| bad())
    }
}

impl core::fmt::Display for Quota {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let [g, s, b] = self.0;
        write!(f, "{g},{s},{b}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// The documented form `--claim-quota 5,6,4` is one argument; anything but three numbers is
    /// refused with the form to use.
    #[test]
    fn claim_quota_is_three_numbers_in_one_argument() {
        let c = Config::try_parse_from(["aqm-server", "--claim-quota", "2,3,4"]).expect("parse");
        assert_eq!(c.policy().claim_quota, [2, 3, 4]);
        assert_eq!(
            Config::try_parse_from(["aqm-server"]).expect("parse").policy().claim_quota,
            Policy::DEFAULT.claim_quota
        );
        for bad in ["2,3", "2,3,4,5", "a,b,c", ""] {
            // Config is not Debug (it holds the admin token): no expect_err.
            let Err(e) = Config::try_parse_from(["aqm-server", "--claim-quota", bad]) else { panic!("{bad} parsed") };
            assert!(e.to_string().contains("GOLD,SILVER,BRONZE"), "{bad}: {e}");
        }
    }
}
