//! What a client is built from: the base URL, timeouts, the request budget of the process, the
//! retry policy's numbers, and how often the vendor key may be re-read.

use crate::error::GradientError;
use std::time::Duration;

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
    /// At most one vendor-key refresh per this interval (see
    /// [`GradientClient::with_key_refresh`](crate::GradientClient::with_key_refresh)).
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

    /// Checks the configuration; the base URL without a trailing slash.
    pub(crate) fn checked_base(&self) -> Result<String, GradientError> {
        let url = reqwest::Url::parse(self.base_url.trim())
            .map_err(|_| config_error("base_url is not a valid URL"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(config_error("base_url must be an http(s) URL with a host"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(config_error("base_url must not have a query or fragment"));
        }
        if self.max_rps == 0 {
            return Err(config_error("max_rps must be positive"));
        }
        if self.request_timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(config_error("timeouts must be positive"));
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

pub(crate) fn config_error(message: &str) -> GradientError {
    GradientError::Config {
        message: message.to_owned(),
    }
}
