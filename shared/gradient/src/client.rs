//! The client: one HTTP pool, one request budget, one vendor key, shared by every clone. Its
//! calls are in module `endpoints`, how each one goes over the wire in module `transport`.

#[cfg(test)]
mod tests;

use crate::budget::Budget;
use crate::config::{GradientConfig, config_error};
use crate::error::GradientError;
use crate::scrub::Scrubber;
use crate::vendor_key::{KeyRefresh, VendorKeys};
use psa_domain::{ApiToken, VendorKey};
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    /// Base URL without trailing slash.
    pub(crate) base: String,
    pub(crate) config: GradientConfig,
    pub(crate) keys: VendorKeys,
    budget: RwLock<Arc<Budget>>,
    pub(crate) sent: AtomicU64,
}

/// Cheap to clone: every clone shares the HTTP pool, the limiter and the sent counter.
#[derive(Clone)]
pub struct GradientClient {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for GradientClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GradientClient")
            .field("base_url", &self.inner.base)
            .field("max_rps", &self.inner.config.max_rps)
            .field("key_refresh", &self.inner.keys.refresher().is_some())
            .finish_non_exhaustive()
    }
}

/// The process-wide local budget for a given `max_rps`: every client built with it shares it.
fn process_wide(max_rps: u32) -> Arc<Budget> {
    static BUDGETS: OnceLock<Mutex<HashMap<u32, Arc<Budget>>>> = OnceLock::new();
    let mut map = BUDGETS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    map.entry(max_rps)
        .or_insert_with(|| Budget::local(max_rps))
        .clone()
}

impl GradientClient {
    pub fn new(config: GradientConfig, vendor_key: VendorKey) -> Result<Self, GradientError> {
        let base = config.checked_base()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .build()
            .map_err(|_| config_error("cannot build the HTTP client"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base,
                budget: RwLock::new(process_wide(config.max_rps)),
                config,
                keys: VendorKeys::new(vendor_key),
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
        self.inner.keys.set_refresh(refresh);
        self
    }

    /// Vendor-key refreshes this client and its clones have asked for (successful or not).
    pub fn key_refreshes(&self) -> u64 {
        self.inner.keys.refreshes()
    }

    pub fn config(&self) -> &GradientConfig {
        &self.inner.config
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

    /// The scrubber of a call's secrets: the partner token, the vendor keys `used`, the
    /// client's current key, and the `GRADIENT-TOKEN` value of each key.
    pub(crate) fn scrubber<'a>(
        &self,
        token: &ApiToken,
        used: impl IntoIterator<Item = &'a VendorKey>,
    ) -> Scrubber {
        self.inner.keys.scrubber(token, used)
    }
}
