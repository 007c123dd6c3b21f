//! A faithful, in-memory simulator of Gradient MSP's Synthesize vendor API.
//!
//! * Vendor routes under `/api/vendor-api` with the shapes of `shared/docs/gradient-api.md`,
//!   `GRADIENT-TOKEN` auth (`base64("vendorKey:partnerKey")`, the partner key selects the
//!   organization), a rolling 1-second rate limit across the whole simulator (429 with
//!   `Retry-After: 1`; only admitted requests occupy the window), injectable faults and a request
//!   log with window statistics.
//! * Accounts as Gradient shows them: no description is listed as `""`; a PATCH without
//!   `description` keeps it, `""` clears it. Account ids can be refused (400 with a message).
//! * The alerting route (`POST /api/vendor-api/alerting/{accountId}`), validated like Gradient's
//!   SDK; accepted alerts are kept in [`OrgState::alerts`].
//! * Fault `echoToken` ([`EchoToken`]): vendor calls answer an error whose body echoes the
//!   received `GRADIENT-TOKEN` value (JSON, plain text, cut JSON, or 16 KiB+ with the value
//!   straddling the 16 KiB mark), to test that a client never shows any piece of a secret.
//! * Admin routes under `/_sim` (no auth, never limited or faulted) and the same operations as
//!   methods on [`SimHandle`]:
//!
//! | admin route | [`SimHandle`] method |
//! |---|---|
//! | `POST /_sim/organizations` `{name}` | [`SimHandle::create_organization`] |
//! | `POST /_sim/organizations/{org}/regenerate-key` | [`SimHandle::regenerate_key`] |
//! | `DELETE /_sim/organizations/{org}/accounts` | [`SimHandle::wipe_accounts`] |
//! | `POST /_sim/organizations/{org}/refuse-account` `{accountId, message, refused?}` | [`SimHandle::refuse_account`] |
//! | `POST /_sim/organizations/{org}/mappings` `{pairs, mapped?}` | [`SimHandle::set_mappings`] |
//! | `POST /_sim/organizations/{org}/mappings/all` `{except?}` | [`SimHandle::map_all`] |
//! | `GET /_sim/state` | [`SimHandle::state`] |
//! | `GET` / `DELETE /_sim/requests` | [`SimHandle::requests`] / [`SimHandle::clear_requests`] |
//! | `PUT` / `DELETE /_sim/faults` | [`SimHandle::set_faults`] / [`SimHandle::clear_faults`] |
//! | `PUT /_sim/config` `{maxRps}` | [`SimHandle::set_max_rps`] |
//! | `GET` / `PUT /_sim/vendor-key` `{vendorKey}` | [`SimHandle::vendor_key`] / [`SimHandle::set_vendor_key`] |
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! let sim = gradient_sim::Simulator::start(gradient_sim::SimConfig::default()).await?;
//! let org = sim.create_organization("Acme MSP");
//! let token = gradient_sim::gradient_token(&sim.vendor_key(), &org.partner_key);
//! // GET {sim.base_url()}/api/vendor-api/organization with header GRADIENT-TOKEN: token
//! # Ok(()) }
//! ```

mod admin;
pub mod model;
mod state;
mod vendor;

pub use model::*;
pub use state::{CATEGORIES, STATUSES};

use axum::Router;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use state::Shared;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Default rate limit, as Gradient documents it (100 requests a second).
pub const DEFAULT_MAX_RPS: u32 = 100;

/// The `GRADIENT-TOKEN` header value for a vendor key and a partner key.
pub fn gradient_token(vendor_key: &str, partner_key: &str) -> String {
    STANDARD.encode(format!("{vendor_key}:{partner_key}"))
}

#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    pub vendor_key: String,
    pub max_rps: u32,
    /// Seed of the RNG used for partner keys and fault injection (repeatable tests).
    pub seed: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            port: 0,
            vendor_key: "sim-vendor-key".to_owned(),
            max_rps: DEFAULT_MAX_RPS,
            seed: 42,
        }
    }
}

pub struct Simulator;

impl Simulator {
    /// Binds 127.0.0.1:`config.port` and serves until [`SimHandle::shutdown`] or drop.
    pub async fn start(config: SimConfig) -> std::io::Result<SimHandle> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", config.port)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(
            config.vendor_key.clone(),
            config.max_rps.max(1),
            config.seed,
        ));
        let app = app(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(SimHandle {
            addr,
            shared,
            stop: Some(tx),
            task: Some(task),
        })
    }
}

