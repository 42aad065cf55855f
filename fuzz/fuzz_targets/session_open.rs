//! The sealed-session decoders, `SendChain::open` and `RecvSession::open`, never panic.
//!
//! The first input byte picks a mode: raw blobs straight into `open` (length checks, the AEAD),
//! or record bytes sealed here under the fixed device key so they reach the postcard record
//! decoder and its checks behind the AEAD. Whatever opens must seal and open again to the same
//! value.
#![no_main]

use std::sync::Once;

use aqm_core::ratchet::{RecvSession, SendChain};
use aqm_fuzz::{Counter, PEER, check_layout, device_key, seal_record};
use libfuzzer_sys::fuzz_target;

static LAYOUT: Once = Once::new();

fuzz_target!(|data: &[u8]| {
    LAYOUT.call_once(check_layout);
    let Some((&mode, rest)) = data.split_first() else { return };
    let dk = device_key();
    let (send_blob, recv_blob) =
        if mode & 1 == 0 { (rest.to_vec(), rest.to_vec()) } else { (seal_record(rest, 1), seal_record(rest, 2)) };
    if let Ok(chain) = SendChain::open(&send_blob, &dk, &PEER) {
        let again = chain.seal(&dk, &mut Counter(1)).expect("reseals");
        assert_eq!(SendChain::open(&again, &dk, &PEER).expect("reopens"), chain);
    }
    if let Ok(session) = RecvSession::open(&recv_blob, &dk, &PEER) {
        let again = session.seal(&dk, &mut Counter(2)).expect("reseals");
        let reopened = RecvSession::open(&again, &dk, &PEER).expect("reopens");
        assert_eq!(reopened.current().next_counter(), session.current().next_counter());
        assert_eq!(reopened.skipped_len(), session.skipped_len());
    }
});
