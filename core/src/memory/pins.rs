//! [`PinStore`] on the reference store: one pin per user id, decided by [`pins::decide`].

use super::{Inner, MemoryStore};
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
> Inner<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    pub(super) fn pin_index(&self, user: &UserId) -> Option<usize> {
        self.pins.iter().position(|p| p.identity.user_id == *user)
    }
}

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
        let at = inner.pin_index(&identity.user_id);
        match pins::decide(at.map(|i| &inner.pins[i]), identity, trust)? {
            None => Ok(at.map(|i| inner.pins[i].clone()).ok_or(Error::Malformed)?),
            Some(pin) => {
                match at {
                    Some(i) => inner.pins[i] = pin.clone(),
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
        Ok(inner.pin_index(user).map(|i| inner.pins[i].clone()))
    }
}
