//! [`SessionStore`] on the reference store: records per peer and direction, saved by
//! compare-and-swap ([`next_session_version`]); burn-and-save decides both halves before it
//! writes either.

use super::{Inner, MemoryStore, SessionRecord};
use crate::store::{Direction, SessionBlob, SessionStore, SessionVersion, StoredSession, next_session_version};
use crate::vault::{OpenDigest, Transition};
use crate::{Error, KeyId, UnixSeconds, UserId};

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
    pub(super) fn session_index(&self, peer: &UserId, direction: Direction) -> Option<usize> {
        self.sessions.iter().position(|s| s.peer == *peer && s.direction == direction)
    }

    /// Whether a session for `peer`/`direction` can be written (it exists, or there is room).
    pub(super) fn session_fits(&self, peer: &UserId, direction: Direction) -> bool {
        self.session_index(peer, direction).is_some() || !self.sessions.is_full()
    }

    /// The version a compare-and-swap write of this record would get (nothing written).
    pub(super) fn session_cas(
        &self,
        peer: &UserId,
        direction: Direction,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let current = self.sessions.iter().find(|s| s.peer == *peer && s.direction == direction).map(|s| s.version);
        let version = next_session_version(current, expected)?;
        if !self.session_fits(peer, direction) {
            return Err(Error::CapacityFull { what: "session store" });
        }
        Ok(version)
    }

    /// Write a record whose version [`Inner::session_cas`] approved.
    pub(super) fn write_session(
        &mut self,
        peer: &UserId,
        direction: Direction,
        blob: &SessionBlob,
        version: SessionVersion,
    ) {
        match self.sessions.iter_mut().find(|s| s.peer == *peer && s.direction == direction) {
            Some(record) => {
                record.blob.clone_from(blob);
                record.version = version;
            }
            // `session_cas` checked there is room.
            None => {
                let _ = self.sessions.push(SessionRecord { peer: *peer, direction, blob: blob.clone(), version });
            }
        }
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
> SessionStore for MemoryStore<KEYS, COINS, CONTACTS, SESSIONS, DIRECTORY, USERS, CLAIMS>
{
    fn load_session(&self, peer: &UserId, direction: Direction) -> Result<Option<StoredSession>, Error> {
        let inner = self.inner.lock();
        Ok(inner
            .sessions
            .iter()
            .find(|s| s.peer == *peer && s.direction == direction)
            .map(|r| StoredSession { blob: r.blob.clone(), version: r.version }))
    }

    fn save_session(
        &self,
        peer: &UserId,
        direction: Direction,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let mut inner = self.inner.lock();
        let version = inner.session_cas(peer, direction, expected)?;
        inner.write_session(peer, direction, blob, version);
        Ok(version)
    }

    fn burn_and_save_session(
        &self,
        key_id: &KeyId,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let mut inner = self.inner.lock();
        // Decide both halves first, so that neither is written unless both can be.
        let mut burned = inner.vault.iter().find(|e| e.key_id == *key_id).ok_or(Error::KeyNotFound)?.clone();
        burned.burn(&self.policy, now)?;
        let version = inner.session_cas(peer, Direction::Receive, expected)?;
        inner.write_session(peer, Direction::Receive, blob, version);
        let tier = burned.tier;
        if let Some(entry) = inner.vault.iter_mut().find(|e| e.key_id == *key_id) {
            *entry = burned;
        }
        inner.stats.apply(Transition::Burned(tier));
        inner.write_opens(key_id, None);
        Ok(version)
    }

    fn open_last_resort_and_save_session(
        &self,
        key_id: &KeyId,
        digest: &OpenDigest,
        now: UnixSeconds,
        peer: &UserId,
        blob: &SessionBlob,
        expected: Option<SessionVersion>,
    ) -> Result<SessionVersion, Error> {
        let mut inner = self.inner.lock();
        // Decide the open and the session before writing either.
        let open = inner.decide_open(key_id, digest, &self.policy, now)?;
        let version = inner.session_cas(peer, Direction::Receive, expected)?;
        inner.write_session(peer, Direction::Receive, blob, version);
        inner.apply_open(open);
        Ok(version)
    }
}
