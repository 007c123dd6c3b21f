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
//! * Secrets: the `GRADIENT-TOKEN` value is built per request from the
//!   [`VendorKey`](psa_domain::VendorKey) and the [`ApiToken`](psa_domain::ApiToken) and marked
//!   sensitive; nothing logs a header. Errors carry the path and Gradient's own words
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

//!
//! Where things are: [`GradientConfig`] (module `config`) builds a [`GradientClient`] (module
//! `client`), whose calls are in `endpoints` (accounts, alerts, organization, services) and go
//! out through `transport` (retries, deadline, one request, body caps, error bodies); the key
//! and its refresh are `vendor_key`, the request budget `budget` (pacing, lease), the redaction
//! rule `scrub`, the wire types `types`, and [`GradientPsa`] (module `psa`) is the core's `Psa`
//! port on top of the client.

mod budget;
mod client;
mod config;
mod endpoints;
mod error;
mod psa;
mod scrub;
mod transport;
mod types;
mod vendor_key;

pub use budget::{Budget, LIMITER_SLACK, LeaseTiming};
pub use client::GradientClient;
pub use config::GradientConfig;
pub use endpoints::ACCOUNT_CHUNK;
pub use error::{GradientError, MAX_MESSAGE_CHARS};
pub use psa::GradientPsa;
/// The domain's port, named here too for callers that know it as Gradient's.
pub use psa_domain::ports::ServiceRegistry;
pub use transport::{MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES};
pub use types::{
    Account, AccountUpdate, AlertDebug, AlertPriority, AlertReceipt, IntegrationStatus, NewAccount,
    NewAlert, NewService, Organization, Sku, UnknownStatus, Vendor,
};
pub use vendor_key::{KeyRefresh, key_refresh};
