//! What one chat process publishes to the other: a version byte, then a postcard-encoded
//! [`Frame`]. The envelope inside a [`Frame::Message`] is the core's wire format unchanged (it
//! authenticates itself); the frame around it only says what kind of payload follows.

use aqm_core::crypto::PublicIdentity;
use serde::{Deserialize, Serialize};

/// The frame format this build writes and reads.
pub const FRAME_VERSION: u8 = 1;

/// Longest user name (also the contact's display name in the inventory).
pub const MAX_NAME: usize = aqm_core::inventory::MAX_DISPLAY_NAME;

/// One publication on a user's channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// "I am here": sent once at start (`reply: false`) and once in answer to a partner's first
    /// hello (`reply: true`, never answered, so two processes exchange exactly two hellos).
    /// For a BESTIE or MATE the identity in it is the simulated contact exchange; a STRANGER's
    /// receiver ignores it and looks the sender's user id up in the directory instead.
    Hello {
        /// The sender's user name.
        name: String,
        /// Whether this answers a hello.
        reply: bool,
        /// The sender's public identity (user id, Ed25519 and ML-DSA-65 keys: no secret), boxed
        /// because its ML-DSA key (1952 B) dwarfs the other frames.
        identity: Box<PublicIdentity>,
    },
    /// One encrypted message: an AQM envelope (version 2).
    Message {
        /// The encoded envelope.
        envelope: Vec<u8>,
    },
    /// The sender quit.
    Bye {
        /// The sender's user name.
        name: String,
    },
}

/// Why bytes on a channel are not a frame.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// Empty payload.
    #[error("empty payload")]
    Empty,
    /// Written by another version of the chat.
    #[error("frame format v{found}, this build reads v{FRAME_VERSION}: run the same aqm-sim on both sides")]
    Version {
        /// The version byte found.
        found: u8,
    },
    /// The body does not decode.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

impl Frame {
    /// The bytes to publish.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![FRAME_VERSION];
        // Encoding into a growable buffer only fails for types serde cannot express; ours can.
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    /// Decode a payload; never panics on foreign bytes.
    pub fn decode(bytes: &[u8]) -> Result<Frame, FrameError> {
        let (&version, body) = bytes.split_first().ok_or(FrameError::Empty)?;
        if version != FRAME_VERSION {
            return Err(FrameError::Version { found: version });
        }
        postcard::from_bytes(body).map_err(|e| FrameError::Malformed(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_bytes() {
        let id = aqm_core::crypto::Identity::generate(&mut rand::rng());
        for f in [
            Frame::Hello { name: "alice".into(), reply: true, identity: Box::new(id.public().clone()) },
            Frame::Message { envelope: vec![2, 3, 4] },
            Frame::Bye { name: "bob".into() },
        ] {
            assert_eq!(Frame::decode(&f.encode()), Ok(f));
        }
        assert_eq!(Frame::decode(&[]), Err(FrameError::Empty));
        assert_eq!(Frame::decode(&[9, 0]), Err(FrameError::Version { found: 9 }));
        assert!(matches!(Frame::decode(&[FRAME_VERSION, 0xff, 0xff]), Err(FrameError::Malformed(_))));
    }
}
