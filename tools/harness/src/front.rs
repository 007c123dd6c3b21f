//! A local HTTP front for the API (`make serve`, and the schemathesis run of `tests/tests/it/fuzz.rs`):
//! a real HTTP server on 127.0.0.1 that turns every request into an API Gateway v2 (HTTP API)
//! event and hands it to the real handlers — `sync_on_demand::handle` for `POST .../sync` and
//! `POST .../syncs/{runId}/release` (as the template routes them), `psa_http::handle` for
//! the rest — and the sync worker in-process, draining the queue like Lambda's SQS poller.
//!
//! **LOCAL ONLY.** The caller's claims come from an *unsigned* JWT in
//! `Authorization: Bearer <header>.<payload>.` (base64url JSON; the payload holds `sub`,
//! `workspace_id`, `workspace_type`, `role`). No signature is checked: in AWS, API Gateway's JWT
//! authorizer validates the token before the function sees the claims. Never deploy this.

use crate::fixture::{self, CH};
use crate::{Claims, TestEnv};
use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD, URL_SAFE_NO_PAD_INDIFFERENT};
use lambda_http::http::{HeaderValue, StatusCode};
use psa_http::{Route, route};
use serde_json::{Map, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Largest body the front reads (API Gateway's own limit is 10 MB; the handler allows 16 KiB).
const MAX_FRONT_BODY: usize = 1024 * 1024;

/// `<header>.<payload>.`: an unsigned JWT carrying `claims` (LOCAL ONLY).
pub fn local_jwt(claims: &Claims) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let mut payload = serde_json::json!({
        "sub": claims.sub,
        "workspace_id": claims.workspace_id,
        "workspace_type": claims.workspace_type,
        "role": claims.role,
        "iss": "local-front",
    });
    if let Some(email) = &claims.email {
        payload["email"] = email.clone().into();
    }
    format!("{header}.{}.", URL_SAFE_NO_PAD.encode(payload.to_string()))
}

/// The claims of `Authorization: Bearer <header>.<payload>.<anything>`, as API Gateway passes
/// them to the function (every value a string). `None` when there is no such token: the event
/// then has no authorizer context, and the handler answers 401.
pub fn claims_of(authorization: Option<&str>) -> Option<Map<String, Value>> {
    let token = authorization?.trim();
    let (scheme, token) = token.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let mut parts = token.trim().split('.');
    let (_header, payload) = (parts.next()?, parts.next()?);
    parts.next()?; // the (empty or ignored) signature segment must be there
    let bytes = URL_SAFE_NO_PAD_INDIFFERENT.decode(payload).ok()?;
    let Value::Object(claims) = serde_json::from_slice(&bytes).ok()? else {
        return None;
    };
    Some(
        claims
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, Value::String(v))
            })
            .collect(),
    )
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

/// The API Gateway v2 event JSON of one HTTP request.
pub fn event_json(
    method: &str,
    path: &str,
    query: &str,
    headers: &lambda_http::http::HeaderMap,
    body: &[u8],
    host: &str,
) -> Value {
    let mut v: Value = serde_json::from_str(crate::HTTP_EVENT).expect("event fixture");
    let mut hs = Map::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(",");
        hs.insert(name.as_str().to_owned(), Value::String(joined));
    }
    // API Gateway's own host, never the client's (lambda_http builds the URI from it).
    hs.insert("host".into(), host.into());
    hs.insert("x-forwarded-proto".into(), "http".into());
    v["headers"] = Value::Object(hs);
    v["rawPath"] = path.into();
    v["rawQueryString"] = query.into();
    let n = REQUESTS.fetch_add(1, Ordering::Relaxed) + 1;
    let now = time::OffsetDateTime::now_utc();
    let ctx = &mut v["requestContext"];
    ctx["http"]["method"] = method.into();
    ctx["http"]["path"] = path.into();
    ctx["http"]["sourceIp"] = "127.0.0.1".into();
    ctx["domainName"] = host.into();
    ctx["requestId"] = format!("local-{n:08}").into();
    ctx["timeEpoch"] = ((now.unix_timestamp_nanos() / 1_000_000) as i64).into();
    let authorization = headers
        .get(lambda_http::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    match claims_of(authorization) {
        Some(claims) => ctx["authorizer"]["jwt"]["claims"] = Value::Object(claims),
        None => {
            ctx.as_object_mut().expect("object").remove("authorizer");
        }
    }
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => v["body"] = text.into(),
            Err(_) => {
                v["body"] = STANDARD.encode(body).into();
                v["isBase64Encoded"] = true.into();
            }
        }
    }
    v
}

