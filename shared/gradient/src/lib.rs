//! Typed client of Gradient MSP's Synthesize vendor API (`shared/docs/gradient-api.md`).
//!
//! * One request budget ([`Budget`], module `budget`): every HTTP attempt (retries included)
//!   waits on it. By default it is the whole `max_rps`, shared by every clone of a client **and
//!   by every client of the process built with the same `max_rps`** (a process-wide registry);
//!   [`GradientClient::with_budget`] puts the client on a lease of the deployment-wide budget
//!   instead. It paces one request every `LIMITER_SLACK / rate` seconds (no burst) and adapts the
//!   rate to 429s (multiplicative decrease, additive increase).
//! * Retries: idempotent calls (GET, PATCH, counts — a count is a set — and the bulk account POST,
//!   whose replay answers 409 that the caller handles) retry transient errors up to
//!   `max_attempts`, honouring `Retry-After` seconds on 429 (capped at `backoff_cap`), otherwise
//!   exponential backoff with full jitter. `create_service` and `alert` retry only a 429 (no
//!   effect yet). 403/404/409/400 are never retried; a 401 only once, with a new vendor key (see
//!   below; a 401 had no effect, so this holds for every call).
//! * Secrets: the `GRADIENT-TOKEN` value is built per request from [`VendorKey`] and [`ApiToken`]
//!   and marked sensitive; nothing logs a header. Errors carry the path and Gradient's own words
//!   only: every error a call returns (any status, a 2xx body that does not parse, a transport
//!   failure) passes one scrubber with the call's secrets (the vendor keys it was sent with, the
//!   current one, the partner token, the header value of each key) before it is cut or logged.
//!   Any 12 characters in a row of a secret, raw, in base64 or escaped, are replaced by
//!   `[REDACTED]` (the rule: module `scrub`).
//! * Deadline: inside a `psa_domain::deadline::scope` every call ends by the scope's instant.
//!   Each attempt's timeout is cut to the time left. The wait for the budget is too (then the
//!   call is a `Timeout`, nothing sent), and so is a vendor-key refresh. A backoff or
//!   `Retry-After` wait that would not end before the deadline is not taken (the last error
//!   comes back), and a call with no time left is a `Timeout` at once, without sending. Outside
//!   a scope nothing changes.
//! * Vendor key refresh ([`GradientClient::with_key_refresh`]): on a 401 the client re-reads the
//!   vendor key; a changed key retries that request once and is kept for every later request of
//!   the client and its clones. Refreshes are coalesced (one at a time, at most one per
//!   [`GradientConfig::key_refresh_interval`]), so a revoked key costs one read per interval.
//! * Size caps: a 2xx body over [`MAX_BODY_BYTES`] is `Malformed` ("response too large"); of an
//!   error body at most [`MAX_ERROR_BODY_BYTES`] are read, the rest is ignored (a secret cut at
//!   that end is removed too); every message kept in a [`GradientError`] has at most
//!   [`MAX_MESSAGE_CHARS`] characters, cut only after the whole message was scrubbed.

mod budget;
mod error;
mod psa;
mod scrub;
mod types;
mod wire;

pub use budget::{Budget, LeaseTiming};
pub use error::GradientError;
use error::cap_message;
pub use psa::GradientPsa;
/// The domain's port, named here too for callers that know it as Gradient's.
pub use psa_domain::ports::ServiceRegistry;
pub use types::{
    Account, AccountUpdate, AlertDebug, AlertPriority, AlertReceipt, IntegrationStatus, NewAccount,
    NewAlert, NewService, Organization, Sku, UnknownStatus, Vendor,
};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use psa_domain::{ApiToken, VendorKey, deadline};
use rand::Rng;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use scrub::Scrubber;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Re-reads the vendor key (e.g. from Secrets Manager, without a cache); the error is a
/// human-readable cause that must not contain the key.
pub type KeyRefresh =
    Arc<dyn Fn() -> futures::future::BoxFuture<'static, Result<VendorKey, String>> + Send + Sync>;

/// A [`KeyRefresh`] from a closure returning a future (boxes it), e.g.
/// `key_refresh(move || { let c = c.clone(); async move { read(&c).await } })`.
pub fn key_refresh<F, Fut>(f: F) -> KeyRefresh
where
    F: Fn() -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<VendorKey, String>> + Send + 'static,
{
    Arc::new(move || Box::pin(f()))
}

/// Largest number of accounts sent in one `POST /organization/accounts`.
pub const ACCOUNT_CHUNK: usize = 100;

pub use budget::LIMITER_SLACK;

/// Largest 2xx body the client accepts (8 MiB); a larger one is `Malformed`.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// Most of an error body the client reads (16 KiB); the rest is ignored.
pub const MAX_ERROR_BODY_BYTES: usize = 16 << 10;

/// Longest message (in characters) kept in a [`GradientError`].
pub const MAX_MESSAGE_CHARS: usize = error::MAX_MESSAGE_CHARS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GradientConfig {
    /// e.g. `https://app.usegradient.com` (no `/api/vendor-api`; a trailing `/` is ignored).
    pub base_url: String,
    /// Whole-request timeout of one attempt (connect + send + body).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Request budget of the process for this Gradient (see the crate doc).
    pub max_rps: u32,
    /// Attempts of a retried call, the first included.
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// At most one vendor-key refresh per this interval (see [`GradientClient::with_key_refresh`]).
    pub key_refresh_interval: Duration,
}

