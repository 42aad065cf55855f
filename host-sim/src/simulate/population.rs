//! The seeded population: users with a daily routine (where they are, how their battery drains),
//! a contact graph with a priority on each side, and which contacts have gone quiet.
//!
//! Device contexts are a pure function of (seed, user, day, hour), so they cost no memory and do
//! not depend on the order in which the engine asks for them.

use aqm_core::{DeviceContext, Priority};

use super::prng::{self, Prng};

/// Seconds in an hour and a day.
pub const HOUR: u64 = 3_600;
/// Seconds in a day.
pub const DAY: u64 = 86_400;

/// How a user's day goes: where the device is at each hour decides Wi-Fi and signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routine {
    /// Home Wi-Fi, a commute on cellular (partly underground), office Wi-Fi, home again.
    Commuter,
    /// On Wi-Fi nearly all day, out on cellular for an hour or two.
    HomeWorker,
    /// On cellular all day, often with a weak signal; home Wi-Fi late in the evening.
    Field,
    /// Always this context (hand-built populations in tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Fixed(DeviceContext),
}

/// One simulated user.
#[derive(Clone, Debug)]
pub struct User {
    /// Their day.
    pub routine: Routine,
    /// Hour the device leaves the charger (battery 100 %).
    pub wake_hour: u8,
    /// Battery used per waking hour, in percent.
    pub drain_pct_per_hour: u8,
    /// Typical cellular signal where this user lives, dBm.
    pub signal_dbm: i16,
    /// Hour of the night the device runs its maintenance (on the charger, on Wi-Fi): vault purge,
    /// garbage collection, pre-fetch, minting.
    pub maintenance_hour: u8,
}

/// One side of a contact relationship: how `owner` counts `peer`.
#[derive(Clone, Debug, PartialEq)]
pub struct Contact {
    /// The user whose device holds this contact.
    pub owner: u32,
    /// The contact.
    pub peer: u32,
    /// How the owner counts the peer.
    pub priority: Priority,
    /// Neither side writes during the run (an inactive contact).
    pub dormant: bool,
    /// Seconds before the run's start of the last message sent to this contact.
    pub idle_secs: u64,
}

/// A whole population: users and the contacts each side holds.
#[derive(Clone, Debug)]
pub struct Population {
    /// The users, by index.
    pub users: Vec<User>,
    /// Every directed contact, sorted by (owner, peer), no duplicates.
    pub contacts: Vec<Contact>,
}

/// What shapes a generated population.
#[derive(Clone, Debug)]
pub struct Shape {
    /// Users.
    pub users: u32,
    /// BESTIE relationships each user starts (each has two sides, so about twice this many per user).
    pub besties: u32,
    /// MATE relationships each user starts.
    pub mates: u32,
    /// Share of relationships that stay silent for the whole run.
    pub dormant: f64,
}

