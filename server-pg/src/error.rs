//! The crate's one error type, shared by the service and the client.

use aqm_core::StoreError;

/// Everything the directory service or its client can fail with.
///
/// A refusal of the rules is [`ServerError::Core`] (the core's own error, so the conformance kit
/// and callers can match on it); the other variants are this crate's: authentication, bad
/// requests, and availability of PostgreSQL or of the server.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ServerError {
    /// The core refused the operation (bad signature, quota spent, unknown user, …).
    #[error("{0}")]
    Core(#[from] aqm_core::Error),
    /// The request is malformed: bad JSON, base64, UUID or parameter.
    #[error("bad request: {0}")]
    BadRequest(String),
    /// No token, or a token that is not valid.
    #[error("missing or invalid token: send `Authorization: Bearer <token>` with the token POST /v1/users returned")]
    Unauthorized,
    /// The token is valid but does not allow this call.
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    /// No such endpoint.
    #[error("no such endpoint: see /v1/openapi.json for the API")]
    NotFound,
    /// The user id is already registered (registration hands out a token only once).
    #[error("user id already registered: its token was issued at registration")]
    AlreadyRegistered,
    /// The request body is larger than the server accepts.
    #[error("request body too large: at most {limit} bytes; upload fewer coins per request")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// Too many registrations from one client address.
    #[error("too many registrations from this address: retry after {retry_after_secs} s")]
    RateLimited {
        /// When to retry.
        retry_after_secs: u64,
    },
    /// PostgreSQL is unreachable or the pool is exhausted; the request changed nothing.
    #[error("directory database unavailable: {0}; retry later")]
    Unavailable(String),
    /// The request took longer than the server allows.
    #[error("request timed out on the server; retry later")]
    Timeout,
    /// A database error that is not an outage (a bug or a schema mismatch).
    #[error("database error: {0}")]
    Database(String),
    /// The schema in the database does not match this build's migrations.
    #[error("migrations: {0}")]
    Migration(String),
    /// Bad configuration (database URL, bind address, …).
    #[error("configuration: {0}")]
    Config(String),
    /// The server answered a client call with an error.
    #[error("server refused the call ({status} {error}): {detail}")]
    Remote {
        /// HTTP status.
        status: u16,
        /// The error kind the server named.
        error: String,
        /// The server's explanation.
        detail: String,
    },
    /// The client could not reach the server or read its reply.
    #[error("cannot reach the directory server: {0}")]
    Transport(String),
}

impl StoreError for ServerError {
    fn as_core(&self) -> Option<&aqm_core::Error> {
        match self {
            ServerError::Core(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "server")]
impl From<tokio_postgres::Error> for ServerError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A database error with an SQLSTATE is the server answering; anything else (closed
        // connection, I/O, timeout) means PostgreSQL is not reachable right now.
        match e.as_db_error() {
            Some(db) if db.code().code().starts_with("08") || db.code().code().starts_with("57P") => {
                ServerError::Unavailable(db.message().to_owned())
            }
            Some(db) => ServerError::Database(format!("{} ({})", db.message(), db.code().code())),
            None => ServerError::Unavailable(e.to_string()),
        }
    }
}

#[cfg(feature = "server")]
impl From<deadpool_postgres::PoolError> for ServerError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            other => ServerError::Unavailable(other.to_string()),
        }
    }
}
