//! One request: it waits for the request budget, goes out within the task's deadline, and its
//! answer is read up to a size cap.

use super::failure::Failure;
use super::paced_body::PacedBody;
use crate::client::GradientClient;
use crate::error::GradientError;
use crate::vendor_key::header_value;
use psa_domain::{ApiToken, VendorKey, deadline};
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Largest 2xx body the client accepts (8 MiB); a larger one is `Malformed`.
pub const MAX_BODY_BYTES: usize = 8 << 20;

/// Most of an error body the client reads (16 KiB); the rest is ignored.
pub const MAX_ERROR_BODY_BYTES: usize = 16 << 10;

/// What one request got back.
pub(super) enum Answer {
    /// The 2xx body.
    Success(Vec<u8>),
    Failure(Failure),
}

impl GradientClient {
    /// Sends one request once the budget lets it go, within the task's deadline: the wait for the
    /// budget and the request itself end by it, and nothing is sent without time left.
    pub(super) async fn send(
        &self,
        key: &VendorKey,
        token: &ApiToken,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, GradientError> {
        let header = header_value(key, token)?;
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
                let paced = PacedBody::new(b.to_vec(), slot);
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
