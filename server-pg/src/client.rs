//! The typed client (feature `client`): every endpoint as an async call ([`Client`]), and the
//! directory as the core's synchronous [`DirectoryStore`] ([`HttpDirectory`]), so a
//! [`Messenger`](aqm_core::messaging::Messenger)'s `prefetch` (fill an inventory up to its caps,
//! every coin verified against its owner's identity) and `fetch_on_demand` (one coin when the
//! inventory is empty) run against a server exactly as against an in-process directory.
//!
//! A fetch is retried with the **same** `Idempotency-Key` when its reply is lost (connection
//! dropped, timeout, 503): the server then returns the coins it already handed out instead of
//! claiming more, so a lost reply loses no coin.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aqm_core::coin::PublicCoin;
use aqm_core::crypto::{PublicIdentity, RegistrationProof};
use aqm_core::directory::{Claimed, IdempotencyKey};
use aqm_core::store::{DirectoryStore, HasPolicy};
use aqm_core::{Policy, Tier, TierCounts, UnixSeconds, UserId};
use serde::de::DeserializeOwned;

use crate::ServerError;
use crate::wire::*;

/// How often a call whose reply was lost is retried (with the same idempotency key).
pub const RETRIES: u32 = 4;

/// An async client of one server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    /// A client of the server at `base_url` (`http://127.0.0.1:8080`).
    pub fn new(base_url: &str) -> Result<Client, ServerError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .connect_timeout(Duration::from_secs(3))
            .build()
            .map_err(|e| ServerError::Config(format!("HTTP client: {e}")))?;
        Ok(Client { http, base: base_url.trim_end_matches('/').to_owned() })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /v1/users`: register an identity; returns its token (shown once).
    pub async fn register(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<String, ServerError> {
        let request = self.http.post(self.url("/v1/users")).json(&RegisterRequest::new(identity, proof));
        let reply: RegisterResponse = send(request).await?;
        Ok(reply.token)
    }

    /// `GET /v1/users/{user_id}`; `None` if the user is not registered.
    pub async fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, ServerError> {
        match send::<IdentityResponse>(self.http.get(self.url(&format!("/v1/users/{user}")))).await {
            Ok(reply) => reply.parse().map(Some),
            Err(ServerError::Core(aqm_core::Error::UnknownUser)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/coins/upload` of `owner`'s coins with `owner`'s token; returns how many were new.
    /// Safe to retry (idempotent on key id), and retried on a lost reply.
    pub async fn upload(&self, token: &str, owner: &UserId, coins: &[PublicCoin]) -> Result<u32, ServerError> {
        let body = UploadRequest { user_id: owner.to_string(), coins: coins.iter().map(CoinJson::from_coin).collect() };
        let reply: UploadResponse =
            retrying(|| send(self.http.post(self.url("/v1/coins/upload")).bearer_auth(token).json(&body))).await?;
        Ok(reply.inserted)
    }

    /// `GET /v1/coins/fetch`: claim up to `count` of `owner`'s coins of `tier` for the token's
    /// user. With an idempotency key, a lost reply is retried with the same key.
    pub async fn fetch(
        &self,
        token: &str,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Vec<PublicCoin>, ServerError> {
        let query = [
            ("target_user_id", owner.to_string()),
            ("requester_id", requester.to_string()),
            ("coin_category", tier.as_str().to_owned()),
            ("count", count.to_string()),
        ];
        let go = || {
            let mut r = self.http.get(self.url("/v1/coins/fetch")).bearer_auth(token).query(&query);
            if let Some(key) = idempotency {
                r = r.header("Idempotency-Key", hex(&key));
            }
            send::<FetchResponse>(r)
        };
        // Without a key a retry could claim twice: only keyed fetches are retried.
        let reply = if idempotency.is_some() { retrying(go).await? } else { go().await? };
        reply.coins.iter().map(|c| c.to_coin(*owner)).collect()
    }

    /// `GET /v1/coins/count`.
    pub async fn count(&self, token: &str, user: &UserId) -> Result<TierCounts, ServerError> {
        let query = [("user_id", user.to_string())];
        let reply: CountResponse =
            retrying(|| send(self.http.get(self.url("/v1/coins/count")).bearer_auth(token).query(&query))).await?;
        Ok(reply.into())
    }

    /// `POST /v1/admin/purge-stale` with the admin token.
    pub async fn purge_stale(&self, admin_token: &str, max_age_days: Option<u32>) -> Result<u32, ServerError> {
        let r = self.http.post(self.url("/v1/admin/purge-stale")).bearer_auth(admin_token);
        let reply: DeletedResponse = send(r.json(&PurgeStaleRequest { max_age_days })).await?;
        Ok(reply.deleted)
    }

    /// `POST /v1/admin/hard-delete` with the admin token.
    pub async fn hard_delete(&self, admin_token: &str, grace_hours: Option<u32>) -> Result<u32, ServerError> {
        let r = self.http.post(self.url("/v1/admin/hard-delete")).bearer_auth(admin_token);
        let reply: DeletedResponse = send(r.json(&HardDeleteRequest { grace_hours })).await?;
        Ok(reply.deleted)
    }

    /// `GET /v1/health`: whether the server answers and reaches its database.
    pub async fn health(&self) -> Result<HealthResponse, ServerError> {
        let reply = self.http.get(self.url("/v1/health")).send().await.map_err(transport)?;
        reply.json().await.map_err(transport)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn transport(e: reqwest::Error) -> ServerError {
    ServerError::Transport(e.to_string())
}

/// Whether a failed call may have lost its reply (or hit a passing outage) and is worth retrying.
fn retryable(e: &ServerError) -> bool {
    matches!(e, ServerError::Transport(_) | ServerError::Unavailable(_) | ServerError::Timeout)
}

async fn retrying<T, F, Fut>(mut call: F) -> Result<T, ServerError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ServerError>>,
{
    let mut delay = Duration::from_millis(100);
    let mut attempt = 0;
    loop {
        match call().await {
            Err(e) if retryable(&e) && attempt < RETRIES => {
                tracing::debug!(error = %e, attempt, "retrying");
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Send a request; a JSON error reply becomes the matching typed error.
async fn send<T: DeserializeOwned>(request: reqwest::RequestBuilder) -> Result<T, ServerError> {
    let reply = request.send().await.map_err(transport)?;
    let status = reply.status();
    if status.is_success() {
        return reply.json().await.map_err(transport);
    }
    let body: ErrorBody = reply.json().await.unwrap_or_else(|_| ErrorBody {
        error: "unknown".into(),
        detail: format!("HTTP {status} without an error body"),
    });
    Err(from_reply(status.as_u16(), body))
}

/// The typed error for a server's error reply: the core's refusal where the server named one,
/// so callers (and the core's `Messenger`) can match on it as on an in-process directory's.
fn from_reply(status: u16, body: ErrorBody) -> ServerError {
    use aqm_core::Error as C;
    let core = match body.error.as_str() {
        "bad_signature" => Some(C::BadSignature),
        "wrong_owner" => Some(C::WrongOwner),
        "weak_identity_key" => Some(C::WeakIdentityKey),
        "coin_expired" => Some(C::CoinExpired),
        "bad_expiry" => Some(C::BadExpiry),
        "bad_public_key" => Some(C::BadPublicKey),
        "unknown_user" => Some(C::UnknownUser),
        _ => None,
    };
    match (core, body.error.as_str()) {
        (Some(c), _) => ServerError::Core(c),
        (None, "unavailable") => ServerError::Unavailable(body.detail),
        (None, "timeout") => ServerError::Timeout,
        (None, "unauthorized") => ServerError::Unauthorized,
        (None, "already_registered") => ServerError::AlreadyRegistered,
        _ => ServerError::Remote { status, error: body.error, detail: body.detail },
    }
}

/// The server as the core's [`DirectoryStore`], acting for every user whose token it holds
/// (one per user it registered, or added with [`HttpDirectory::add_token`]). `now` arguments are
/// ignored: the server rules by its own clock.
pub struct HttpDirectory {
    runtime: tokio::runtime::Runtime,
    client: Client,
    policy: Policy,
    tokens: Mutex<HashMap<UserId, String>>,
    admin_token: Option<String>,
}

impl HttpDirectory {
    /// A directory on the server at `base_url`, planning under `policy` (use the server's: its
    /// quota decides how much a claim may take).
    pub fn new(base_url: &str, policy: Policy) -> Result<HttpDirectory, ServerError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| ServerError::Config(format!("tokio runtime: {e}")))?;
        let client = Client::new(base_url)?;
        Ok(HttpDirectory { runtime, client, policy, tokens: Mutex::new(HashMap::new()), admin_token: None })
    }

    /// Use `admin_token` for the sweeps.
    pub fn with_admin_token(mut self, admin_token: &str) -> HttpDirectory {
        self.admin_token = Some(admin_token.to_owned());
        self
    }

    /// Act for `user` with its token.
    pub fn add_token(&self, user: UserId, token: String) {
        self.lock().insert(user, token);
    }

    /// The async client inside. Call it only through [`Self::block_on`]: its pooled
    /// connections belong to this directory's runtime.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Run a future (a [`Client`] call) on this directory's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.runtime.block_on(f)
    }

    /// `GET /v1/health`.
    pub fn health(&self) -> Result<HealthResponse, ServerError> {
        self.block_on(self.client.health())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, String>> {
        self.tokens.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn token(&self, user: &UserId) -> Result<String, ServerError> {
        self.lock().get(user).cloned().ok_or(ServerError::Unauthorized)
    }

    fn any_token(&self) -> Result<String, ServerError> {
        self.lock().values().next().cloned().ok_or(ServerError::Unauthorized)
    }

    fn admin(&self) -> Result<&str, ServerError> {
        self.admin_token.as_deref().ok_or(ServerError::Forbidden("no admin token given to this client"))
    }
}

impl HasPolicy for HttpDirectory {
    fn policy(&self) -> &Policy {
        &self.policy
    }
}

impl DirectoryStore for HttpDirectory {
    type Error = ServerError;

    fn register_identity(&self, identity: &PublicIdentity, proof: &RegistrationProof) -> Result<(), ServerError> {
        match self.runtime.block_on(self.client.register(identity, proof)) {
            Ok(token) => {
                self.add_token(identity.user_id, token);
                Ok(())
            }
            // Registered earlier through this client: the same identity again is a no-op.
            Err(ServerError::AlreadyRegistered) if self.lock().contains_key(&identity.user_id) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn identity(&self, user: &UserId) -> Result<Option<PublicIdentity>, ServerError> {
        self.runtime.block_on(self.client.identity(user))
    }

    fn upload(&self, owner: &UserId, coins: &[PublicCoin], _now: UnixSeconds) -> Result<u32, ServerError> {
        let token = self.token(owner)?;
        self.runtime.block_on(self.client.upload(&token, owner, coins))
    }

    fn claim(
        &self,
        owner: &UserId,
        requester: &UserId,
        tier: Tier,
        count: u32,
        idempotency: Option<IdempotencyKey>,
        _now: UnixSeconds,
    ) -> Result<Claimed, ServerError> {
        let token = self.token(requester)?;
        let coins = self.runtime.block_on(self.client.fetch(&token, owner, requester, tier, count, idempotency));
        let coins = coins.map_err(|e| match e {
            ServerError::Remote { error, .. } if error == "quota_exceeded" => {
                aqm_core::Error::QuotaExceeded { tier, quota: self.policy.claim_quota(tier) }.into()
            }
            other => other,
        })?;
        let mut claimed = Claimed::new();
        for c in coins {
            claimed.push(c).map_err(|_| ServerError::Transport("the server returned more coins than asked".into()))?;
        }
        Ok(claimed)
    }

    fn available(&self, owner: &UserId) -> Result<TierCounts, ServerError> {
        let token = self.token(owner).or_else(|_| self.any_token())?;
        self.runtime.block_on(self.client.count(&token, owner))
    }

    fn purge_stale(&self, _now: UnixSeconds) -> Result<u32, ServerError> {
        self.runtime.block_on(self.client.purge_stale(self.admin()?, None))
    }

    fn hard_delete_claimed(&self, _now: UnixSeconds) -> Result<u32, ServerError> {
        self.runtime.block_on(self.client.hard_delete(self.admin()?, None))
    }
}
