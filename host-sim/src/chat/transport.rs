//! Real-time delivery between the two chat processes over Redis pub/sub, as the prototype did:
//! user `u` listens on channel `{prefix}:{u}`; a sender publishes to its partner's channel.
//!
//! Pub/sub keeps nothing: a frame published while nobody listens is gone. The chat copes by
//! design (the hello handshake is answered, see [`super::frame::Frame::Hello`]), and a lost
//! message would only leave its chain's later messages waiting ([`aqm_core::Error::NoSession`]).

use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use redis::Commands;

use super::error::ChatError;

/// How long connecting may take before Redis counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The channel of `user` under `prefix`.
pub fn channel(prefix: &str, user: &str) -> String {
    format!("{prefix}:{user}")
}

/// What the listening thread hands the chat loop.
#[derive(Debug)]
pub enum Delivery {
    /// A payload published on our channel.
    Frame(Vec<u8>),
    /// The subscription broke; nothing more will arrive.
    Lost(String),
}

/// The publishing side; the listening side runs on its own thread ([`Pubsub::listen`]).
pub struct Pubsub {
    url: String,
    publisher: redis::Connection,
}

fn connect(url: &str) -> Result<redis::Connection, ChatError> {
    let unreachable = |e: redis::RedisError| ChatError::RedisUnreachable { url: url.to_owned(), detail: e.to_string() };
    let client = redis::Client::open(url).map_err(unreachable)?;
    client.get_connection_with_timeout(CONNECT_TIMEOUT).map_err(unreachable)
}

impl Pubsub {
    /// Connect to the Redis server at `url` (checked with a PING, so an unreachable server fails
    /// here with what to do about it).
    pub fn connect(url: &str) -> Result<Pubsub, ChatError> {
        let mut publisher = connect(url)?;
        redis::cmd("PING")
            .query::<String>(&mut publisher)
            .map_err(|e| ChatError::RedisUnreachable { url: url.to_owned(), detail: e.to_string() })?;
        Ok(Pubsub { url: url.to_owned(), publisher })
    }

    /// The server's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Publish `frame` on `channel`; returns how many processes received it.
    pub fn publish(&mut self, channel: &str, frame: &[u8]) -> Result<u64, ChatError> {
        self.publisher
            .publish(channel, frame)
            .map_err(|e| ChatError::Transport { url: self.url.clone(), detail: e.to_string() })
    }

    /// Subscribe to `channel` on a new connection and forward every payload to `out` from a
    /// thread of its own. Returns once the subscription is in place, so a hello published after
    /// this call can be answered.
    pub fn listen<T: From<Delivery> + Send + 'static>(&self, channel: &str, out: Sender<T>) -> Result<(), ChatError> {
        let url = self.url.clone();
        let channel = channel.to_owned();
        let (ready_tx, ready_rx): (Sender<Result<(), ChatError>>, Receiver<_>) = mpsc::channel();
        thread::Builder::new()
            .name("chat-subscriber".into())
            .spawn(move || {
                let mut con = match connect(&url) {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let mut sub = con.as_pubsub();
                if let Err(e) = sub.subscribe(&channel) {
                    let _ = ready_tx.send(Err(ChatError::Transport { url, detail: e.to_string() }));
                    return;
                }
                let _ = ready_tx.send(Ok(()));
                loop {
                    match sub.get_message() {
                        Ok(msg) => {
                            if out.send(Delivery::Frame(msg.get_payload_bytes().to_vec()).into()).is_err() {
                                return; // The chat loop has ended.
                            }
                        }
                        Err(e) => {
                            let _ = out.send(Delivery::Lost(e.to_string()).into());
                            return;
                        }
                    }
                }
            })
            .map_err(|e| ChatError::Transport {
                url: self.url.clone(),
                detail: format!("cannot start a thread: {e}"),
            })?;
        ready_rx
            .recv()
            .map_err(|_| ChatError::Transport { url: self.url.clone(), detail: "the subscriber stopped".into() })?
    }
}
