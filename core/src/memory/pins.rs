//! [`PinStore`] on the reference store: one pin per user id, decided by [`pins::decide`].

use super::MemoryStore;
use crate::crypto::PublicIdentity;
use crate::pins::{self, Pinned, Trust};
use crate::store::PinStore;
use crate::{Error, UserId};

impl<
    const KEYS: usize,
    const COINS: usize,
    const CONTACTS: usize,
    const SESSIONS: usize,
    const DIRECTORY: usize,
    const USERS: usize,
    const CLAIMS: usize,
> PinStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    type Error = Error;

    fn pin_identity(&self, identity: &PublicIdentity, trust: Trust) -> Result<Pinned, Error> {
        let mut inner = self.inner.lock();
        let existing = inner.pins.iter().find(|p| p.identity.user_id == identity.user_id).cloned();
        match pins::decide(existing.as_ref(), identity, trust)? {
            // `decide` writes nothing only when a pin exists.
            None => existing.ok_or(Error::Malformed),
            Some(pin) => {
                match inner.pins.iter_mut().find(|p| p.identity.user_id == identity.user_id) {
                    Some(slot) => *slot = pin.clone(),
                    None => {
                        inner.pins.push(pin.clone()).map_err(|_| Error::CapacityFull { what: "pinned identities" })?
                    }
                }
                Ok(pin)
            }
        }
    }

    fn pinned(&self, user: &UserId) -> Result<Option<Pinned>, Error> {
        let inner = self.inner.lock();
        Ok(inner.pins.iter().find(|p| p.identity.user_id == *user).cloned())
    }
}
