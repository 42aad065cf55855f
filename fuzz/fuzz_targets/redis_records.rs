//! aqm-storage-redis's record decoders on arbitrary replies: everything the store reads back
//! from Redis (vault entry, stats and session hashes, burn and select script replies, contact
//! meta, pins, id set members) goes through the decoder the store uses (feature `fuzzing` of
//! aqm-storage-redis exposes them), including `redis`'s conversion of a raw reply where the
//! store relies on it. A reply that does not decode must come back as an error, never a panic.
//! Input: a selector byte, then the reply: byte-string fields as `present (1) ‖ len (1) ‖ bytes`,
//! `redis::Value`s as a tagged tree (nil, integer, bulk and simple strings, arrays).
#![no_main]

use aqm_core::{ContactId, UserId};
use aqm_storage_redis::fuzzing;
use libfuzzer_sys::fuzz_target;
use redis::Value;

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn bytes(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        b
    }
    /// An optional field, as one `HMGET` slot.
    fn field(&mut self) -> Option<Vec<u8>> {
        if self.byte() & 1 == 0 {
            return None;
        }
        let n = usize::from(self.byte());
        Some(self.bytes(n).to_vec())
    }
    fn fields(&mut self, n: usize) -> Vec<Option<Vec<u8>>> {
        (0..n).map(|_| self.field()).collect()
    }
    fn str(&mut self) -> String {
        String::from_utf8_lossy(&self.field().unwrap_or_default()).into_owned()
    }
    /// A reply tree, at most `depth` arrays deep.
    fn value(&mut self, depth: u8) -> Value {
        match self.byte() % 6 {
            0 => Value::Nil,
            1 => {
                let b = self.bytes(8);
                let mut a = [0u8; 8];
                a[..b.len()].copy_from_slice(b);
                Value::Int(i64::from_le_bytes(a))
            }
            2 | 3 => Value::BulkString(self.field().unwrap_or_default()),
            4 => Value::SimpleString(self.str()),
            _ if depth == 0 => Value::Nil,
            _ => {
                let n = usize::from(self.byte() % 12);
                Value::Array((0..n).map(|_| self.value(depth - 1)).collect())
            }
        }
    }
    fn values(&mut self) -> Vec<Value> {
        let n = usize::from(self.byte() % 12);
        (0..n).map(|_| self.value(2)).collect()
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let contact: ContactId = UserId([7; 16]);
    match input.byte() % 10 {
        0 => drop(fuzzing::vault_entry(input.fields(9))),
        1 => drop(fuzzing::vault_status(&input.str())),
        2 => {
            let fields: Vec<Option<i64>> = (0..usize::from(input.byte() % 8))
                .map(|_| {
                    (input.byte() & 1 == 1).then(|| i64::from_le_bytes(input.bytes(8).try_into().unwrap_or([0; 8])))
                })
                .collect();
            drop(fuzzing::vault_stats(&fields));
            drop(fuzzing::stats_reply(input.value(2)));
        }
        3 => drop(fuzzing::session(input.field(), input.field())),
        4 => drop(fuzzing::burn_reply(&input.str())),
        5 => drop(fuzzing::contact_meta(contact, input.value(2))),
        6 => drop(fuzzing::tier_counts(&input.values())),
        7 => drop(fuzzing::selection(&contact, input.values())),
        8 => drop(fuzzing::pin(&UserId([9; 16]), input.field(), input.field(), input.field())),
        _ => drop(fuzzing::id_member(&input.str())),
    }
});