impl GradientConfig {
    /// Defaults: 10 s request timeout, 3 s connect timeout, 80 rps, 4 attempts, backoff 200 ms..10 s,
    /// a vendor-key refresh at most every 10 s.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            max_rps: 80,
            max_attempts: 4,
            backoff_base: Duration::from_millis(200),
            backoff_cap: Duration::from_secs(10),
            key_refresh_interval: Duration::from_secs(10),
        }
    }
}

/// The process-wide local budget for a given `max_rps`.
fn shared_budget(max_rps: u32) -> Arc<Budget> {
    static BUDGETS: OnceLock<Mutex<HashMap<u32, Arc<Budget>>>> = OnceLock::new();
    let mut map = BUDGETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(max_rps)
        .or_insert_with(|| Budget::local(max_rps))
        .clone()
}

struct Inner {
    http: reqwest::Client,
    /// Base URL without trailing slash.
    base: String,
    config: GradientConfig,
    /// The current vendor key (replaced by a refresh that found a new one).
    vendor_key: RwLock<Arc<VendorKey>>,
    refresh: RwLock<Option<KeyRefresh>>,
    /// Serialises refreshes; holds when the last one finished.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    refreshes: AtomicU64,
    budget: RwLock<Arc<Budget>>,
    sent: AtomicU64,
}

/// Cheap to clone: every clone shares the HTTP pool, the limiter and the sent counter.
#[derive(Clone)]
pub struct GradientClient {
    inner: Arc<Inner>,
}

