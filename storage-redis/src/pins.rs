//! [`PinStore`] on Redis: one hash per pinned user (name: the user id hashed; `rec`: the pin sealed). A pin is decided by the core
//! ([`aqm_core::pins::decide`]) inside a `WATCH`/`MULTI` transaction on that hash, so no rule is
//! restated here and a concurrent pin of the same user makes the transaction retry.

use aqm_core::UserId;
use aqm_core::crypto::PublicIdentity;
use aqm_core::pins::{self, Pinned, Trust};
use aqm_core::store::PinStore;

use crate::pool::Resend;
use crate::sealing::{Domain, Kind};
use crate::{Error, RedisStore};

/// A pin hash: `rec`, the pinned identity and trust sealed ([`Kind::Pin`]) under the hashed user id.
fn read_raw(c: &mut redis::Connection, key: &str) -> redis::RedisResult<Option<Vec<u8>>> {
    redis::cmd("HGET").arg(key).arg("rec").query(c)
}

/// A pin record, opened: it must be `user`'s (a record moved from another user's name does not
/// open: its index is bound into the seal).
pub(crate) fn decode_pin(key: &str, user: &UserId, plain: Option<&[u8]>) -> Result<Option<Pinned>, Error> {
    let Some(plain) = plain else { return Ok(None) };
    let pin: Pinned = postcard::from_bytes(plain).map_err(|_| Error::corrupt(key, "bad pin record"))?;
    if pin.identity.user_id != *user {
        return Err(Error::corrupt(key, "pin record of another user"));
    }
    Ok(Some(pin))
}

impl RedisStore {
    fn open_pin(&self, ix: &str, key: &str, user: &UserId, sealed: Option<Vec<u8>>) -> Result<Option<Pinned>, Error> {
        let plain = sealed.map(|b| self.seal.open(Kind::Pin, ix, &b, key)).transpose()?;
        decode_pin(key, user, plain.as_deref())
    }
}

impl PinStore for RedisStore {
    type Error = Error;

    fn pin_identity(&self, identity: &PublicIdentity, trust: Trust) -> Result<Pinned, Error> {
        let ix = self.seal.index(Domain::Pin, identity.user_id.as_bytes());
        let key = self.keys.pin(&ix);
        // Pinning the same identity again changes nothing, so the call may be resent.
        self.pool
            .run(Resend::Safe, |c| {
                let mut decided: Option<Result<Pinned, Error>> = None;
                redis::transaction(c, &[&key], |con, pipe| {
                    let sealed = read_raw(con, &key)?;
                    let existing = match self.open_pin(&ix, &key, &identity.user_id, sealed) {
                        Ok(p) => p,
                        Err(e) => {
                            decided = Some(Err(e));
                            return Ok(Some(()));
                        }
                    };
                    match pins::decide(existing.as_ref(), identity, trust) {
                        Err(e) => {
                            decided = Some(Err(e.into()));
                            Ok(Some(()))
                        }
                        Ok(None) => {
                            decided = existing.map(Ok);
                            Ok(Some(()))
                        }
                        Ok(Some(pin)) => {
                            let sealed = postcard::to_allocvec(&pin)
                                .map_err(|_| Error::corrupt(&key, "pin does not encode"))
                                .and_then(|plain| self.seal.seal(Kind::Pin, &ix, &plain));
                            let sealed = match sealed {
                                Ok(b) => b,
                                Err(e) => {
                                    decided = Some(Err(e));
                                    return Ok(Some(()));
                                }
                            };
                            let done: Option<()> = pipe.hset(&key, "rec", sealed).ignore().query(con)?;
                            if done.is_some() {
                                decided = Some(Ok(pin));
                            }
                            Ok(done)
                        }
                    }
                })?;
                Ok(decided)
            })?
            .unwrap_or_else(|| Err(Error::corrupt(&key, "pin transaction ended without a decision")))
    }

    fn pinned(&self, user: &UserId) -> Result<Option<Pinned>, Error> {
        let ix = self.seal.index(Domain::Pin, user.as_bytes());
        let key = self.keys.pin(&ix);
        let sealed = self.pool.run(Resend::Safe, |c| read_raw(c, &key))?;
        self.open_pin(&ix, &key, user, sealed)
    }
}