impl Population {
    /// A population drawn from `seed`.
    pub fn generate(shape: &Shape, seed: u64) -> Population {
        let mut rng = Prng::new(seed ^ 0x706f_7075_6c61_7465);
        let n = shape.users.max(2);
        let users = (0..n)
            .map(|_| {
                let r = rng.unit();
                let routine = if r < 0.5 {
                    Routine::Commuter
                } else if r < 0.8 {
                    Routine::HomeWorker
                } else {
                    Routine::Field
                };
                User {
                    routine,
                    wake_hour: 6 + rng.below(3) as u8,
                    drain_pct_per_hour: 2 + rng.below(6) as u8,
                    signal_dbm: -70 - rng.below(30) as i16,
                    maintenance_hour: 1 + rng.below(4) as u8,
                }
            })
            .collect();
        let mut contacts = Vec::with_capacity((n as usize) * 2 * (shape.besties + shape.mates) as usize);
        for owner in 0..n {
            for k in 0..shape.besties + shape.mates {
                let mut peer = rng.below(u64::from(n - 1)) as u32;
                if peer >= owner {
                    peer += 1;
                }
                let close = k < shape.besties;
                // The other side does not always count the relationship the same way.
                let (mine, theirs) = match (close, rng.chance(0.2)) {
                    (true, false) => (Priority::Bestie, Priority::Bestie),
                    (true, true) => (Priority::Bestie, Priority::Mate),
                    (false, false) => (Priority::Mate, Priority::Mate),
                    (false, true) => (Priority::Mate, Priority::Bestie),
                };
                let dormant = rng.chance(shape.dormant);
                // Quiet relationships last wrote up to 50 days ago; live ones within two days.
                let idle_secs = if dormant { rng.below(50 * DAY) } else { rng.below(2 * DAY) };
                contacts.push(Contact { owner, peer, priority: mine, dormant, idle_secs });
                contacts.push(Contact { owner: peer, peer: owner, priority: theirs, dormant, idle_secs });
            }
        }
        // Two relationships drawn between the same pair: keep the first side of each pair.
        contacts.sort_by_key(|c| (c.owner, c.peer));
        contacts.dedup_by_key(|c| (c.owner, c.peer));
        Population { users, contacts }
    }
}

/// The device context of `user` (index `index`) at `hour` of `day`.
pub fn context_at(seed: u64, index: u32, user: &User, day: u32, hour: u8) -> DeviceContext {
    if let Routine::Fixed(ctx) = user.routine {
        return ctx;
    }
    let roll = |salt: u64| prng::unit(seed ^ salt, u64::from(index), u64::from(day), u64::from(hour));
    let awake_hours = hour.checked_sub(user.wake_hour);
    // Asleep (before waking): on the charger at home.
    let battery_pct = match awake_hours {
        None => 100,
        Some(h) => 100u8.saturating_sub(h.saturating_mul(user.drain_pct_per_hour)).max(1),
    };
    let wake = user.wake_hour;
    enum Place {
        Wifi,
        Cell,
        Underground,
    }
    let place = match user.routine {
        Routine::Commuter => {
            if hour < wake + 1 || hour >= 19 {
                Place::Wifi
            } else if hour == wake + 1 || hour == 17 || hour == 18 {
                if roll(1) < 0.4 { Place::Underground } else { Place::Cell }
            } else if roll(2) < 0.75 {
                Place::Wifi
            } else {
                Place::Cell
            }
        }
        Routine::HomeWorker => {
            if roll(3) < 0.12 {
                Place::Cell
            } else {
                Place::Wifi
            }
        }
        Routine::Field => {
            if hour < wake || hour >= 20 {
                Place::Wifi
            } else if roll(4) < 0.1 {
                Place::Underground
            } else {
                Place::Cell
            }
        }
        Routine::Fixed(_) => Place::Wifi,
    };
    let noise = (roll(5) * 30.0) as i16 - 15;
    match place {
        Place::Wifi => DeviceContext { battery_pct, wifi: true, signal_dbm: -60 },
        Place::Cell => DeviceContext { battery_pct, wifi: false, signal_dbm: user.signal_dbm + noise },
        Place::Underground => DeviceContext { battery_pct, wifi: false, signal_dbm: -110 - noise.abs() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_fixed_by_the_seed_and_sides_are_unique() {
        let shape = Shape { users: 200, besties: 2, mates: 5, dormant: 0.2 };
        let a = Population::generate(&shape, 9);
        let b = Population::generate(&shape, 9);
        assert_eq!(a.contacts, b.contacts);
        assert!(a.contacts.windows(2).all(|w| (w[0].owner, w[0].peer) < (w[1].owner, w[1].peer)));
        assert!(a.contacts.iter().all(|c| c.owner != c.peer));
        let ctx = context_at(9, 3, &a.users[3], 4, 12);
        assert_eq!(ctx, context_at(9, 3, &a.users[3], 4, 12));
    }
}