impl fmt::Debug for GradientClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GradientClient")
            .field("base_url", &self.inner.base)
            .field("max_rps", &self.inner.config.max_rps)
            .field("key_refresh", &self.refresher().is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Retry every transient error.
    Transient,
    /// Retry only a 429 (the request had no effect).
    Only429,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<serde_json::Value>,
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay).
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl GradientClient {
    pub fn new(config: GradientConfig, vendor_key: VendorKey) -> Result<Self, GradientError> {
        let cfg_err = |m: &str| GradientError::Config {
            message: m.to_owned(),
        };
        let url = reqwest::Url::parse(config.base_url.trim())
            .map_err(|_| cfg_err("base_url is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(cfg_err("base_url must be an http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(cfg_err("base_url must not have a query or fragment"));
        }
        if config.max_rps == 0 {
            return Err(cfg_err("max_rps must be positive"));
        }
        if config.request_timeout.is_zero() || config.connect_timeout.is_zero() {
            return Err(cfg_err("timeouts must be positive"));
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|_| cfg_err("cannot build the HTTP client"))?;
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                budget: RwLock::new(shared_budget(config.max_rps)),
                config,
                vendor_key: RwLock::new(Arc::new(vendor_key)),
                refresh: RwLock::new(None),
                last_refresh: tokio::sync::Mutex::new(None),
                refreshes: AtomicU64::new(0),
                sent: AtomicU64::new(0),
            }),
        })
    }

    /// Re-reads the vendor key through `refresh` when Gradient answers 401: if the key differs
    /// from the one the failed request used, that request is sent once more with the new key,
    /// which every later request of this client and its clones uses (logged at warn, never the
    /// key). An unchanged key or a failed refresh leaves the call `TokenRejected`. Concurrent 401s
    /// share one refresh, and there is at most one per `key_refresh_interval`; within it a 401
    /// is retried only when the current key already differs from the one its request used.
    ///
    /// The refresher is shared by the clones made from the returned client (and by existing ones).
    pub fn with_key_refresh(self, refresh: KeyRefresh) -> Self {
        *self
            .inner
            .refresh
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(refresh);
        self
    }

    /// Vendor-key refreshes this client and its clones have asked for (successful or not).
    pub fn key_refreshes(&self) -> u64 {
        self.inner.refreshes.load(Ordering::Relaxed)
    }

    pub fn config(&self) -> &GradientConfig {
        &self.inner.config
    }

    fn refresher(&self) -> Option<KeyRefresh> {
        self.inner
            .refresh
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn current_key(&self) -> Arc<VendorKey> {
        self.inner
            .vendor_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// After a 401 of a request sent with `used`: true when the request should be sent again
    /// with the (now) current key. See [`GradientClient::with_key_refresh`].
    async fn renew_key(&self, token: &ApiToken, used: &VendorKey) -> bool {
        let Some(refresh) = self.refresher() else {
            return false;
        };
        let changed = || self.current_key().expose_secret() != used.expose_secret();
        if changed() {
            return true;
        }
        let mut last = self.inner.last_refresh.lock().await;
        // Whoever held the lock may have found a new key meanwhile.
        if changed() {
            return true;
        }
        let interval = self.inner.config.key_refresh_interval;
        if last.is_some_and(|at| at.elapsed() < interval) {
            return false;
        }
        self.inner.refreshes.fetch_add(1, Ordering::Relaxed);
        let outcome = tokio::time::timeout(self.inner.config.request_timeout, refresh()).await;
        *last = Some(Instant::now());
        match outcome {
            Ok(Ok(new)) if new.expose_secret() != used.expose_secret() => {
                *self
                    .inner
                    .vendor_key
                    .write()
                    .unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
                tracing::warn!("vendor key changed; using the new one");
                true
            }
            Ok(Ok(_)) => {
                tracing::debug!("vendor key unchanged after a 401");
                false
            }
            Ok(Err(cause)) => {
                let cause = cap_message(self.scrubber(token, [used]).scrub(&cause, false));
                tracing::warn!(error = %cause, "cannot re-read the vendor key after a 401");
                false
            }
            Err(_) => {
                tracing::warn!("cannot re-read the vendor key after a 401: timed out");
                false
            }
        }
    }

    /// Puts this client and every clone of it on `budget` (e.g. a lease of the deployment-wide
    /// budget, [`Budget::leased`]) instead of the process-wide local one.
    pub fn with_budget(self, budget: Arc<Budget>) -> Self {
        *self.inner.budget.write().unwrap_or_else(|e| e.into_inner()) = budget;
        self
    }

    /// The request budget this client draws from.
    pub fn budget(&self) -> Arc<Budget> {
        self.inner
            .budget
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Gives back this process's part of a leased budget (see [`Budget::release`]); a no-op for
    /// a local budget.
    pub async fn release_budget(&self) {
        self.budget().release().await;
    }

    /// HTTP requests actually sent by this client and its clones (retries included).
    pub fn requests_sent(&self) -> u64 {
        self.inner.sent.load(Ordering::Relaxed)
    }

    /// `GET /api/vendor-api` → the vendor record with its services.
    pub async fn vendor(&self, token: &ApiToken) -> Result<Vendor, GradientError> {
        let path = "/api/vendor-api";
        self.call(token, Method::GET, path, None, Retry::Transient, |b| {
            parse::<Envelope<Vendor>>(path, b).map(|e| e.data)
        })
        .await
    }

    /// `GET /api/vendor-api/organization`: the way to check a token (401 → `TokenRejected`).
    pub async fn organization(&self, token: &ApiToken) -> Result<Organization, GradientError> {
        let path = "/api/vendor-api/organization";
        self.call(token, Method::GET, path, None, Retry::Transient, |b| {
            parse(path, b)
        })
        .await
    }

    /// `PATCH /api/vendor-api/organization/status/{status}` (no body).
    pub async fn set_status(
        &self,
        token: &ApiToken,
        status: IntegrationStatus,
    ) -> Result<(), GradientError> {
        let path = format!("/api/vendor-api/organization/status/{}", status.as_str());
        self.call(token, Method::PATCH, &path, None, Retry::Transient, |_| {
            Ok(())
        })
        .await
    }

    /// `GET /api/vendor-api/organization/accounts`.
    pub async fn list_accounts(&self, token: &ApiToken) -> Result<Vec<Account>, GradientError> {
        let path = "/api/vendor-api/organization/accounts";
        self.call(token, Method::GET, path, None, Retry::Transient, |b| {
            parse(path, b)
        })
        .await
    }

    /// `POST /api/vendor-api/organization/accounts` in chunks of [`ACCOUNT_CHUNK`]. A 409 comes
    /// back as `Conflict` (earlier chunks stay applied): re-read and create only the missing.
    pub async fn create_accounts(
        &self,
        token: &ApiToken,
        accounts: &[NewAccount],
    ) -> Result<Vec<Account>, GradientError> {
        let path = "/api/vendor-api/organization/accounts";
        let mut created = Vec::with_capacity(accounts.len());
        for chunk in accounts.chunks(ACCOUNT_CHUNK) {
            let body = to_body(chunk)?;
            let batch: Vec<Account> = self
                .call(
                    token,
                    Method::POST,
                    path,
                    Some(body),
                    Retry::Transient,
                    |b| parse(path, b),
                )
                .await?;
            created.extend(batch);
        }
        Ok(created)
    }

    /// `PATCH /api/vendor-api/organization/accounts/{accountId}`.
    pub async fn update_account(
        &self,
        token: &ApiToken,
        account_id: &str,
        update: &AccountUpdate,
    ) -> Result<Account, GradientError> {
        let path = format!(
            "/api/vendor-api/organization/accounts/{}",
            segment(account_id)
        );
        let body = to_body(update)?;
        self.call(
            token,
            Method::PATCH,
            &path,
            Some(body),
            Retry::Transient,
            |b| parse(&path, b),
        )
        .await
    }

    /// `POST /api/vendor-api/service` → the vendor record (find the new id in `skus`).
    /// Not idempotent: only a 429 is retried.
    pub async fn create_service(
        &self,
        token: &ApiToken,
        service: &NewService,
    ) -> Result<Vendor, GradientError> {
        let path = "/api/vendor-api/service";
        let body = to_body(service)?;
        self.call(token, Method::POST, path, Some(body), Retry::Only429, |b| {
            parse::<Envelope<Vendor>>(path, b).map(|e| e.data)
        })
        .await
    }

    /// `GET /api/vendor-api/service/{serviceId}`.
    pub async fn service(&self, token: &ApiToken, service_id: &str) -> Result<Sku, GradientError> {
        let path = format!("/api/vendor-api/service/{}", segment(service_id));
        self.call(token, Method::GET, &path, None, Retry::Transient, |b| {
            parse::<Envelope<Sku>>(&path, b).map(|e| e.data)
        })
        .await
    }

    /// `POST /api/vendor-api/service/{serviceId}/count[?no_build=true]` — sets the unit count.
    /// `NotFound` means the pair is not mapped in Synthesize yet (normal).
    pub async fn post_count(
        &self,
        token: &ApiToken,
        service_id: &str,
        account_id: &str,
        unit_count: u64,
        no_build: bool,
    ) -> Result<(), GradientError> {
        let mut path = format!("/api/vendor-api/service/{}/count", segment(service_id));
        if no_build {
            path.push_str("?no_build=true");
        }
        let body = to_body(&serde_json::json!({
            "accountId": account_id,
            "unitCount": unit_count,
        }))?;
        self.call(
            token,
            Method::POST,
            &path,
            Some(body),
            Retry::Transient,
            |_| Ok(()),
        )
        .await
    }

    /// `POST /api/vendor-api/alerting/{accountId}`: an alert that becomes a ticket in the MSP's
    /// PSA. Not idempotent: only a 429 is retried. `NotFound` means the account (or the
    /// `service_id`) is unknown to Gradient. An empty 2xx body is taken as accepted (the receipt
    /// then carries only the alert id); a `data` envelope is looked into.
    pub async fn alert(
        &self,
        token: &ApiToken,
        account_id: &str,
        alert: &NewAlert,
    ) -> Result<AlertReceipt, GradientError> {
        let path = format!("/api/vendor-api/alerting/{}", segment(account_id));
        let body = to_body(alert)?;
        self.call(
            token,
            Method::POST,
            &path,
            Some(body),
            Retry::Only429,
            |b| alert_receipt(&path, alert, b),
        )
        .await
    }

    /// #11: whether the alert answered with `message_id` became a ticket (a GET: retried like
    /// every read).
    pub async fn alert_debug(
        &self,
        token: &ApiToken,
        message_id: &str,
    ) -> Result<AlertDebug, GradientError> {
        let path = format!("/api/vendor-api/alerting/debug/{}", segment(message_id));
        let mut d: AlertDebug = self
            .call(token, Method::GET, &path, None, Retry::Transient, |b| {
                decode_enveloped(&path, b, None)
            })
            .await?;
        // Gradient's words in a 2xx answer go on into the audit trail: scrubbed like an error's.
        let scrubber = self.scrubber(token, []);
        d.errors = d.errors.iter().map(|e| scrubber.scrub(e, false)).collect();
        Ok(d)
    }

    /// One call: the request under the retry policy, then `decode` of the 2xx body. Every error
    /// it returns — of any status, a transport failure, a body that does not decode — has passed
    /// [`GradientError::scrubbed`] with the call's secrets (each vendor key it was sent with, the
    /// client's current one, the partner token, the header built from each key).
    async fn call<T>(
        &self,
        token: &ApiToken,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        retry: Retry,
        decode: impl FnOnce(&[u8]) -> Result<T, GradientError>,
    ) -> Result<T, GradientError> {
        let mut used = Vec::new();
        let result = match self
            .execute(token, method, path, body, retry, &mut used)
            .await
        {
            Ok(bytes) => decode(&bytes),
            Err(e) => Err(e),
        };
        result.map_err(|e| e.scrubbed(&self.scrubber(token, used.iter().map(|k| &**k))))
    }

    /// Runs a call with the retry policy, within the task's deadline (`psa_domain::deadline`);
    /// returns the 2xx body. `used` collects the vendor keys the attempts were sent with.
    async fn execute(
        &self,
        token: &ApiToken,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
        retry: Retry,
        used: &mut Vec<Arc<VendorKey>>,
    ) -> Result<Vec<u8>, GradientError> {
        let cfg = &self.inner.config;
        let max_attempts = cfg.max_attempts.max(1);
        let mut attempt = 0u32;
        let mut key_renewed = false;
        let mut last = None;
        loop {
            // No time left: nothing (more) is sent. A 401 answered to a vendor key that was
            // renewed since says nothing about the partner token: that is a timeout too.
            if deadline::remaining().is_some_and(|left| left.is_zero()) {
                return Err(match last {
                    None | Some(GradientError::TokenRejected) => GradientError::Timeout,
                    Some(e) => e,
                });
            }
            attempt += 1;
            let key = self.current_key();
            if !used
                .iter()
                .any(|k| k.expose_secret() == key.expose_secret())
            {
                used.push(key.clone());
            }
            let err = match self
                .attempt(&key, token, &method, path, body.as_deref(), used)
                .await
            {
                Ok(bytes) => return Ok(bytes),
                Err(e) => e,
            };
            // A 401 had no effect, so even a non-idempotent call may go again with a new key;
            // once per call, and it does not use up an attempt.
            if matches!(err, GradientError::TokenRejected) {
                if !key_renewed && self.renew_key_in_time(token, &key).await {
                    key_renewed = true;
                    attempt -= 1;
                    last = Some(err);
                    continue;
                }
                return Err(err);
            }
            let retryable = match retry {
                Retry::Transient => err.is_transient(),
                Retry::Only429 => matches!(err, GradientError::RateLimited { .. }),
            };
            if !retryable || attempt >= max_attempts {
                return Err(err);
            }
            let delay = match &err {
                GradientError::RateLimited {
                    retry_after: Some(d),
                } => (*d).min(cfg.backoff_cap),
                _ => self.backoff(attempt),
            };
            // A wait that would not end before the deadline is not taken.
            if deadline::remaining().is_some_and(|left| delay >= left) {
                tracing::debug!(
                    %method, path, attempt, delay_ms = delay.as_millis() as u64, error = %err,
                    "not retrying Gradient call: its deadline comes first"
                );
                return Err(err);
            }
            tracing::debug!(
                %method, path, attempt, delay_ms = delay.as_millis() as u64, error = %err,
                "retrying Gradient call"
            );
            tokio::time::sleep(delay).await;
            last = Some(err);
        }
    }

    /// [`Self::renew_key`] within the task's deadline (`false` once it has passed).
    async fn renew_key_in_time(&self, token: &ApiToken, used: &VendorKey) -> bool {
        match deadline::remaining() {
            None => self.renew_key(token, used).await,
            Some(left) => tokio::time::timeout(left, self.renew_key(token, used))
                .await
                .unwrap_or(false),
        }
    }

    /// Full jitter: uniform in `0..=min(cap, base × 2^(attempt-1))`.
    fn backoff(&self, attempt: u32) -> Duration {
        let cfg = &self.inner.config;
        let exp = cfg
            .backoff_base
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(cfg.backoff_cap);
        let ms = exp.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=ms))
    }

    /// `base64("<vendorKey>:<partnerToken>")`, the `GRADIENT-TOKEN` value.
    fn header_text(key: &VendorKey, token: &ApiToken) -> String {
        STANDARD.encode(format!("{}:{}", key.expose_secret(), token.expose_secret()))
    }

    fn header_value(key: &VendorKey, token: &ApiToken) -> Result<HeaderValue, GradientError> {
        let mut value = HeaderValue::from_str(&Self::header_text(key, token)).map_err(|_| {
            GradientError::Config {
                message: "the API token cannot form a header".to_owned(),
            }
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// The scrubber of a call's secrets (see the `scrub` module): the partner token, the vendor
    /// keys `used`, the client's current key, and the `GRADIENT-TOKEN` value of each key.
    fn scrubber<'a>(
        &self,
        token: &ApiToken,
        used: impl IntoIterator<Item = &'a VendorKey>,
    ) -> Scrubber {
        let current = self.current_key();
        let mut secrets = vec![token.expose_secret().to_owned()];
        let mut add = |key: &VendorKey| {
            secrets.push(key.expose_secret().to_owned());
            secrets.push(Self::header_text(key, token));
        };
        used.into_iter().for_each(&mut add);
        add(&current);
        Scrubber::new(secrets)
    }

    /// One HTTP attempt. Its error has passed [`GradientError::scrubbed`] (with the secrets of
    /// the keys `used` so far); Gradient's message is extracted whole from the body read, scrubbed
    /// — also of a secret cut at the end of a body cut at [`MAX_ERROR_BODY_BYTES`] — and cut only
    /// then.
    async fn attempt(
        &self,
        key: &VendorKey,
        token: &ApiToken,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
        used: &[Arc<VendorKey>],
    ) -> Result<Vec<u8>, GradientError> {
        let scrubber = || self.scrubber(token, used.iter().map(|k| &**k));
        match self.send(key, token, method, path, body).await {
            Ok(Answer::Success(bytes)) => Ok(bytes),
            Ok(Answer::Failure(failure)) => {
                let scrubber = scrubber();
                Err(failure.error(method, path, &scrubber).scrubbed(&scrubber))
            }
            Err(e) => Err(e.scrubbed(&scrubber())),
        }
    }

    /// Sends one request once the budget lets it go, within the task's deadline: the wait for the
    /// budget and the request itself end by it, and nothing is sent without time left.
    async fn send(
        &self,
        key: &VendorKey,
        token: &ApiToken,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, GradientError> {
        let header = Self::header_value(key, token)?;
        let budget = self.budget();
        let slot = match deadline::remaining() {
            None => budget.acquire().await,
            Some(left) => tokio::time::timeout(left, budget.acquire())
                .await
                .map_err(|_| GradientError::Timeout)?,
        };
        let timeout = deadline::bounded(self.inner.config.request_timeout);
        if timeout.is_zero() {
            return Err(GradientError::Timeout);
        }
        self.inner.sent.fetch_add(1, Ordering::Relaxed);
        psa_domain::calls::sent(); // the job's tally (GradientCalls)
        let url = format!("{}{}", self.inner.base, path);
        let mut rb = self
            .inner
            .http
            .request(method.clone(), url)
            .timeout(timeout)
            .header("GRADIENT-TOKEN", header)
            .header(ACCEPT, "application/json");
        // The slot counts from the moment the bytes leave: a body marks it when the connection
        // asks for it; a request without one keeps it until its answer came.
        let slot = match body {
            Some(b) => {
                let paced = wire::PacedBody::new(b.to_vec(), slot);
                rb = rb
                    .header(CONTENT_TYPE, "application/json")
                    .body(reqwest::Body::wrap(paced));
                None
            }
            None => Some(slot),
        };
        let resp = rb.send().await.map_err(|e| transport_error(path, &e));
        drop(slot);
        let resp = resp?;
        let status = resp.status();
        budget.on_response(status.as_u16());
        psa_domain::calls::answered(status.as_u16()); // 429s: the job's Throttled
        let retry_after = resp
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        if status.is_success() {
            let too_large = || GradientError::Malformed {
                message: format!("{path}: response too large"),
            };
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_BODY_BYTES as u64)
            {
                return Err(too_large());
            }
            let (bytes, truncated) = read_capped(resp, MAX_BODY_BYTES)
                .await
                .map_err(|e| transport_error(path, &e))?;
            if truncated {
                return Err(too_large());
            }
            return Ok(Answer::Success(bytes));
        }
        // The status decides; a body that fails half-way is as good as an empty one.
        let (body, truncated) = read_capped(resp, MAX_ERROR_BODY_BYTES)
            .await
            .unwrap_or_default();
        Ok(Answer::Failure(Failure {
            status,
            retry_after,
            body,
            truncated,
        }))
    }
}

/// What one request got back.
enum Answer {
    /// The 2xx body.
    Success(Vec<u8>),
    Failure(Failure),
}

/// A non-2xx answer as read.
struct Failure {
    status: StatusCode,
    retry_after: Option<Duration>,
    /// At most [`MAX_ERROR_BODY_BYTES`] of the body.
    body: Vec<u8>,
    /// The body was longer (cut at [`MAX_ERROR_BODY_BYTES`]).
    truncated: bool,
}

impl Failure {
    /// The error for this answer; its message is Gradient's, whole and scrubbed (not yet cut).
    fn error(self, method: &Method, path: &str, scrubber: &Scrubber) -> GradientError {
        let message = || {
            let text = error_message(method, path, self.status, &self.body, self.truncated);
            scrubber.scrub(&text, self.truncated)
        };
        match self.status.as_u16() {
            401 => GradientError::TokenRejected,
            403 => GradientError::Forbidden { message: message() },
            404 => GradientError::NotFound { message: message() },
            409 => GradientError::Conflict { message: message() },
            429 => GradientError::RateLimited {
                retry_after: self.retry_after,
            },
            s @ 500..=599 => GradientError::Server { status: s },
            s if (300..400).contains(&s) => GradientError::BadRequest {
                status: s,
                message: format!("{method} {path}: unexpected redirect (not followed)"),
            },
            s => GradientError::BadRequest {
                status: s,
                message: message(),
            },
        }
    }
}

/// The receipt of an alert from its 2xx body (see [`GradientClient::alert`]).
fn alert_receipt(path: &str, alert: &NewAlert, body: &[u8]) -> Result<AlertReceipt, GradientError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AlertReceipt {
            alert_id: alert.alert_id.clone(),
            ..AlertReceipt::default()
        });
    }
    decode_enveloped(path, body, Some("messageId"))
}