/// What the front counted: every request, and the 2xx answers about the sample's connector.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: AtomicU64,
    pub connector_ok: AtomicU64,
    pub server_errors: AtomicU64,
}

/// CORS as the template configures the HTTP API (contract *Browser console*): these methods,
/// these request headers, these response headers exposed, preflight cached 10 minutes; only for
/// the configured origins (no wildcard).
pub const CORS_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
pub const CORS_HEADERS: &str = "authorization, content-type";
pub const CORS_EXPOSE: &str = "location, retry-after";
pub const CORS_MAX_AGE: u32 = 600;

/// What the front shares between requests.
#[derive(Clone)]
pub struct Front {
    pub env: Arc<TestEnv>,
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    /// Origins the API answers CORS for (the console's; `make serve --console-origin`).
    pub origins: Arc<Vec<String>>,
}

impl Front {
    /// The request's `Origin` when it is one of the configured console origins.
    fn allowed_origin(&self, headers: &lambda_http::http::HeaderMap) -> Option<HeaderValue> {
        let origin = headers.get(lambda_http::http::header::ORIGIN)?;
        let text = origin.to_str().ok()?;
        self.origins
            .iter()
            .any(|o| o == text)
            .then(|| origin.clone())
    }

    /// A preflight (`OPTIONS` with `Access-Control-Request-Method`), answered as API Gateway's
    /// CORS configuration does: 204, the allowed methods and headers for a configured origin
    /// asking for them, nothing that lets the browser go on otherwise.
    fn preflight(&self, headers: &lambda_http::http::HeaderMap) -> axum::response::Response {
        use lambda_http::http::header as h;
        let mut out = axum::response::Response::new(axum::body::Body::empty());
        *out.status_mut() = StatusCode::NO_CONTENT;
        out.headers_mut()
            .insert(h::VARY, HeaderValue::from_static("origin"));
        let method_ok = headers
            .get(h::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| CORS_METHODS.split(", ").any(|a| a == m));
        let headers_ok = headers
            .get(h::ACCESS_CONTROL_REQUEST_HEADERS)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|asked| {
                asked
                    .split(',')
                    .map(|x| x.trim().to_ascii_lowercase())
                    .filter(|x| !x.is_empty())
                    .all(|x| CORS_HEADERS.split(", ").any(|a| a == x))
            });
        if let (Some(origin), true, true) = (self.allowed_origin(headers), method_ok, headers_ok) {
            let hs = out.headers_mut();
            hs.insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            hs.insert(
                h::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(CORS_METHODS),
            );
            hs.insert(
                h::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(CORS_HEADERS),
            );
            hs.insert(h::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(CORS_MAX_AGE));
        }
        out
    }

    /// One request: a CORS preflight answered here, anything else as [`Self::route`] answers it
    /// with the CORS headers of a configured origin added.
    pub async fn answer(
        &self,
        req: axum::http::Request<axum::body::Body>,
    ) -> axum::response::Response {
        use lambda_http::http::header as h;
        if req.method() == lambda_http::http::Method::OPTIONS
            && req.headers().contains_key(h::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return self.preflight(req.headers());
        }
        let origin = self.allowed_origin(req.headers());
        let mut out = self.route(req).await;
        if let Some(origin) = origin {
            let hs = out.headers_mut();
            hs.insert(h::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            hs.insert(
                h::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(CORS_EXPOSE),
            );
            hs.append(h::VARY, HeaderValue::from_static("origin"));
        }
        out
    }

    /// The event to the function API Gateway would route the request to, its answer back.
    async fn route(&self, req: axum::http::Request<axum::body::Body>) -> axum::response::Response {
        let (parts, body) = req.into_parts();
        let body: Bytes = match axum::body::to_bytes(body, MAX_FRONT_BODY).await {
            Ok(b) => b,
            Err(_) => {
                return problem(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the body is too large",
                );
            }
        };
        let event = event_json(
            parts.method.as_str(),
            parts.uri.path(),
            parts.uri.query().unwrap_or_default(),
            &parts.headers,
            &body,
            &self.addr.to_string(),
        );
        let req = match lambda_http::request::from_str(&event.to_string()) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "the local front could not build an API Gateway event");
                return problem(
                    StatusCode::BAD_REQUEST,
                    "invalid_body",
                    "the request cannot be expressed as an API Gateway event",
                );
            }
        };
        let path = psa_http::request_path(&req).to_owned();
        let on_demand = matches!(
            route(req.method(), &path),
            Ok(Route::RequestSync(_) | Route::ReleaseSync(..))
        );
        let resp = if on_demand {
            sync_on_demand::handle(&self.env.api, req).await
        } else {
            psa_http::handle(&self.env.api, req).await
        };
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        if resp.status().is_success() && path.starts_with("/v1/psa/connectors/gradient") {
            self.stats.connector_ok.fetch_add(1, Ordering::Relaxed);
        }
        if resp.status().is_server_error() {
            self.stats.server_errors.fetch_add(1, Ordering::Relaxed);
        }
        let (parts, body) = resp.into_parts();
        let bytes: Vec<u8> = match body {
            lambda_http::Body::Empty => Vec::new(),
            lambda_http::Body::Text(t) => t.into_bytes(),
            lambda_http::Body::Binary(b) => b,
            _ => Vec::new(),
        };
        let mut out = axum::response::Response::new(axum::body::Body::from(bytes));
        *out.status_mut() = parts.status;
        *out.headers_mut() = parts.headers;
        out
    }

    /// The axum app: every method and path goes to [`Self::answer`].
    pub fn app(&self) -> axum::Router {
        let front = self.clone();
        axum::Router::new().fallback(move |req: axum::http::Request<axum::body::Body>| {
            let front = front.clone();
            async move { front.answer(req).await }
        })
    }
}

