//! Who calls: JWT claims, API Gateway v2 events, the handler's answer.

use crate::runtime_api;

use lambda_http::http::HeaderMap;
use serde_json::Value;
use std::sync::Mutex;

/// JWT claims of the caller (contract).
#[derive(Debug, Clone)]
pub struct Claims {
    pub sub: String,
    pub workspace_id: String,
    pub workspace_type: String,
    pub role: String,
    /// The optional `email` claim.
    pub email: Option<String>,
}

impl Claims {
    pub fn new(workspace_id: &str, workspace_type: &str, role: &str) -> Self {
        Self {
            sub: format!("user-of-{workspace_id}"),
            workspace_id: workspace_id.into(),
            workspace_type: workspace_type.into(),
            role: role.into(),
            email: None,
        }
    }
    pub fn admin(channel: &str) -> Self {
        Self::new(channel, "channel", "admin")
    }
    pub fn viewer(channel: &str) -> Self {
        Self::new(channel, "channel", "viewer")
    }
}

/// A real API Gateway v2 event with the given method, path (with an optional `?query`), claims
/// (`None` = no authorizer context) and body, parsed by lambda_http exactly as in Lambda.
pub fn http_event(
    method: &str,
    path_and_query: &str,
    claims: Option<&Claims>,
    body: Option<&str>,
) -> lambda_http::Request {
    let v = runtime_api::http_event_json(method, path_and_query, claims, body);
    lambda_http::request::from_str(&v.to_string()).expect("lambda_http parses the fixture")
}

/// Sends one request through the real HTTP handler of `app` (e.g. one with its own policy);
/// every body is kept for the secret scans.
pub async fn call_app(
    app: &psa_http::App,
    method: &str,
    path: &str,
    claims: Option<&Claims>,
    body: Option<&str>,
) -> ApiResponse {
    let resp = psa_http::handle(app, http_event(method, path, claims, body)).await;
    let (parts, body) = resp.into_parts();
    let body = match body {
        lambda_http::Body::Empty => String::new(),
        lambda_http::Body::Text(t) => t,
        lambda_http::Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
        _ => String::new(),
    };
    RESPONSES.lock().expect("responses").push(body.clone());
    ApiResponse {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

#[derive(Debug, Clone)]
pub struct ApiResponse {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl ApiResponse {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn code(&self) -> String {
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// Every response body any test saw, for the secret scans.
pub static RESPONSES: Mutex<Vec<String>> = Mutex::new(Vec::new());
