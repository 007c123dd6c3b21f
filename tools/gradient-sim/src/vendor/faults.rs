//! Fault injection at the gate: errors, delays, echoed tokens, padded bodies.

use super::*;
use crate::model::{ECHO_LARGE_AT, ECHO_LARGE_CUT, EchoShape, RequestRecord};
use crate::state::Shared;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rand::Rng;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `POST /api/vendor-api/service/{id}/count` (the only route `count_latency_ms` delays).
pub(super) fn is_count_route(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path
            .strip_prefix("/api/vendor-api/service/")
            .and_then(|rest| rest.strip_suffix("/count"))
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

/// `POST /api/vendor-api/alerting/{accountId}` (the only route `alert_status` forces).
pub(super) fn is_alert_route(method: &axum::http::Method, path: &str) -> bool {
    method == axum::http::Method::POST
        && path
            .strip_prefix("/api/vendor-api/alerting/")
            .is_some_and(|id| !id.is_empty() && !id.contains('/'))
}

pub(super) enum Injected {
    None,
    TooMany(Option<u64>),
    Unavailable,
    Unauthorized,
    Forced(u16),
    Malformed,
}

/// Middleware on every vendor route: rate limit, auth, faults, then the request log.
pub(super) async fn gate(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let arrived = Instant::now();
    let is_count = is_count_route(req.method(), req.uri().path());
    let is_alert = is_alert_route(req.method(), req.uri().path());
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default();
    let org = authenticate(&shared, req.headers());
    let sent_token = req
        .headers()
        .get("gradient-token")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .unwrap_or_default();

    let (admitted, max_rps, delay, injected, pad_to, echo) = {
        let mut inner = shared.lock();
        let max_rps = inner.max_rps;
        let admitted = inner.admit(arrived);
        let echo = if admitted {
            take_echo(&mut inner.faults, req.uri().path())
        } else {
            None
        };
        let f = inner.faults.clone();
        let mut delay = Duration::from_millis(f.latency_ms);
        if is_count {
            delay += Duration::from_millis(f.count_latency_ms);
        }
        if f.slow_rate > 0.0 && inner.rng.random::<f64>() < f.slow_rate {
            delay += Duration::from_millis(f.slow_ms);
        }
        let injected = if let Some(s) = f.force_status {
            Injected::Forced(s)
        } else if f.unauthorized_after == Some(0) {
            Injected::Unauthorized
        } else if let (true, Some(s)) = (is_alert, f.alert_status) {
            Injected::Forced(s)
        } else if f.rate429 > 0.0 && inner.rng.random::<f64>() < f.rate429 {
            Injected::TooMany(f.retry_after_secs)
        } else if f.rate5xx > 0.0 && inner.rng.random::<f64>() < f.rate5xx {
            Injected::Unavailable
        } else if f.malformed_rate > 0.0 && inner.rng.random::<f64>() < f.malformed_rate {
            Injected::Malformed
        } else {
            Injected::None
        };
        (admitted, max_rps, delay, injected, f.error_body_bytes, echo)
    };

    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let response = if !admitted {
        let mut r = ApiError::new(
            429,
            format!("Request limit reached ({max_rps} requests a second)"),
        )
        .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    } else if let Some((shape, status)) = echo {
        echo_response(shape, status, &sent_token)
    } else {
        match (&org, injected) {
            (None, _) | (_, Injected::Unauthorized) => {
                ApiError::new(401, "Unauthorized: invalid GRADIENT-TOKEN").into_response()
            }
            (_, Injected::Forced(403)) => {
                ApiError::new(403, "Anomaly detected with your API usage").into_response()
            }
            (_, Injected::Forced(s)) => {
                ApiError::new(s, format!("Injected status {s}")).into_response()
            }
            (_, Injected::TooMany(retry_after)) => {
                let mut r = ApiError::new(
                    429,
                    format!("Request limit reached ({max_rps} requests a second)"),
                )
                .into_response();
                if let Some(secs) = retry_after {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                r
            }
            (_, Injected::Unavailable) => ApiError::new(503, "Service Unavailable").into_response(),
            (_, Injected::Malformed) => (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                "{\"status\":\"succ",
            )
                .into_response(),
            (Some(org_id), Injected::None) => {
                req.extensions_mut().insert(OrgId(org_id.clone()));
                next.run(req).await
            }
        }
    };

    let response = match pad_to {
        Some(n) if response.status().as_u16() >= 400 && echo.is_none() => {
            pad_error(response, n).await
        }
        _ => response,
    };
    let status = response.status().as_u16();
    let since = arrived.duration_since(shared.started);
    let mut inner = shared.lock();
    if response.status().is_success()
        && let Some(n) = inner.faults.unauthorized_after
        && n > 0
    {
        inner.faults.unauthorized_after = Some(n - 1);
    }
    inner.log.push(RequestRecord {
        at_us: since.as_micros() as u64,
        at_ms: since.as_millis() as u64,
        method,
        path,
        organization_id: org,
        status,
    });
    response
}

/// The shape and status of an `echoToken` answer when the fault applies to `path` (counting
/// down its `times`).
pub(super) fn take_echo(faults: &mut crate::model::Faults, path: &str) -> Option<(EchoShape, u16)> {
    let echo = faults.echo_token.as_mut()?;
    if echo.times == Some(0)
        || echo
            .path_prefix
            .as_deref()
            .is_some_and(|p| !path.starts_with(p))
    {
        return None;
    }
    if let Some(n) = echo.times.as_mut() {
        *n -= 1;
    }
    Some((echo.shape, echo.status))
}

/// An error answer whose body carries `token` (the received `GRADIENT-TOKEN`) in `shape`.
pub(super) fn echo_response(shape: EchoShape, status: u16, token: &str) -> Response {
    // Inside a JSON string: escaped (a base64 value has nothing to escape).
    let escaped = serde_json::to_string(token).unwrap_or_default();
    let escaped = &escaped[1..escaped.len() - 1];
    let (content_type, body) = match shape {
        EchoShape::Json => (
            "application/json",
            json!({"statusCode": status, "message": format!("bad header {token}")}).to_string(),
        ),
        EchoShape::Text => (
            "text/plain; charset=utf-8",
            format!("GRADIENT-TOKEN: {token}"),
        ),
        EchoShape::BrokenJson => (
            "application/json",
            format!(
                r#"{{"statusCode":{status},"message":"bad header {escaped}, expected base64(vendorKey:partnerKey"#
            ),
        ),
        EchoShape::Large => ("application/json", large_echo(status, escaped)),
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The [`EchoShape::Large`] body: `value` from byte [`ECHO_LARGE_AT`] and again with its middle
/// at byte [`ECHO_LARGE_CUT`], `.` between and for 1 KiB after.
pub(super) fn large_echo(status: u16, value: &str) -> String {
    let pad = |body: &mut String, to: usize| {
        let n = to.saturating_sub(body.len());
        body.push_str(&".".repeat(n));
    };
    let mut body = format!(r#"{{"statusCode":{status},"message":"bad header "#);
    pad(&mut body, ECHO_LARGE_AT);
    body.push_str(value);
    let second = ECHO_LARGE_CUT
        .saturating_sub(value.len() / 2)
        .max(body.len() + 1);
    pad(&mut body, second);
    body.push_str(value);
    let end = body.len().max(ECHO_LARGE_CUT) + 1024;
    pad(&mut body, end);
    body.push_str("\"}");
    body
}

/// Rewrites an error answer so that its `message` has at least `n` bytes (status and headers kept).
pub(super) async fn pad_error(response: Response, n: usize) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let mut value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !value.is_object() {
        value = json!({"statusCode": parts.status.as_u16()});
    }
    let mut message = match value.get("message") {
        Some(Value::String(m)) => m.clone(),
        _ => parts
            .status
            .canonical_reason()
            .unwrap_or("Error")
            .to_owned(),
    };
    if message.len() < n {
        message.push(' ');
        let missing = n.saturating_sub(message.len());
        message.push_str(&"x".repeat(missing));
    }
    value["message"] = Value::String(message);
    let body = serde_json::to_vec(&value).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, axum::body::Body::from(body))
}