fn problem(status: StatusCode, code: &'static str, detail: &str) -> axum::response::Response {
    let body = serde_json::json!({
        "type": format!("/problems/{code}"),
        "title": "Refused by the local front",
        "status": status.as_u16(),
        "detail": detail,
        "code": code,
    });
    let mut out = axum::response::Response::new(axum::body::Body::from(body.to_string()));
    *out.status_mut() = status;
    out.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    out
}

/// Serves `env` on `listener` until the process ends (or the task is dropped); `stats` counts;
/// CORS for `origins`.
pub async fn serve(
    env: Arc<TestEnv>,
    listener: tokio::net::TcpListener,
    stats: Arc<Stats>,
    origins: Vec<String>,
) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    let front = Front {
        env,
        addr,
        stats,
        origins: Arc::new(origins),
    };
    axum::serve(listener, front.app()).await
}

/// The sync worker in-process, forever: receive, handle (real SQS events), delete what
/// succeeded — as Lambda's SQS poller does. A failed job comes back after 2 s.
pub fn spawn_worker(env: Arc<TestEnv>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let worker = env.worker();
        loop {
            let round = {
                let (env, worker) = (env.clone(), worker.clone());
                tokio::spawn(async move { env.drain_with(&worker, 1_000, 2).await })
            };
            if let Err(e) = round.await {
                tracing::error!(error = %e, "worker round failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    })
}

/// The sample MSP of the front: the fixture's channel `msp` (a subchannel, `children` managed
/// workspaces), connected to an organization of the simulator with most pairs mapped, and one
/// finished sync so runs, readings and usage have something to show.
pub struct Sample {
    pub channel: String,
    pub org_id: String,
    pub partner_key: String,
    pub first_run: String,
}

pub async fn seed_sample(env: &TestEnv, children: usize) -> Sample {
    let kids = fixture::fixture(children);
    fixture::seed(env, &kids).await;
    let org = env.sim.create_organization("Acme MSP");
    let r = env.connect(CH, &org.partner_key).await;
    assert_eq!(r.status, 201, "connecting the sample MSP: {}", r.body);
    let ids = fixture::service_ids(env).await;
    let except: Vec<gradient_sim::Pair> = fixture::expected_pairs(&kids)
        .into_keys()
        .filter(|(acc, _)| acc.ends_with('2'))
        .map(|(a, s)| gradient_sim::Pair::new(a, ids[&s].clone()))
        .collect();
    assert!(env.sim.map_all(&org.organization_id, &except));
    let run = fixture::sync_and_wait(env).await;
    Sample {
        channel: CH.to_owned(),
        org_id: org.organization_id,
        partner_key: org.partner_key,
        first_run: run["runId"].as_str().unwrap_or_default().to_owned(),
    }
}

/// Connects the sample MSP again whenever it has no connector (a fuzzer deletes it now and then),
/// so most requests meet a connected connector. Checks every `every`.
pub fn spawn_reconnector(
    env: Arc<TestEnv>,
    partner_key: String,
    every: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let r = env
                .call(
                    "GET",
                    "/v1/psa/connectors/gradient",
                    Some(&Claims::viewer(CH)),
                    None,
                )
                .await;
            if r.status == 404 {
                let r = env.connect(CH, &partner_key).await;
                tracing::info!(status = r.status, "sample connector connected again");
            }
        }
    })
}
