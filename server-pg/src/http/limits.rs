//! Registrations per client address: a fixed one-minute window per address, in this process
//! (each replica limits on its own; the limit is against scripted floods, not a quota).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use crate::ServerError;

/// Counts registrations per address in the current minute.
#[derive(Debug)]
pub struct RegisterLimiter {
    per_minute: u32,
    windows: Mutex<(u64, HashMap<IpAddr, u32>)>,
}

impl RegisterLimiter {
    /// Allow `per_minute` registrations per address.
    pub fn new(per_minute: u32) -> Self {
        RegisterLimiter { per_minute, windows: Mutex::new((0, HashMap::new())) }
    }

    /// Count one registration from `addr` at `now`; over the limit → `RateLimited`.
    pub fn check(&self, addr: IpAddr, now: u64) -> Result<(), ServerError> {
        let minute = now / 60;
        let mut guard = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (window, counts) = &mut *guard;
        if *window != minute {
            // A new minute forgets every address, so the map never outgrows one minute's callers.
            *window = minute;
            counts.clear();
        }
        let n = counts.entry(addr).or_insert(0);
        if *n >= self.per_minute {
            return Err(ServerError::RateLimited { retry_after_secs: 60 - now % 60 });
        }
        *n += 1;
        Ok(())
    }
}
