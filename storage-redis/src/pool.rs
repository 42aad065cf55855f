//! A small pool of blocking Redis connections with bounded retry.

use std::sync::Mutex;
use std::time::Duration;

use redis::io::tcp::TcpSettings;
use redis::{Connection, ConnectionLike, ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind};

use crate::Error;

/// Connection and retry settings. [`Options::default`] suits a local or LAN Redis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    /// Attempts per call before [`Error::Unavailable`] (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub backoff: Duration,
    /// Limit for establishing one TCP connection.
    pub connect_timeout: Duration,
    /// Limit for one request's reply (and for writing it).
    pub io_timeout: Duration,
    /// Idle connections kept for reuse; busier moments open more and close them afterwards.
    pub max_idle: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            attempts: 4,
            backoff: Duration::from_millis(50),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(5),
            max_idle: 16,
        }
    }
}

/// Whether a call may be sent again after the connection broke mid-request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Resend {
    /// Reads (and nothing-changing scripts): safe to send again.
    Safe,
    /// Changes: a reply lost in flight leaves the outcome unknown, so never sent twice.
    Never,
    /// Changes that carry an operation token: the script recognises its own earlier run and
    /// answers as it did, so they are resent like reads. The outcome is unknown only when no
    /// attempt got a reply after one reached the server.
    Deduplicated,
}

pub(crate) struct Pool {
    client: redis::Client,
    addr: String,
    idle: Mutex<Vec<Connection>>,
    opts: Options,
}

impl Pool {
    pub(crate) fn new(url: &str, opts: Options) -> Result<Self, Error> {
        if opts.attempts == 0 {
            return Err(Error::Config("attempts must be at least 1".into()));
        }
        let info = url
            .into_connection_info()
            .map_err(|e| Error::Config(format!("{e}: use redis://[:password@]host:port[/db]")))?;
        let db = info.redis_settings().db();
        let addr = format!("{}/{db}", info.addr());
        let info = info.set_tcp_settings(TcpSettings::default().set_nodelay(true));
        let client = redis::Client::open(info).map_err(|e| Error::Config(e.to_string()))?;
        Ok(Pool { client, addr, idle: Mutex::new(Vec::new()), opts })
    }

    /// The server address, without credentials.
    pub(crate) fn addr(&self) -> &str {
        &self.addr
    }

    fn take(&self) -> Result<Connection, RedisError> {
        if let Some(c) = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop() {
            return Ok(c);
        }
        let c = self.client.get_connection_with_timeout(self.opts.connect_timeout)?;
        c.set_read_timeout(Some(self.opts.io_timeout))?;
        c.set_write_timeout(Some(self.opts.io_timeout))?;
        Ok(c)
    }

    fn give_back(&self, c: Connection) {
        if !c.is_open() {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.opts.max_idle {
            idle.push(c);
        }
    }

    /// Drop every idle connection (e.g. after the server restarted).
    pub(crate) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }

    /// Run `f` on a connection, with up to `attempts` tries:
    /// - a connection that cannot be opened, and a server that answers "loading", "busy" or
    ///   "try again" (it did not run the request), are retried after a short backoff;
    /// - a connection that breaks after the request was written is retried for
    ///   [`Resend::Safe`] and [`Resend::Deduplicated`] calls; a [`Resend::Never`] change gets
    ///   [`Error::Unavailable`] with `outcome_known: false` at once;
    /// - any other server error is returned at once as [`Error::Server`].
    pub(crate) fn run<T>(
        &self,
        resend: Resend,
        mut f: impl FnMut(&mut Connection) -> redis::RedisResult<T>,
    ) -> Result<T, Error> {
        let mut wait = self.opts.backoff;
        let mut attempt = 0;
        // Whether a deduplicated change may have run without our hearing of it.
        let mut maybe_applied = false;
        loop {
            attempt += 1;
            let last = attempt >= self.opts.attempts;
            let unavailable = |reason: &RedisError, outcome_known: bool| Error::Unavailable {
                addr: self.addr.clone(),
                attempts: attempt,
                reason: reason.to_string(),
                outcome_known,
            };
            match self.take() {
                // Nothing was sent: always safe to try again.
                Err(e) if is_transport(&e) || is_not_run(&e) => {
                    if last {
                        return Err(unavailable(&e, !maybe_applied));
                    }
                }
                Err(e) => return Err(Error::Server(e.to_string())),
                Ok(mut conn) => match f(&mut conn) {
                    Ok(v) => {
                        self.give_back(conn);
                        return Ok(v);
                    }
                    Err(e) if is_not_run(&e) => {
                        self.give_back(conn);
                        if last {
                            return Err(unavailable(&e, !maybe_applied));
                        }
                    }
                    Err(e) if is_transport(&e) => {
                        // The connection is gone; so are the other idle ones, most likely.
                        drop(conn);
                        self.clear();
                        match resend {
                            Resend::Never => return Err(unavailable(&e, false)),
                            Resend::Deduplicated => maybe_applied = true,
                            Resend::Safe => {}
                        }
                        if last {
                            return Err(unavailable(&e, !maybe_applied));
                        }
                    }
                    Err(e) => {
                        self.give_back(conn);
                        return Err(Error::Server(e.to_string()));
                    }
                },
            }
            std::thread::sleep(wait);
            wait = wait.saturating_mul(2);
        }
    }
}

/// The connection could not be used: refused, reset, timed out, closed.
fn is_transport(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout()
}

/// The server refused to run the request for now (it changed nothing).
fn is_not_run(e: &RedisError) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::BusyLoading | ServerErrorKind::TryAgain | ServerErrorKind::MasterDown)
    ) || e.code() == Some("BUSY")
}
