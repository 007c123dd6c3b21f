//! Errors of the Gradient client. None of them ever carries a key or the `GRADIENT-TOKEN` value,
//! nor any 12 characters in a row of one: messages hold the request path and Gradient's own words
//! (its `message`, a parse or transport error's text), scrubbed (module `scrub`) before any cut.

use crate::scrub::Scrubber;
use std::time::Duration;

/// Longest message (in characters) kept in a [`GradientError`].
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Cuts a message to [`MAX_MESSAGE_CHARS`] characters (on a char boundary), ending it with `…`
/// when cut. Call it after scrubbing secrets, so a secret is never cut into a visible prefix.
pub(crate) fn cap_message(message: String) -> String {
    match message.char_indices().nth(MAX_MESSAGE_CHARS - 1) {
        Some((i, _)) if message[i..].chars().nth(1).is_some() => {
            let mut cut = message[..i].to_owned();
            cut.push('…');
            cut
        }
        _ => message,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GradientError {
    /// 401: wrong vendor key, or the MSP regenerated/revoked the partner key.
    #[error("Gradient rejected the API token (401)")]
    TokenRejected,
    /// 403: "anomaly detected with your API usage".
    #[error("Gradient refused the request (403): {message}")]
    Forbidden { message: String },
    /// 404; on `post_count` it means the (account, service) pair is not mapped yet.
    #[error("Gradient answered not found (404): {message}")]
    NotFound { message: String },
    /// 409: duplicate id (the batch may not have been applied).
    #[error("Gradient answered conflict (409): {message}")]
    Conflict { message: String },
    /// Any other 4xx (and an unexpected 3xx: redirects are never followed).
    #[error("Gradient answered {status}: {message}")]
    BadRequest { status: u16, message: String },
    /// 429 after retries were exhausted.
    #[error("Gradient rate limit reached (429){}", retry_after.map(|d| format!(", retry after {}s", d.as_secs())).unwrap_or_default())]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx after retries were exhausted.
    #[error("Gradient server error ({status})")]
    Server { status: u16 },
    /// The request timed out (after retries).
    #[error("Gradient request timed out")]
    Timeout,
    /// Connection failure etc. (after retries).
    #[error("network error talking to Gradient: {message}")]
    Network { message: String },
    /// A 2xx answer whose body we cannot parse.
    #[error("unexpected Gradient response: {message}")]
    Malformed { message: String },
    /// Bad client configuration (base URL, limits) or a token that cannot form a header.
    #[error("Gradient client configuration error: {message}")]
    Config { message: String },
}

impl GradientError {
    /// This error with its message (if it has one) scrubbed of the secrets `scrubber` knows, and
    /// only then cut to [`MAX_MESSAGE_CHARS`]. Every error a call of the client returns has passed
    /// here.
    pub(crate) fn scrubbed(mut self, scrubber: &Scrubber) -> Self {
        if let Some(message) = self.message_mut() {
            *message = cap_message(scrubber.scrub(message, false));
        }
        self
    }

    pub(crate) fn message_mut(&mut self) -> Option<&mut String> {
        match self {
            Self::Forbidden { message }
            | Self::NotFound { message }
            | Self::Conflict { message }
            | Self::BadRequest { message, .. }
            | Self::Network { message }
            | Self::Malformed { message }
            | Self::Config { message } => Some(message),
            Self::TokenRejected
            | Self::RateLimited { .. }
            | Self::Server { .. }
            | Self::Timeout => None,
        }
    }

    /// Worth retrying later: rate limit, server trouble, timeout, network.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. } | Self::Server { .. } | Self::Timeout | Self::Network { .. }
        )
    }

    /// The HTTP status Gradient answered, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::TokenRejected => Some(401),
            Self::Forbidden { .. } => Some(403),
            Self::NotFound { .. } => Some(404),
            Self::Conflict { .. } => Some(409),
            Self::BadRequest { status, .. } | Self::Server { status } => Some(*status),
            Self::RateLimited { .. } => Some(429),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_capped_on_a_char_boundary() {
        assert_eq!(cap_message(String::new()), "");
        let exact = "é".repeat(MAX_MESSAGE_CHARS);
        assert_eq!(cap_message(exact.clone()), exact);
        let long = "é".repeat(MAX_MESSAGE_CHARS + 1);
        let cut = cap_message(long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert!(cut.ends_with("é…"), "{cut}");
        let mixed = format!("{}🦀🦀🦀", "a".repeat(MAX_MESSAGE_CHARS - 2));
        let cut = cap_message(mixed);
        assert_eq!(cut.chars().count(), MAX_MESSAGE_CHARS);
        assert!(cut.ends_with("a🦀…"), "{cut}");
    }
}
