//! The firmware's serial decoders on arbitrary bytes: the COBS frame reader
//! (`FrameReader::push`), `decode_request` on each frame, and the host side's
//! `decode::<Response>`. Never panic; a request that decodes re-encodes and decodes to itself.
#![no_main]

use aqm_firmware::protocol::{self, Frame, FrameReader, MAX_REQUEST_FRAME, MAX_RESPONSE_FRAME, Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut reader = FrameReader::<MAX_REQUEST_FRAME>::new();
    for &b in data {
        if let Some(Frame::Complete(frame)) = reader.push(b) {
            let mut copy = frame.to_vec();
            if let Ok(req) = protocol::decode_request(frame) {
                let mut buf = [0u8; MAX_REQUEST_FRAME + 8];
                if let Ok(enc) = protocol::encode(&req, &mut buf) {
                    let again: Request = protocol::decode(enc).expect("a re-encoded request decodes");
                    assert_eq!(again, req);
                }
            }
            let _ = protocol::decode::<Response>(&mut copy);
        }
    }
    // The whole input as one response frame too (the host reads up to MAX_RESPONSE_FRAME).
    if data.len() <= MAX_RESPONSE_FRAME {
        let _ = protocol::decode::<Response>(&mut data.to_vec());
    }
});