/// A JSON answer that Gradient may wrap as `{status, message, data: {...}}`: the object under
/// `data` when there is one (and the answer lacks its own field `own`, when given), else the
/// answer itself.
fn decode_enveloped<T: DeserializeOwned>(
    path: &str,
    body: &[u8],
    own: Option<&str>,
) -> Result<T, GradientError> {
    let value: serde_json::Value = parse(path, body)?;
    let value = match value {
        serde_json::Value::Object(mut o)
            if own.is_none_or(|f| !o.contains_key(f))
                && o.get("data").is_some_and(|d| d.is_object()) =>
        {
            o.remove("data").unwrap_or_default()
        }
        v => v,
    };
    serde_json::from_value(value).map_err(|e| GradientError::Malformed {
        message: format!("{path}: {e}"),
    })
}

/// Reads a body chunk by chunk, keeping at most `cap` bytes; `true` when more was there (the rest
/// is not read).
async fn read_capped(
    mut resp: reqwest::Response,
    cap: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        let room = cap - buf.len();
        if chunk.len() > room {
            buf.extend_from_slice(&chunk[..room]);
            return Ok((buf, true));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok((buf, false))
}

fn to_body<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, GradientError> {
    serde_json::to_vec(value).map_err(|e| GradientError::Config {
        message: cap_message(format!("cannot encode the request body: {e}")),
    })
}

/// A 2xx body as `T`; serde's message may quote the body: the call scrubs it.
fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, GradientError> {
    serde_json::from_slice(body).map_err(|e| GradientError::Malformed {
        message: format!("{path}: {e}"),
    })
}

/// `"{METHOD} {path}: {Gradient's message}"`, whole (scrub it, then cut it): the `message` of a
/// JSON body (also of one cut short), else the body's text. `truncated`: the body was cut at
/// [`MAX_ERROR_BODY_BYTES`], maybe inside a character (dropped).
fn error_message(
    method: &Method,
    path: &str,
    status: StatusCode,
    body: &[u8],
    truncated: bool,
) -> String {
    let body = if truncated { whole_chars(body) } else { body };
    let text = match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            message: Some(serde_json::Value::String(s)),
        }) => s,
        Ok(ErrorBody {
            message: Some(other),
        }) => other.to_string(),
        _ => {
            let raw = String::from_utf8_lossy(body);
            match partial_message(&raw) {
                Some(m) if !m.trim().is_empty() => m,
                _ if raw.trim().is_empty() => status.canonical_reason().unwrap_or("").to_owned(),
                _ => raw.into_owned(),
            }
        }
    };
    format!("{method} {path}: {text}")
}

