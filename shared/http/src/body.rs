//! Request and response bodies: JSON with limits, and the `Location` header.

use crate::error::ApiError;
use lambda_http::http::{HeaderValue, StatusCode, header};
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest request body accepted (16 KiB); larger → 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The JSON body as `T`: at most [`MAX_BODY_BYTES`], JSON content type, no unknown fields
/// (`T` says `deny_unknown_fields`). Error details never echo string values from the body.
pub fn json_body<T: DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        if !(ct.starts_with("application/json") || ct.contains("+json")) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    if bytes.is_empty() {
        return Err(ApiError::InvalidBody(
            "the request needs a JSON body".into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidBody(redact_quoted(&e.to_string())))
}

/// Replaces every double-quoted fragment of a parser message with `"…"`, so that an error about a
/// value never repeats the value (it may be a token) while field names in backticks stay readable.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut inside = false;
    for c in msg.chars() {
        if c == '"' {
            if inside {
                out.push_str("…\"");
            } else {
                out.push('"');
            }
            inside = !inside;
        } else if !inside {
            out.push(c);
        }
    }
    out
}

pub fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::Text(
            serde_json::to_string(value).expect("views serialise"),
        ))
        .expect("static response parts")
}

pub fn with_location(mut resp: Response<Body>, location: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parser_messages_never_echo_values() {
        assert_eq!(
            redact_quoted(r#"invalid type: string "s3cr3t", expected struct X at line 1 column 9"#),
            r#"invalid type: string "…", expected struct X at line 1 column 9"#
        );
    }
}
