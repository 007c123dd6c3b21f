//! Bodies in and out of the endpoints: JSON encoding, decoding (also of an answer Gradient may
//! wrap in a `data` envelope), and path segments.

use crate::error::{GradientError, cap_message};
use serde::Deserialize;
use serde::de::DeserializeOwned;

#[derive(Deserialize)]
pub(super) struct Envelope<T> {
    pub(super) data: T,
}

/// Percent-encodes one path segment (RFC 3986 unreserved characters stay).
pub(super) fn segment(s: &str) -> String {
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

pub(super) fn to_body<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, GradientError> {
    serde_json::to_vec(value).map_err(|e| GradientError::Config {
        message: cap_message(format!("cannot encode the request body: {e}")),
    })
}

/// A 2xx body as `T`; serde's message may quote the body: the call scrubs it.
pub(super) fn parse<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, GradientError> {
    serde_json::from_slice(body).map_err(|e| GradientError::Malformed {
        message: format!("{path}: {e}"),
    })
}

/// A JSON answer that Gradient may wrap as `{status, message, data: {...}}`: the object under
/// `data` when there is one (and the answer lacks its own field `own`, when given), else the
/// answer itself.
pub(super) fn decode_enveloped<T: DeserializeOwned>(
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_encoded() {
        assert_eq!(segment("ws-1_a.b~c"), "ws-1_a.b~c");
        assert_eq!(segment("a/b c?"), "a%2Fb%20c%3F");
    }
}