fn app(shared: Arc<Shared>) -> Router {
    vendor::router(shared.clone())
        .merge(admin::router(shared))
        .fallback(|| async { vendor::ApiError::new(404, "Cannot find route") })
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The vendor key that authenticates now (see [`SimHandle::set_vendor_key`]).
    pub fn vendor_key(&self) -> String {
        self.shared.lock().vendor_key.clone()
    }

    /// Rotates (or revokes) the vendor key: from now on only `new` authenticates, the previous
    /// key answers 401. Panics on an empty key or one with `:` (a test bug).
    pub fn set_vendor_key(&self, new: &str) {
        if let Err(m) = admin::validate_vendor_key(new) {
            panic!("invalid vendor key: {m}");
        }
        self.shared.lock().vendor_key = new.to_owned();
    }

    /// The `GRADIENT-TOKEN` value for a partner key of this simulator, with the current vendor key.
    pub fn token_for(&self, partner_key: &str) -> String {
        gradient_token(&self.vendor_key(), partner_key)
    }

    /// Creates an MSP organization with a fresh partner key (status `inactive`).
    pub fn create_organization(&self, name: &str) -> CreatedOrg {
        self.shared.lock().create_org(name)
    }

    /// New partner key; the old one answers 401 at once. `None` for an unknown organization.
    pub fn regenerate_key(&self, org_id: &str) -> Option<String> {
        self.shared.lock().regenerate_key(org_id)
    }

    /// A second key for the organization (the current one keeps working until a regenerate):
    /// a re-token to a new key without a window in which the old one is rejected.
    pub fn add_key(&self, org_id: &str) -> Option<String> {
        self.shared.lock().add_key(org_id)
    }

    /// Partner-side disconnect: deletes every account of the organization and its mappings.
    pub fn wipe_accounts(&self, org_id: &str) -> bool {
        self.shared.lock().wipe_accounts(org_id)
    }

    /// Refuses (`refused = true`) or accepts again an account id: a bulk account create whose
    /// batch contains it, and a PATCH of it, answer 400 with `message` (nothing of the batch is
    /// created). False for an unknown organization.
    pub fn refuse_account(
        &self,
        org_id: &str,
        account_id: &str,
        message: &str,
        refused: bool,
    ) -> bool {
        self.shared
            .lock()
            .refuse_account(org_id, account_id, message, refused)
    }

    /// Maps (`mapped = true`) or unmaps pairs, as the MSP does by drag and drop.
    pub fn set_mappings(&self, org_id: &str, pairs: &[Pair], mapped: bool) -> bool {
        self.shared.lock().set_mappings(org_id, pairs, mapped)
    }

    /// Maps every existing account × service pair except `except`.
    pub fn map_all(&self, org_id: &str, except: &[Pair]) -> bool {
        self.shared.lock().map_all(org_id, except)
    }

    /// Creates a vendor-wide service directly (no request logged); its `id` is ignored.
    pub fn create_service(&self, service: Service) -> Service {
        self.shared.lock().create_service(service)
    }

    pub fn state(&self) -> SimState {
        self.shared.lock().snapshot()
    }

    pub fn organization(&self, org_id: &str) -> Option<OrgState> {
        self.shared.lock().org(org_id).map(|o| o.to_state())
    }

    pub fn requests(&self) -> RequestsReport {
        self.shared.lock().requests()
    }

    /// The moment the request log's times (`at_us`, `at_ms`) count from.
    pub fn clock_origin(&self) -> std::time::Instant {
        self.shared.started
    }

    pub fn clear_requests(&self) {
        self.shared.lock().log.clear();
    }

    /// Replaces the injected faults. Panics on out-of-range fractions or statuses (a test bug).
    pub fn set_faults(&self, faults: Faults) {
        if let Err(m) = admin::validate_faults(&faults) {
            panic!("invalid faults: {m}");
        }
        self.shared.lock().faults = faults;
    }

    pub fn clear_faults(&self) {
        self.shared.lock().faults = Faults::default();
    }

    pub fn set_max_rps(&self, max_rps: u32) {
        self.shared.lock().max_rps = max_rps.max(1);
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s), then returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}
