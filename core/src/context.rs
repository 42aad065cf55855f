//! Device context (battery, Wi-Fi, signal) and the tier it affords.

use serde::{Deserialize, Serialize};

use crate::Tier;

/// What the sending device knows about itself when it picks a tier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceContext {
    /// Battery charge, 0–100 %.
    pub battery_pct: u8,
    /// Whether the device is on Wi-Fi.
    pub wifi: bool,
    /// Cellular signal strength in dBm (e.g. −70 good, −110 very weak).
    pub signal_dbm: i16,
}

impl DeviceContext {
    /// Scenario A of the prototype: at home on Wi-Fi with a full battery (affords GOLD).
    pub const HOME_WIFI: DeviceContext = DeviceContext { battery_pct: 85, wifi: true, signal_dbm: -60 };
    /// Scenario B: outdoors on cellular with a fair signal (affords SILVER).
    pub const OUTDOOR_CELLULAR: DeviceContext = DeviceContext { battery_pct: 60, wifi: false, signal_dbm: -85 };
    /// Scenario C: underground, weak signal (affords BRONZE).
    pub const UNDERGROUND: DeviceContext = DeviceContext { battery_pct: 40, wifi: false, signal_dbm: -110 };

    /// The tier this context affords (the rules in docs/architecture.md §2), before any priority ceiling.
    ///
    /// ```
    /// use aqm_core::{DeviceContext, Tier};
    /// assert_eq!(DeviceContext::HOME_WIFI.affordable_tier(), Tier::Gold);
    /// let low = DeviceContext { battery_pct: 4, wifi: true, signal_dbm: -50 };
    /// assert_eq!(low.affordable_tier(), Tier::Bronze);
    /// ```
    pub fn affordable_tier(&self) -> Tier {
        let b = self.battery_pct;
        if b < 5 {
            return Tier::Bronze;
        }
        if self.wifi {
            match b {
                0..=19 => Tier::Bronze,
                20..=49 => Tier::Silver,
                _ => Tier::Gold,
            }
        } else if self.signal_dbm < -100 {
            Tier::Bronze
        } else {
            Tier::Silver
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(battery_pct: u8, wifi: bool, signal_dbm: i16) -> DeviceContext {
        DeviceContext { battery_pct, wifi, signal_dbm }
    }

    #[test]
    fn every_boundary_of_the_table() {
        assert_eq!(ctx(4, true, -40).affordable_tier(), Tier::Bronze);
        assert_eq!(ctx(5, true, -40).affordable_tier(), Tier::Bronze);
        assert_eq!(ctx(19, true, -40).affordable_tier(), Tier::Bronze);
        assert_eq!(ctx(20, true, -40).affordable_tier(), Tier::Silver);
        assert_eq!(ctx(49, true, -40).affordable_tier(), Tier::Silver);
        assert_eq!(ctx(50, true, -40).affordable_tier(), Tier::Gold);
        assert_eq!(ctx(100, true, -120).affordable_tier(), Tier::Gold);
        assert_eq!(ctx(100, false, -101).affordable_tier(), Tier::Bronze);
        assert_eq!(ctx(100, false, -100).affordable_tier(), Tier::Silver);
        assert_eq!(ctx(4, false, -50).affordable_tier(), Tier::Bronze);
        assert_eq!(ctx(100, false, -50).affordable_tier(), Tier::Silver);
    }

    #[test]
    fn prototype_scenarios() {
        assert_eq!(DeviceContext::HOME_WIFI.affordable_tier(), Tier::Gold);
        assert_eq!(DeviceContext::OUTDOOR_CELLULAR.affordable_tier(), Tier::Silver);
        assert_eq!(DeviceContext::UNDERGROUND.affordable_tier(), Tier::Bronze);
    }
}
