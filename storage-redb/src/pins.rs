//! [`PinStore`]: pinned identities, each pin one redb transaction that applies
//! [`aqm_core::pins::decide`].

use aqm_core::UserId;
use aqm_core::crypto::PublicIdentity;
use aqm_core::pins::{self, Pinned, Trust};
use aqm_core::store::PinStore;
use redb::ReadableTable;

use crate::RedbStore;
use crate::codec::{PINS, domain};
use crate::error::{Ctx, Error};
use crate::records;

impl PinStore for RedbStore {
    type Error = Error;

    fn pin_identity(&self, identity: &PublicIdentity, trust: Trust) -> Result<Pinned, Error> {
        self.write("pin_identity", |tx| {
            let key = self.sealing.ix(domain::PIN, &[&identity.user_id.0]);
            let mut t = tx.open_table(PINS).ctx("pin_identity: open table pins")?;
            let existing: Option<Pinned> = match t.get(key.as_slice()).ctx("pin_identity: read table pins")? {
                Some(g) => Some(records::decode::<records::PinRecord>(&self.sealing, "pins", &key, g.value())?),
                None => None,
            };
            match pins::decide(existing.as_ref(), identity, trust)? {
                Some(pin) => {
                    let bytes = records::encode::<records::PinRecord>(&self.sealing, "pins", &key, &pin)?;
                    t.insert(key.as_slice(), bytes.as_slice()).ctx("pin_identity: write table pins")?;
                    Ok(pin)
                }
                // `decide` only writes nothing when a pin exists.
                None => existing.ok_or(Error::Corrupt { table: "pins", detail: "pin vanished inside its transaction" }),
            }
        })
    }

    fn pinned(&self, user: &UserId) -> Result<Option<Pinned>, Error> {
        self.read("pinned", |tx| {
            let key = self.sealing.ix(domain::PIN, &[&user.0]);
            let t = tx.open_table(PINS).ctx("pinned: open table pins")?;
            match t.get(key.as_slice()).ctx("pinned: read table pins")? {
                Some(g) => records::decode::<records::PinRecord>(&self.sealing, "pins", &key, g.value()).map(Some),
                None => Ok(None),
            }
        })
    }
}
