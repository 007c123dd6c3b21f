//! The vendor key: the `GRADIENT-TOKEN` header built from it and a partner token, the secrets a
//! call scrubs from what comes back, and the re-reading of the key after a 401
//! ([`GradientClient::with_key_refresh`](crate::GradientClient::with_key_refresh)).

use crate::config::GradientConfig;
use crate::error::{GradientError, cap_message};
use crate::scrub::Scrubber;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use psa_domain::{ApiToken, VendorKey, deadline};
use reqwest::header::HeaderValue;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

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

/// `base64("<vendorKey>:<partnerToken>")`, the `GRADIENT-TOKEN` value.
pub(crate) fn header_text(key: &VendorKey, token: &ApiToken) -> String {
    STANDARD.encode(format!("{}:{}", key.expose_secret(), token.expose_secret()))
}

/// The `GRADIENT-TOKEN` header, marked sensitive.
pub(crate) fn header_value(
    key: &VendorKey,
    token: &ApiToken,
) -> Result<HeaderValue, GradientError> {
    let mut value =
        HeaderValue::from_str(&header_text(key, token)).map_err(|_| GradientError::Config {
            message: "the API token cannot form a header".to_owned(),
        })?;
    value.set_sensitive(true);
    Ok(value)
}

/// The vendor key a client (and its clones) sends, and how it is re-read.
pub(crate) struct VendorKeys {
    /// The current vendor key (replaced by a refresh that found a new one).
    current: RwLock<Arc<VendorKey>>,
    refresh: RwLock<Option<KeyRefresh>>,
    /// Serialises refreshes; holds when the last one finished.
    last_refresh: tokio::sync::Mutex<Option<Instant>>,
    refreshes: AtomicU64,
}

impl VendorKeys {
    pub(crate) fn new(key: VendorKey) -> Self {
        Self {
            current: RwLock::new(Arc::new(key)),
            refresh: RwLock::new(None),
            last_refresh: tokio::sync::Mutex::new(None),
            refreshes: AtomicU64::new(0),
        }
    }

    pub(crate) fn set_refresh(&self, refresh: KeyRefresh) {
        *self.refresh.write().unwrap_or_else(|e| e.into_inner()) = Some(refresh);
    }

    pub(crate) fn refresher(&self) -> Option<KeyRefresh> {
        self.refresh
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Refreshes asked for (successful or not).
    pub(crate) fn refreshes(&self) -> u64 {
        self.refreshes.load(Ordering::Relaxed)
    }

    pub(crate) fn current(&self) -> Arc<VendorKey> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The scrubber of a call's secrets (see the `scrub` module): the partner token, the vendor
    /// keys `used`, the current key, and the `GRADIENT-TOKEN` value of each key.
    pub(crate) fn scrubber<'a>(
        &self,
        token: &ApiToken,
        used: impl IntoIterator<Item = &'a VendorKey>,
    ) -> Scrubber {
        let current = self.current();
        let mut secrets = vec![token.expose_secret().to_owned()];
        let mut add = |key: &VendorKey| {
            secrets.push(key.expose_secret().to_owned());
            secrets.push(header_text(key, token));
        };
        used.into_iter().for_each(&mut add);
        add(&current);
        Scrubber::new(secrets)
    }

    /// After a 401 of a request sent with `used`: true when the request should be sent again
    /// with the (now) current key. See
    /// [`GradientClient::with_key_refresh`](crate::GradientClient::with_key_refresh).
    async fn renew(&self, config: &GradientConfig, token: &ApiToken, used: &VendorKey) -> bool {
        let Some(refresh) = self.refresher() else {
            return false;
        };
        let changed = || self.current().expose_secret() != used.expose_secret();
        if changed() {
            return true;
        }
        let mut last = self.last_refresh.lock().await;
        // Whoever held the lock may have found a new key meanwhile.
        if changed() {
            return true;
        }
        let interval = config.key_refresh_interval;
        if last.is_some_and(|at| at.elapsed() < interval) {
            return false;
        }
        self.refreshes.fetch_add(1, Ordering::Relaxed);
        let outcome = tokio::time::timeout(config.request_timeout, refresh()).await;
        *last = Some(Instant::now());
        match outcome {
            Ok(Ok(new)) if new.expose_secret() != used.expose_secret() => {
                *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(new);
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

    /// [`Self::renew`] within the task's deadline (`false` once it has passed).
    pub(crate) async fn renew_in_time(
        &self,
        config: &GradientConfig,
        token: &ApiToken,
        used: &VendorKey,
    ) -> bool {
        match deadline::remaining() {
            None => self.renew(config, token, used).await,
            Some(left) => tokio::time::timeout(left, self.renew(config, token, used))
                .await
                .unwrap_or(false),
        }
    }
}