/// `body` without a UTF-8 character cut short at its end.
fn whole_chars(body: &[u8]) -> &[u8] {
    match std::str::from_utf8(body) {
        Err(e) if e.error_len().is_none() => &body[..e.valid_up_to()],
        _ => body,
    }
}

/// The `"message"` string of a JSON object that may be cut anywhere, as far as it goes (all of
/// it: it is scrubbed before it is cut), with JSON escapes decoded; an escape cut short at the
/// end is dropped.
fn partial_message(body: &str) -> Option<String> {
    if !body.trim_start().starts_with('{') {
        return None;
    }
    let at = body.find("\"message\"")?;
    let rest = body[at + "\"message\"".len()..].trim_start();
    let rest = rest.strip_prefix(':')?.trim_start();
    let mut chars = rest.strip_prefix('"')?.chars();
    let mut out = String::new();
    loop {
        match chars.next() {
            None | Some('"') => break,
            Some('\\') => match chars.next() {
                None => break,
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r' | 'b' | 'f') => out.push(' '),
                Some('u') => {
                    let Some(v) = hex4(chars.as_str()) else { break };
                    chars = chars.as_str()[4..].chars();
                    if !(0xD800..0xDC00).contains(&v) {
                        out.push(char::from_u32(v).unwrap_or(char::REPLACEMENT_CHARACTER));
                        continue;
                    }
                    // A high surrogate: its low half should follow as `\uXXXX`.
                    let rest = chars.as_str();
                    let low = rest
                        .strip_prefix("\\u")
                        .and_then(hex4)
                        .filter(|low| (0xDC00..0xE000).contains(low));
                    match low {
                        Some(low) => {
                            let c = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
                            out.push(char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER));
                            chars = rest[6..].chars();
                        }
                        None if rest.len() < 6
                            && rest.chars().enumerate().all(|(i, c)| match i {
                                0 => c == '\\',
                                1 => c == 'u',
                                _ => c.is_ascii_hexdigit(),
                            }) =>
                        {
                            break; // the pair was cut
                        }
                        None => out.push(char::REPLACEMENT_CHARACTER),
                    }
                }
                Some(other) => out.push(other),
            },
            Some(c) => out.push(c),
        }
    }
    Some(out)
}

