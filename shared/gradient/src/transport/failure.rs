//! A non-2xx answer and the error it becomes, with Gradient's own words (its `message`, also
//! of a JSON body cut short) whole and scrubbed, to be cut only afterwards.

use super::partial_json::partial_message;
use crate::error::GradientError;
use crate::scrub::Scrubber;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use std::time::Duration;

/// A non-2xx answer as read.
pub(super) struct Failure {
    pub(super) status: StatusCode,
    pub(super) retry_after: Option<Duration>,
    /// At most [`MAX_ERROR_BODY_BYTES`](crate::MAX_ERROR_BODY_BYTES) of the body.
    pub(super) body: Vec<u8>,
    /// The body was longer (cut at [`MAX_ERROR_BODY_BYTES`](crate::MAX_ERROR_BODY_BYTES)).
    pub(super) truncated: bool,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<serde_json::Value>,
}

impl Failure {
    /// The error for this answer; its message is Gradient's, whole and scrubbed (not yet cut).
    pub(super) fn error(self, method: &Method, path: &str, scrubber: &Scrubber) -> GradientError {
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

/// `"{METHOD} {path}: {Gradient's message}"`, whole (scrub it, then cut it): the `message` of a
/// JSON body (also of one cut short), else the body's text. `truncated`: the body was cut at
/// [`MAX_ERROR_BODY_BYTES`](crate::MAX_ERROR_BODY_BYTES), maybe inside a character (dropped).
pub(super) fn error_message(
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
