//! How one call goes over the wire: the retry policy, the deadline, a new vendor key after a
//! 401, and the scrubbing of every error it returns (the crate doc has the rules). One request
//! is module `send`, a non-2xx answer module `failure`.

mod failure;
mod paced_body;
mod partial_json;
mod send;
#[cfg(test)]
mod tests;

pub use send::{MAX_BODY_BYTES, MAX_ERROR_BODY_BYTES};

use crate::client::GradientClient;
use crate::error::GradientError;
use psa_domain::{ApiToken, VendorKey, deadline};
use rand::Rng;
use reqwest::Method;
use send::Answer;
use std::sync::Arc;
use std::time::Duration;

/// Which errors a call retries.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Retry every transient error.
    Transient,
    /// Retry only a 429 (the request had no effect).
    Only429,
}

impl GradientClient {
    /// One call: the request under the retry policy, then `decode` of the 2xx body. Every error
    /// it returns — of any status, a transport failure, a body that does not decode — has passed
    /// [`GradientError::scrubbed`] with the call's secrets (each vendor key it was sent with, the
    /// client's current one, the partner token, the header built from each key).
    pub(crate) async fn call<T>(
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
            let key = self.inner.keys.current();
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
                if !key_renewed && self.inner.keys.renew_in_time(cfg, token, &key).await {
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
}