/// The value of 4 hex digits at the start of `s`.
fn hex4(s: &str) -> Option<u32> {
    let digits = s.get(..4)?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(digits, 16).ok()
}

/// A reqwest failure without its URL, with its cause chain (never a header).
fn transport_error(path: &str, e: &reqwest::Error) -> GradientError {
    if e.is_timeout() {
        return GradientError::Timeout;
    }
    let mut message = format!("{path}: {}", kind(e));
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    GradientError::Network { message }
}

fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response body failed"
    } else if e.is_request() {
        "request failed"
    } else {
        "transport error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_json_messages_are_read_as_far_as_they_go() {
        assert_eq!(
            partial_message(r#"{"message":"a\"b\n\u00e9"}"#).unwrap(),
            "a\"b\né"
        );
        assert_eq!(
            partial_message(r#"{"statusCode":400, "message" : "cut here"#).unwrap(),
            "cut here"
        );
        assert_eq!(partial_message(r#"{"message":"esc \u00"#).unwrap(), "esc ");
        assert_eq!(partial_message(r#"{"message":"esc \"#).unwrap(), "esc ");
        assert_eq!(partial_message(r#"{"statusCode":400"#), None);
        assert_eq!(partial_message("not json \"message\":\"x\""), None);
        // Surrogate pairs; one cut in two is dropped, a lone half is a replacement character.
        assert_eq!(
            partial_message(r#"{"message":"\ud83e\udd80!"#).unwrap(),
            "🦀!"
        );
        assert_eq!(partial_message(r#"{"message":"a\ud83e\udd"#).unwrap(), "a");
        assert_eq!(partial_message(r#"{"message":"a\ud83e"#).unwrap(), "a");
        assert_eq!(
            partial_message(r#"{"message":"a\ud83ex"#).unwrap(),
            "a\u{FFFD}x"
        );
        // Nothing is cut before scrubbing.
        let long = format!(r#"{{"message":"{}"#, "z".repeat(10_000));
        assert_eq!(partial_message(&long).unwrap().len(), 10_000);
        let s = StatusCode::BAD_REQUEST;
        let m = error_message(&Method::GET, "/p", s, br#"{"message":"half"#, true);
        assert_eq!(m, "GET /p: half");
        let m = error_message(&Method::GET, "/p", s, br#"{"message":{"k":1}}"#, false);
        assert_eq!(m, r#"GET /p: {"k":1}"#);
        assert_eq!(
            error_message(&Method::GET, "/p", s, b"", false),
            "GET /p: Bad Request"
        );
        let text = "y".repeat(5000);
        let m = error_message(&Method::GET, "/p", s, text.as_bytes(), false);
        assert_eq!(m.len(), "GET /p: ".len() + 5000);
        // A body cut inside a character loses that character, not more.
        let cut = &"abé".as_bytes()[..3];
        assert_eq!(
            error_message(&Method::GET, "/p", s, cut, true),
            "GET /p: ab"
        );
    }

    #[test]
    fn every_message_of_every_error_is_scrubbed_then_capped() {
        let key = VendorKey::parse("coro-vendor-7f3a9c2e-41b8-4d6a-9e0f-5b2c8d1a7e36").unwrap();
        let token = ApiToken::parse("pk_3b9e1f7c0a2d4e6f8a1b3c5d7e9f0a2b").unwrap();
        let client =
            GradientClient::new(GradientConfig::new("http://127.0.0.1:1"), key.clone()).unwrap();
        let header = GradientClient::header_text(&key, &token);
        let scrubber = client.scrubber(&token, [&key]);
        // The header straddles the 200-character cut: scrubbed first, nothing of it shows.
        let text = format!(
            "{} cause: {} {} {} {}",
            "é".repeat(180),
            &header[..40],
            token.expose_secret(),
            STANDARD.encode(key.expose_secret()),
            "z".repeat(300)
        );
        for err in [
            GradientError::Forbidden {
                message: text.clone(),
            },
            GradientError::NotFound {
                message: text.clone(),
            },
            GradientError::Conflict {
                message: text.clone(),
            },
            GradientError::BadRequest {
                status: 400,
                message: text.clone(),
            },
            GradientError::Network {
                message: text.clone(),
            },
            GradientError::Malformed {
                message: text.clone(),
            },
            GradientError::Config {
                message: text.clone(),
            },
        ] {
            let mut err = err.scrubbed(&scrubber);
            let message = err.message_mut().unwrap();
            assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS, "{message}");
            assert!(message.ends_with("é cause: [REDACTED] …"), "{message}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&header[..12]), "{shown}");
            assert!(!shown.contains(&header[20..32]), "{shown}");
            assert!(!shown.contains(&token.expose_secret()[..12]), "{shown}");
            assert!(
                !shown.contains(&STANDARD.encode(key.expose_secret())[..12]),
                "{shown}"
            );
        }
        let ok = GradientError::Timeout.scrubbed(&scrubber);
        assert!(matches!(ok, GradientError::Timeout));
    }

    #[tokio::test]
    async fn key_refresh_boxes_a_closure() {
        let calls = Arc::new(AtomicU64::new(0));
        let seen = calls.clone();
        let refresh = key_refresh(move || {
            let seen = seen.clone();
            async move {
                seen.fetch_add(1, Ordering::Relaxed);
                VendorKey::parse("k2").map_err(|_| "bad".to_owned())
            }
        });
        assert_eq!(refresh().await.unwrap().expose_secret(), "k2");
        assert_eq!(refresh().await.unwrap().expose_secret(), "k2");
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        let client = GradientClient::new(
            GradientConfig::new("http://127.0.0.1:1"),
            VendorKey::parse("k1").unwrap(),
        )
        .unwrap()
        .with_key_refresh(refresh);
        assert!(format!("{client:?}").contains("key_refresh: true"));
        assert_eq!(client.key_refreshes(), 0);
        assert_eq!(
            client.config().key_refresh_interval,
            Duration::from_secs(10)
        );
    }

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("ws-1_a.b~c"), "ws-1_a.b~c");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }

    #[test]
    fn config_is_checked() {
        let key = VendorKey::parse("v").unwrap();
        for bad in ["", "ftp://x", "not a url", "http://h/?q=1"] {
            let err = GradientClient::new(GradientConfig::new(bad), key.clone()).unwrap_err();
            assert!(matches!(err, GradientError::Config { .. }), "{bad}");
        }
        let mut c = GradientConfig::new("http://127.0.0.1:1/");
        c.max_rps = 0;
        assert!(GradientClient::new(c, key.clone()).is_err());
        let client = GradientClient::new(GradientConfig::new("http://127.0.0.1:1/"), key).unwrap();
        assert_eq!(client.inner.base, "http://127.0.0.1:1");
        assert!(!format!("{client:?}").contains("VendorKey"));
    }

    #[test]
    fn backoff_is_capped_full_jitter() {
        let mut c = GradientConfig::new("http://127.0.0.1:1");
        c.backoff_base = Duration::from_millis(100);
        c.backoff_cap = Duration::from_millis(300);
        let client = GradientClient::new(c, VendorKey::parse("v").unwrap()).unwrap();
        for attempt in 1..30 {
            assert!(client.backoff(attempt) <= Duration::from_millis(300));
        }
        assert!(client.backoff(1) <= Duration::from_millis(100));
    }

    #[test]
    fn clones_share_one_budget_and_same_rate_shares_across_clients() {
        let key = VendorKey::parse("v").unwrap();
        let mut c = GradientConfig::new("http://127.0.0.1:1");
        c.max_rps = 7;
        let a = GradientClient::new(c.clone(), key.clone()).unwrap();
        let b = GradientClient::new(c, key).unwrap();
        assert!(Arc::ptr_eq(&a.budget(), &a.clone().budget()));
        assert!(Arc::ptr_eq(&a.budget(), &b.budget()));
        let own = Budget::local(7);
        let c = b.clone().with_budget(own.clone());
        assert!(Arc::ptr_eq(&c.budget(), &own));
        assert!(
            Arc::ptr_eq(&b.budget(), &own),
            "clones share the budget they were given"
        );
        assert!(!Arc::ptr_eq(&a.budget(), &own));
    }
}
