//! `Envelope::decode` and `EnvelopeRef::decode` on arbitrary bytes: never panic, agree with each
//! other, and whatever decodes re-encodes to exactly the input (the encoding is canonical).
#![no_main]

use aqm_core::envelope::{Envelope, EnvelopeRef, MAX_ENVELOPE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let owned = Envelope::decode(data);
    let borrowed = EnvelopeRef::decode(data);
    assert_eq!(owned.as_ref().err(), borrowed.as_ref().err(), "the two decoders disagree");
    if let (Ok(env), Ok(r)) = (owned, borrowed) {
        assert_eq!(r.to_envelope().expect("converts"), env);
        let mut buf = [0u8; MAX_ENVELOPE];
        let bytes = env.encode(&mut buf).expect("re-encodes");
        assert_eq!(bytes, data, "decoded bytes are not canonical");
    }
});
