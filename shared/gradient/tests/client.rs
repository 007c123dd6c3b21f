//! The client against the in-process simulator (real sockets) and a tiny scripted axum server
//! for shapes the simulator does not produce (exact headers, redirects, scripted 5xx sequences).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use gradient_sim::{EchoShape, EchoToken, Faults, Pair, SimConfig, SimHandle, Simulator};
use psa_domain::ports::StoreError;
use psa_domain::{ApiToken, VendorKey};
use psa_gradient::{
    AccountUpdate, AlertPriority, GradientClient, GradientConfig, GradientError, IntegrationStatus,
    KeyRefresh, NewAccount, NewAlert, NewService,
};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const VENDOR_KEY: &str = "vendor-KEY-s3cret-0001";

async fn sim() -> SimHandle {
    Simulator::start(SimConfig {
        vendor_key: VENDOR_KEY.to_owned(),
        ..SimConfig::default()
    })
    .await
    .unwrap()
}

/// Fast retries for tests; a high rate so unrelated tests don't wait on each other.
fn config(base_url: &str) -> GradientConfig {
    let mut c = GradientConfig::new(base_url);
    c.max_rps = 1000;
    c.backoff_base = Duration::from_millis(10);
    c.backoff_cap = Duration::from_secs(2);
    c.request_timeout = Duration::from_secs(5);
    c
}

fn client(base_url: &str) -> GradientClient {
    GradientClient::new(config(base_url), VendorKey::parse(VENDOR_KEY).unwrap()).unwrap()
}

fn token(partner_key: &str) -> ApiToken {
    ApiToken::parse(partner_key).unwrap()
}

fn edr() -> NewService {
    NewService {
        name: "Coro EDR".into(),
        description: "Endpoint detection and response".into(),
        category: "security".into(),
        subcategory: "endpoint detection and response (EDR)".into(),
    }
}

fn acct(id: &str) -> NewAccount {
    NewAccount {
        id: id.into(),
        name: format!("Workspace {id}"),
        description: None,
    }
}

/// Asserts neither key nor the combined header value shows in the error's Debug or Display.
fn assert_redacted(err: &GradientError, partner_key: &str) {
    let header = gradient_sim::gradient_token(VENDOR_KEY, partner_key);
    for shown in [format!("{err:?}"), err.to_string()] {
        assert!(!shown.contains(VENDOR_KEY), "vendor key leaked: {shown}");
        assert!(!shown.contains(partner_key), "partner key leaked: {shown}");
        assert!(!shown.contains(&header), "token leaked: {shown}");
    }
}

/// Secrets shorter than this may show whole in nothing but a `[REDACTED]`; of longer ones no run
/// of this many characters may show.
const PIECE: usize = 12;

/// Every `PIECE`-character window of the vendor key, the partner key, the header value built from
/// them, and of the standard and URL-safe base64 of each.
fn secret_pieces(vendor_key: &str, partner_key: &str) -> Vec<String> {
    let header = gradient_sim::gradient_token(vendor_key, partner_key);
    let mut forms = Vec::new();
    for secret in [vendor_key, partner_key, header.as_str()] {
        forms.push(secret.to_owned());
        forms.push(STANDARD.encode(secret));
        forms.push(URL_SAFE.encode(secret));
    }
    let mut pieces = Vec::new();
    for form in forms {
        let chars: Vec<char> = form.chars().collect();
        assert!(chars.len() >= PIECE, "use realistic secrets: {form}");
        pieces.extend(chars.windows(PIECE).map(|w| w.iter().collect::<String>()));
    }
    pieces
}

/// The first piece of a secret (see [`secret_pieces`]) that the Display or the Debug of `err`
/// shows, with what it shows.
fn shown_piece(err: &GradientError, vendor_key: &str, partner_key: &str) -> Option<String> {
    let pieces = secret_pieces(vendor_key, partner_key);
    [format!("{err:?}"), err.to_string()]
        .into_iter()
        .find_map(|shown| {
            let piece = pieces.iter().find(|p| shown.contains(p.as_str()))?;
            Some(format!("a piece of a secret ({piece:?}) shows in: {shown}"))
        })
}

/// Asserts that neither the Display nor the Debug of `err` holds any `PIECE` consecutive
/// characters of a secret or of one of its base64 forms.
#[track_caller]
fn assert_no_secret_piece(err: &GradientError, vendor_key: &str, partner_key: &str) {
    if let Some(leak) = shown_piece(err, vendor_key, partner_key) {
        panic!("{leak}");
    }
}

// ---------------------------------------------------------------- scripted server

#[derive(Clone, Debug)]
struct Seen {
    method: String,
    uri: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

type Canned = (u16, Vec<(&'static str, String)>, String);

#[derive(Default)]
struct Script {
    responses: VecDeque<Canned>,
    seen: Vec<Seen>,
}

struct Scripted {
    base: String,
    script: Arc<Mutex<Script>>,
}

impl Scripted {
    async fn start(responses: Vec<Canned>) -> Self {
        let script = Arc::new(Mutex::new(Script {
            responses: responses.into(),
            seen: Vec::new(),
        }));
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, script }
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }
}

async fn answer(State(script): State<Arc<Mutex<Script>>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    let canned = {
        let mut s = script.lock().unwrap();
        s.seen.push(Seen {
            method: parts.method.to_string(),
            uri: parts.uri.to_string(),
            headers: parts.headers.clone(),
            body: body.to_vec(),
        });
        s.responses
            .pop_front()
            .unwrap_or((200, vec![], "{}".to_owned()))
    };
    let (status, headers, body) = canned;
    let mut resp = (
        StatusCode::from_u16(status).unwrap(),
        [("content-type", "application/json")],
        body,
    )
        .into_response();
    for (k, v) in headers {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

fn json_err(status: u16, message: &str) -> Canned {
    (
        status,
        vec![],
        serde_json::json!({"statusCode": status, "message": message}).to_string(),
    )
}

const ORG_JSON: &str = r#"{"organizationId":"o1","name":"MSP","vendorId":"v1","vendorName":"Coro","integrationId":"i1","status":"pending","lastSyncedAt":null}"#;

// ---------------------------------------------------------------- tests against the sim

#[tokio::test]
async fn lifecycle_against_the_simulator() {
    let sim = sim().await;
    let org = sim.create_organization("Acme MSP");
    let t = token(&org.partner_key);
    let c = client(&sim.base_url());

    let o = c.organization(&t).await.unwrap();
    assert_eq!(o.organization_id, org.organization_id);
    assert_eq!(o.vendor_name, "Coro");
    assert_eq!(o.status, "inactive");
    assert_eq!(o.last_synced_at, None);

    c.set_status(&t, IntegrationStatus::Pending).await.unwrap();
    assert_eq!(c.organization(&t).await.unwrap().status, "pending");

    let vendor = c.create_service(&t, &edr()).await.unwrap();
    assert_eq!(vendor.skus.len(), 1);
    let svc = vendor.skus[0].id.clone();
    assert_eq!(c.vendor(&t).await.unwrap().skus, vendor.skus);
    let sku = c.service(&t, &svc).await.unwrap();
    assert_eq!(sku.name, "Coro EDR");
    assert_eq!(sku.category, "security");

    // 250 accounts → 3 POSTs of at most 100.
    sim.clear_requests();
    let many: Vec<NewAccount> = (0..250).map(|i| acct(&format!("ws-{i:03}"))).collect();
    let created = c.create_accounts(&t, &many).await.unwrap();
    assert_eq!(created.len(), 250);
    let posts = sim.requests().requests;
    assert_eq!(posts.len(), 3);
    assert!(posts.iter().all(|r| r.method == "POST" && r.status == 201));
    assert_eq!(c.list_accounts(&t).await.unwrap().len(), 250);
    assert!(c.create_accounts(&t, &[]).await.unwrap().is_empty());

    let renamed = c
        .update_account(
            &t,
            "ws-000",
            &AccountUpdate {
                name: Some("Renamed".into()),
                description: Some("d".into()),
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name, "Renamed");
    assert_eq!(renamed.description.as_deref(), Some("d"));
    let err = c
        .update_account(&t, "nope", &AccountUpdate::default())
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::NotFound { .. }), "{err:?}");

    // Unmapped → NotFound, not retried; mapped → Ok, with no_build recorded.
    let before = c.requests_sent();
    let err = c
        .post_count(&t, &svc, "ws-001", 12, true)
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::NotFound { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(c.requests_sent(), before + 1);
    assert_redacted(&err, &org.partner_key);

    sim.set_mappings(&org.organization_id, &[Pair::new("ws-001", &svc)], true);
    sim.clear_requests();
    c.post_count(&t, &svc, "ws-001", 12, true).await.unwrap();
    c.post_count(&t, &svc, "ws-001", 13, false).await.unwrap();
    let log = sim.requests().requests;
    assert_eq!(
        log[0].path,
        format!("/api/vendor-api/service/{svc}/count?no_build=true")
    );
    assert_eq!(log[1].path, format!("/api/vendor-api/service/{svc}/count"));
    let state = sim.organization(&org.organization_id).unwrap();
    let rec = state.count("ws-001", &svc).unwrap();
    assert_eq!(rec.unit_count, 13);
    assert_eq!(
        rec.history
            .iter()
            .map(|h| (h.unit_count, h.no_build))
            .collect::<Vec<_>>(),
        [(12, true), (13, false)]
    );
    assert_eq!(state.status, "active");
}

#[tokio::test]
async fn token_rejected_is_not_retried_and_redacted() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let c = client(&sim.base_url());

    let wrong = token("wrong-partner-key-123");
    let err = c.organization(&wrong).await.unwrap_err();
    assert!(matches!(err, GradientError::TokenRejected), "{err:?}");
    assert_eq!(c.requests_sent(), 1);
    assert_redacted(&err, "wrong-partner-key-123");

    // Right partner key, wrong vendor key.
    let other = GradientClient::new(
        config(&sim.base_url()),
        VendorKey::parse("another-vendor").unwrap(),
    )
    .unwrap();
    let err = other
        .organization(&token(&org.partner_key))
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::TokenRejected));

    // Regenerated key → the old one is rejected.
    let t = token(&org.partner_key);
    c.organization(&t).await.unwrap();
    sim.regenerate_key(&org.organization_id).unwrap();
    let err = c.list_accounts(&t).await.unwrap_err();
    assert!(matches!(err, GradientError::TokenRejected));
    assert_redacted(&err, &org.partner_key);

    // 401 after N successful calls (fault).
    let org2 = sim.create_organization("Beta");
    let t2 = token(&org2.partner_key);
    sim.set_faults(Faults {
        unauthorized_after: Some(1),
        ..Faults::default()
    });
    c.organization(&t2).await.unwrap();
    assert!(matches!(
        c.organization(&t2).await.unwrap_err(),
        GradientError::TokenRejected
    ));
}

#[tokio::test]
async fn forbidden_and_conflict() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let c = client(&sim.base_url());

    c.create_accounts(&t, &[acct("a")]).await.unwrap();
    let before = c.requests_sent();
    let err = c
        .create_accounts(&t, &[acct("b"), acct("a")])
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::Conflict { .. }), "{err:?}");
    assert_eq!(c.requests_sent(), before + 1, "409 is not retried");
    assert_redacted(&err, &org.partner_key);
    assert_eq!(c.list_accounts(&t).await.unwrap().len(), 1);

    sim.set_faults(Faults {
        force_status: Some(403),
        ..Faults::default()
    });
    let before = c.requests_sent();
    let err = c.vendor(&t).await.unwrap_err();
    match &err {
        GradientError::Forbidden { message } => assert!(message.contains("nomaly"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(c.requests_sent(), before + 1, "403 is not retried");
    assert_redacted(&err, &org.partner_key);
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let c = client(&sim.base_url());
    sim.set_faults(Faults {
        rate429: 1.0,
        retry_after_secs: Some(1),
        ..Faults::default()
    });
    let sim = Arc::new(sim);
    let s2 = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        s2.clear_faults();
    });
    let started = Instant::now();
    c.organization(&t).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After was honoured"
    );
    assert_eq!(c.requests_sent(), 2);
    let statuses: Vec<u16> = sim.requests().requests.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);

    // Exhausted → RateLimited with the last Retry-After.
    sim.set_faults(Faults {
        rate429: 1.0,
        retry_after_secs: Some(0),
        ..Faults::default()
    });
    let err = c.organization(&t).await.unwrap_err();
    assert!(
        matches!(err, GradientError::RateLimited { retry_after: Some(d) } if d.is_zero()),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(c.requests_sent(), 2 + 4);
    assert_redacted(&err, &org.partner_key);
}

#[tokio::test]
async fn timeout_with_slow_responses() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let mut cfg = config(&sim.base_url());
    cfg.request_timeout = Duration::from_millis(150);
    cfg.max_attempts = 2;
    let c = GradientClient::new(cfg, VendorKey::parse(VENDOR_KEY).unwrap()).unwrap();
    sim.set_faults(Faults {
        latency_ms: 600,
        ..Faults::default()
    });
    let started = Instant::now();
    let err = c.organization(&t).await.unwrap_err();
    assert!(matches!(err, GradientError::Timeout), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(c.requests_sent(), 2);
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_redacted(&err, &org.partner_key);
}

#[tokio::test]
async fn malformed_success_body() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let c = client(&sim.base_url());
    sim.set_faults(Faults {
        malformed_rate: 1.0,
        ..Faults::default()
    });
    let err = c.organization(&t).await.unwrap_err();
    assert!(matches!(err, GradientError::Malformed { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(c.requests_sent(), 1);
    assert_redacted(&err, &org.partner_key);
}

/// At `max_rps = 20`, a burst of 60 concurrent calls from clones never puts more than 20 in any
/// 1-second window at the receiver (the simulator's window statistic), and none is limited.
#[tokio::test]
async fn limiter_keeps_every_one_second_window_within_max_rps() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let mut cfg = config(&sim.base_url());
    cfg.max_rps = 20;
    let c = GradientClient::new(cfg, VendorKey::parse(VENDOR_KEY).unwrap()).unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..60)
        .map(|_| {
            let c = c.clone();
            let t = token(&org.partner_key);
            tokio::spawn(async move { c.organization(&t).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let elapsed = started.elapsed();
    let stats = sim.requests().stats;
    assert_eq!(stats.total, 60);
    assert_eq!(stats.by_status.get(&429), None);
    assert!(
        stats.max_in_one_second_total <= 20,
        "window held {}",
        stats.max_in_one_second_total
    );
    assert!(stats.max_in_one_second_total >= 15, "{stats:?}");
    assert!(elapsed >= Duration::from_millis(2900), "{elapsed:?}");
    assert_eq!(c.requests_sent(), 60);
}

#[tokio::test]
async fn network_error_after_retries() {
    // A port that was just free: nothing listens there.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let c = client(&base);
    let partner = "partner-key-for-network";
    let err = c.organization(&token(partner)).await.unwrap_err();
    assert!(matches!(err, GradientError::Network { .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(c.requests_sent(), 4);
    assert_redacted(&err, partner);
}

// ---------------------------------------------------------------- tests against the scripted server

#[tokio::test]
async fn request_shape_header_accept_body_and_query() {
    let srv = Scripted::start(vec![
        (201, vec![], r#"{"status":"success","message":"ok"}"#.into()),
        (
            201,
            vec![],
            r#"[{"id":"a","name":"A","description":null}]"#.into(),
        ),
        (
            200,
            vec![],
            r#"{"status":"success","message":"ok","data":{}}"#.into(),
        ),
    ])
    .await;
    let c = client(&srv.base);
    let partner = "pk-shape-001"; // 35 bytes with the vendor key: padded
    let t = token(partner);
    c.post_count(&t, "svc 1", "acc-1", 42, true).await.unwrap();
    let created = c.create_accounts(&t, &[acct("a")]).await.unwrap();
    assert_eq!(created[0].id, "a");
    c.set_status(&t, IntegrationStatus::Disabled).await.unwrap();

    let seen = srv.seen();
    assert_eq!(seen.len(), 3);
    let expected = gradient_sim::gradient_token(VENDOR_KEY, partner);
    assert!(expected.ends_with('='), "standard base64 with padding");
    for s in &seen {
        assert_eq!(s.headers["gradient-token"], expected.as_str());
        assert_eq!(s.headers["accept"], "application/json");
    }
    assert_eq!(seen[0].method, "POST");
    assert_eq!(
        seen[0].uri,
        "/api/vendor-api/service/svc%201/count?no_build=true"
    );
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"accountId": "acc-1", "unitCount": 42})
    );
    let body: serde_json::Value = serde_json::from_slice(&seen[1].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!([{"id": "a", "name": "Workspace a"}])
    );
    assert_eq!(seen[2].method, "PATCH");
    assert_eq!(seen[2].uri, "/api/vendor-api/organization/status/disabled");
    assert!(seen[2].body.is_empty());
}

#[tokio::test]
async fn server_errors_retried_then_success_or_exhausted() {
    let srv = Scripted::start(vec![
        json_err(503, "down"),
        json_err(500, "oops"),
        (200, vec![], ORG_JSON.into()),
    ])
    .await;
    let c = client(&srv.base);
    let o = c.organization(&token("pk-5xx")).await.unwrap();
    assert_eq!(o.organization_id, "o1");
    assert_eq!(c.requests_sent(), 3);

    let srv = Scripted::start((0..4).map(|_| json_err(502, "bad gateway")).collect()).await;
    let c = client(&srv.base);
    let err = c.list_accounts(&token("pk-5xx")).await.unwrap_err();
    assert!(
        matches!(err, GradientError::Server { status: 502 }),
        "{err:?}"
    );
    assert_eq!(c.requests_sent(), 4);
    assert_eq!(srv.seen().len(), 4);
    assert_redacted(&err, "pk-5xx");
}

#[tokio::test]
async fn create_service_retries_only_429() {
    let srv = Scripted::start(vec![json_err(503, "down")]).await;
    let c = client(&srv.base);
    let err = c
        .create_service(&token("pk-svc"), &edr())
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::Server { status: 503 }));
    assert_eq!(c.requests_sent(), 1);

    let srv = Scripted::start(vec![
        (429, vec![("retry-after", "0".into())], "{}".into()),
        (
            201,
            vec![],
            r#"{"status":"success","message":"ok","data":{"id":"v","name":"Coro","skus":[{"id":"s9","name":"EDR","description":"d","category":"security","subcategory":"other"}]}}"#.into(),
        ),
    ])
    .await;
    let c = client(&srv.base);
    let v = c.create_service(&token("pk-svc"), &edr()).await.unwrap();
    assert_eq!(v.skus[0].id, "s9");
    assert_eq!(c.requests_sent(), 2);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let srv = Scripted::start(vec![(
        302,
        vec![("location", "/elsewhere".into())],
        String::new(),
    )])
    .await;
    let c = client(&srv.base);
    let err = c.organization(&token("pk-redirect")).await.unwrap_err();
    assert!(
        matches!(err, GradientError::BadRequest { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(srv.seen().len(), 1, "the Location was not followed");
    assert_redacted(&err, "pk-redirect");
}

#[tokio::test]
async fn bad_request_and_echoed_secrets_are_scrubbed() {
    let partner = "pk-echo-1234";
    let header = gradient_sim::gradient_token(VENDOR_KEY, partner);
    let srv = Scripted::start(vec![
        json_err(
            400,
            &format!("bad token {header} for {partner} and vendor {VENDOR_KEY}"),
        ),
        json_err(422, "unprocessable"),
        (404, vec![], "Vendor Profile Not Found".into()),
    ])
    .await;
    let c = client(&srv.base);
    let t = token(partner);
    let err = c.vendor(&t).await.unwrap_err();
    match &err {
        GradientError::BadRequest {
            status: 400,
            message,
        } => {
            assert!(message.contains("[REDACTED]"), "{message}");
            assert!(message.contains("/api/vendor-api"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_redacted(&err, partner);
    let err = c.service(&t, "s1").await.unwrap_err();
    assert!(matches!(err, GradientError::BadRequest { status: 422, .. }));
    let err = c.vendor(&t).await.unwrap_err();
    match &err {
        GradientError::NotFound { message } => {
            assert!(message.contains("Vendor Profile Not Found"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.requests_sent(), 3, "4xx are never retried");
}

#[tokio::test]
async fn debug_of_client_and_config_errors_hold_no_secret() {
    let c = client("http://127.0.0.1:9");
    let shown = format!("{c:?}");
    assert!(!shown.contains(VENDOR_KEY), "{shown}");
    let err = GradientClient::new(
        GradientConfig::new("ftp://x"),
        VendorKey::parse(VENDOR_KEY).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, GradientError::Config { .. }));
    assert_redacted(&err, "unused");
}

// ---------------------------------------------------------------- size caps

/// Every message a `GradientError` carries.
fn message_of(err: &GradientError) -> Option<&str> {
    match err {
        GradientError::Forbidden { message }
        | GradientError::NotFound { message }
        | GradientError::Conflict { message }
        | GradientError::BadRequest { message, .. }
        | GradientError::Network { message }
        | GradientError::Malformed { message }
        | GradientError::Config { message } => Some(message),
        _ => None,
    }
}

#[tokio::test]
async fn huge_error_bodies_are_cut_and_fail_fast() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let c = client(&sim.base_url());
    let svc = c.create_service(&t, &edr()).await.unwrap().skus[0]
        .id
        .clone();
    sim.set_faults(Faults {
        error_body_bytes: Some(20 << 20),
        ..Faults::default()
    });

    // A real 404 (unmapped pair) with a 20 MiB message.
    let started = Instant::now();
    let err = c.post_count(&t, &svc, "ws-1", 3, false).await.unwrap_err();
    let GradientError::NotFound { message } = &err else {
        panic!("{err:?}")
    };
    assert!(message.chars().count() <= 200, "{}", message.len());
    assert!(
        message.starts_with(&format!(
            "POST /api/vendor-api/service/{svc}/count: Mapping not found"
        )),
        "{message}"
    );
    assert!(message.ends_with('…'), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_redacted(&err, &org.partner_key);

    // 401 stays TokenRejected; injected 503s with huge bodies are retried and end as Server.
    let err = c.organization(&token("wrong-partner")).await.unwrap_err();
    assert!(matches!(err, GradientError::TokenRejected), "{err:?}");
    sim.set_faults(Faults {
        error_body_bytes: Some(20 << 20),
        force_status: Some(503),
        ..Faults::default()
    });
    let before = c.requests_sent();
    let err = c.organization(&t).await.unwrap_err();
    assert!(
        matches!(err, GradientError::Server { status: 503 }),
        "{err:?}"
    );
    assert_eq!(c.requests_sent(), before + 4);
    sim.set_faults(Faults {
        error_body_bytes: Some(1 << 20),
        force_status: Some(403),
        ..Faults::default()
    });
    let err = c.vendor(&t).await.unwrap_err();
    let GradientError::Forbidden { message } = &err else {
        panic!("{err:?}")
    };
    assert!(message.chars().count() <= 200);
    assert!(message.contains("Anomaly detected"), "{message}");
}

#[tokio::test]
async fn long_and_cut_error_messages_are_scrubbed_then_capped() {
    let partner = "pk-long-0001";
    let header = gradient_sim::gradient_token(VENDOR_KEY, partner);
    // The vendor key straddles the 16 KiB read limit: only its start is read.
    let shape = |filler: &str| format!(r#"{{"statusCode":400,"f":"{filler}","message":"boom "#);
    let prefix = shape(&"y".repeat(16 * 1024 - 8 - shape("").len()));
    let cut_at = 16 * 1024 - prefix.len();
    assert!(cut_at > 4 && cut_at < VENDOR_KEY.len(), "{cut_at}");
    let straddling = format!(r#"{prefix}{VENDOR_KEY} and more"}}"#);
    let srv = Scripted::start(vec![
        json_err(
            400,
            &format!("{} {header} {partner} {VENDOR_KEY}", "é".repeat(300)),
        ),
        json_err(409, &format!("dup {VENDOR_KEY} {}", "z".repeat(5000))),
        (400, vec![], straddling),
        (404, vec![], "<html>".repeat(10_000)),
    ])
    .await;
    let c = client(&srv.base);
    let t = token(partner);
    for _ in 0..4 {
        let err = c.vendor(&t).await.unwrap_err();
        let message = message_of(&err).unwrap().to_owned();
        assert!(message.chars().count() <= 200, "{err:?}");
        assert_redacted(&err, partner);
        assert!(!message.contains(&VENDOR_KEY[..8]), "{message}");
        match &err {
            GradientError::BadRequest { status: 400, .. } if message.contains("boom") => {
                assert_eq!(message, "GET /api/vendor-api: boom ");
            }
            GradientError::BadRequest { status: 400, .. } => {
                assert!(message.ends_with("éé…"), "{message}")
            }
            GradientError::Conflict { .. } => {
                assert!(message.starts_with("GET /api/vendor-api: dup [REDACTED] zz"))
            }
            GradientError::NotFound { .. } => assert!(message.contains("<html>")),
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn oversized_success_bodies_are_malformed() {
    // Exactly 8 MiB is accepted; one byte more (with a Content-Length) is not read at all.
    let mut exact = String::from("[]");
    exact.push_str(&" ".repeat(psa_gradient::MAX_BODY_BYTES - 2));
    let mut over = exact.clone();
    over.push(' ');
    let srv = Scripted::start(vec![(200, vec![], exact), (200, vec![], over)]).await;
    let c = client(&srv.base);
    let t = token("pk-big");
    assert!(c.list_accounts(&t).await.unwrap().is_empty());
    let err = c.list_accounts(&t).await.unwrap_err();
    match &err {
        GradientError::Malformed { message } => {
            assert_eq!(
                message,
                "/api/vendor-api/organization/accounts: response too large"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(c.requests_sent(), 2, "not retried");

    // A streamed body without Content-Length is cut while reading.
    let app = Router::new().fallback(|| async {
        let chunk = Bytes::from(vec![b' '; 1 << 20]);
        let chunks = (0..64).map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
        Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(axum::body::Body::from_stream(futures::stream::iter(chunks)))
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let c = client(&base);
    let started = Instant::now();
    let err = c.organization(&t).await.unwrap_err();
    assert!(
        matches!(&err, GradientError::Malformed { message } if message.ends_with("response too large")),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

// ---------------------------------------------------------------- vendor-key refresh

const NEW_VENDOR_KEY: &str = "vendor-KEY-s3cret-0002";

/// A refresher that reads the key a test keeps in `store` (as Secrets Manager would), counting reads.
fn refresher(store: Arc<Mutex<String>>, reads: Arc<std::sync::atomic::AtomicU64>) -> KeyRefresh {
    Arc::new(move || {
        let store = store.clone();
        let reads = reads.clone();
        Box::pin(async move {
            reads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let raw = store.lock().unwrap().clone();
            VendorKey::parse(&raw).map_err(|_| "the vendor key secret is unusable".to_owned())
        })
    })
}

struct Refreshing {
    client: GradientClient,
    store: Arc<Mutex<String>>,
    reads: Arc<std::sync::atomic::AtomicU64>,
}

impl Refreshing {
    fn new(base_url: &str, interval: Duration) -> Self {
        let store = Arc::new(Mutex::new(VENDOR_KEY.to_owned()));
        let reads = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut cfg = config(base_url);
        cfg.key_refresh_interval = interval;
        let client = GradientClient::new(cfg, VendorKey::parse(VENDOR_KEY).unwrap())
            .unwrap()
            .with_key_refresh(refresher(store.clone(), reads.clone()));
        Self {
            client,
            store,
            reads,
        }
    }

    fn rotate_secret(&self, key: &str) {
        *self.store.lock().unwrap() = key.to_owned();
    }

    fn reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

fn statuses(sim: &SimHandle) -> Vec<u16> {
    sim.requests().requests.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn rotated_vendor_key_is_refreshed_once_and_kept() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let r = Refreshing::new(&sim.base_url(), Duration::from_millis(300));
    let c = r.client.clone();
    c.organization(&t).await.unwrap();
    assert_eq!(c.key_refreshes(), 0, "no refresh without a 401");

    // Gradient and Secrets Manager both have the new key; the client still holds the old one.
    sim.set_vendor_key(NEW_VENDOR_KEY);
    r.rotate_secret(NEW_VENDOR_KEY);
    sim.clear_requests();
    let o = c.organization(&t).await.unwrap();
    assert_eq!(o.organization_id, org.organization_id);
    assert_eq!(c.key_refreshes(), 1);
    assert_eq!(r.reads(), 1);
    assert_eq!(statuses(&sim), [401, 200]);

    // Later calls, of the client and of a clone made before the rotation, use the new key.
    sim.clear_requests();
    r.client.list_accounts(&t).await.unwrap();
    c.vendor(&t).await.unwrap();
    assert_eq!(statuses(&sim), [200, 200]);
    assert_eq!(c.key_refreshes(), 1);

    // Many concurrent 401s after another rotation share one refresh, and all succeed.
    tokio::time::sleep(Duration::from_millis(350)).await;
    sim.set_vendor_key("vendor-KEY-s3cret-0003");
    r.rotate_secret("vendor-KEY-s3cret-0003");
    sim.clear_requests();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let c = c.clone();
            let t = t.clone();
            tokio::spawn(async move { c.organization(&t).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(c.key_refreshes(), 2);
    assert_eq!(r.reads(), 2);
    let log = statuses(&sim);
    assert_eq!(log.iter().filter(|s| **s == 200).count(), 20, "{log:?}");
    assert!(log.iter().all(|s| *s == 200 || *s == 401), "{log:?}");

    // A non-idempotent call (create_service retries only 429) also goes again after a
    // rotation: a 401 had no effect. It is created exactly once.
    tokio::time::sleep(Duration::from_millis(350)).await;
    sim.set_vendor_key("vendor-KEY-s3cret-0004");
    r.rotate_secret("vendor-KEY-s3cret-0004");
    sim.clear_requests();
    let v = c.create_service(&t, &edr()).await.unwrap();
    assert_eq!(v.skus.len(), 1);
    assert_eq!(statuses(&sim), [401, 201]);
    assert_eq!(c.key_refreshes(), 3);
}

#[tokio::test]
async fn revoked_vendor_key_costs_one_refresh_per_interval() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let r = Refreshing::new(&sim.base_url(), Duration::from_millis(500));
    let c = r.client.clone();
    c.organization(&t).await.unwrap();

    // Gradient revoked the key; Secrets Manager still answers the old one.
    sim.set_vendor_key("some-other-vendor-key");
    let concurrent = |n: usize| {
        let tasks: Vec<_> = (0..n)
            .map(|_| {
                let c = c.clone();
                let t = t.clone();
                tokio::spawn(async move { c.organization(&t).await })
            })
            .collect();
        async move {
            let mut errs = Vec::new();
            for task in tasks {
                errs.push(task.await.unwrap().unwrap_err());
            }
            errs
        }
    };
    for err in concurrent(25).await {
        assert!(matches!(err, GradientError::TokenRejected), "{err:?}");
        assert_redacted(&err, &org.partner_key);
    }
    assert_eq!(c.key_refreshes(), 1, "one refresh for 25 concurrent 401s");
    assert_eq!(r.reads(), 1);
    // Within the interval: no further read, and no retry (one request per call).
    sim.clear_requests();
    for err in concurrent(10).await {
        assert!(matches!(err, GradientError::TokenRejected));
    }
    assert_eq!(r.reads(), 1);
    assert_eq!(statuses(&sim), [401; 10]);
    // The next interval: exactly one more read.
    tokio::time::sleep(Duration::from_millis(550)).await;
    for err in concurrent(10).await {
        assert!(matches!(err, GradientError::TokenRejected));
    }
    assert_eq!(c.key_refreshes(), 2);
    assert_eq!(r.reads(), 2);

    // A failing refresher is like an unchanged key.
    tokio::time::sleep(Duration::from_millis(550)).await;
    r.rotate_secret("");
    let err = c.organization(&t).await.unwrap_err();
    assert!(matches!(err, GradientError::TokenRejected), "{err:?}");
    assert_eq!(r.reads(), 3);

    // The secret is fixed later: the next interval picks the new key up.
    tokio::time::sleep(Duration::from_millis(550)).await;
    r.rotate_secret("some-other-vendor-key");
    c.organization(&t).await.unwrap();
    assert_eq!(r.reads(), 4);
}

#[tokio::test]
async fn regenerated_partner_key_is_token_rejected_with_at_most_one_refresh() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let r = Refreshing::new(&sim.base_url(), Duration::from_secs(10));
    let c = r.client.clone();
    c.organization(&t).await.unwrap();
    sim.regenerate_key(&org.organization_id).unwrap();
    sim.clear_requests();
    for _ in 0..5 {
        let err = c.list_accounts(&t).await.unwrap_err();
        assert!(matches!(err, GradientError::TokenRejected), "{err:?}");
        assert_redacted(&err, &org.partner_key);
    }
    assert_eq!(c.key_refreshes(), 1);
    assert_eq!(r.reads(), 1);
    assert_eq!(statuses(&sim), [401; 5], "no 401 is sent twice");

    // Without a refresher nothing is re-read.
    let plain = client(&sim.base_url());
    assert!(matches!(
        plain.organization(&t).await.unwrap_err(),
        GradientError::TokenRejected
    ));
    assert_eq!(plain.key_refreshes(), 0);
    assert!(format!("{plain:?}").contains("key_refresh: false"));
    assert!(!format!("{c:?}").contains(VENDOR_KEY));
}

// ---------------------------------------------------------------- PSA adapter: descriptions

/// A registry for adapter tests that publish no services (accounts only): every call fails.
struct NoServices;

#[async_trait::async_trait]
impl psa_gradient::ServiceRegistry for NoServices {
    async fn known(&self) -> Result<std::collections::BTreeMap<String, String>, StoreError> {
        Err(StoreError("no registry in this test".into()))
    }
    async fn record(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(StoreError("no registry in this test".into()))
    }
    async fn try_lock(&self, _: &str, _: Duration) -> Result<bool, StoreError> {
        Err(StoreError("no registry in this test".into()))
    }
    async fn unlock(&self, _: &str) -> Result<(), StoreError> {
        Err(StoreError("no registry in this test".into()))
    }
}

#[tokio::test]
async fn psa_descriptions_empty_is_none_and_none_clears_in_gradient() {
    use psa_domain::ports::{Psa, PsaAccount};
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let c = client(&sim.base_url());
    let psa = psa_gradient::GradientPsa::new(c.clone(), Arc::new(NoServices));
    let account = |id: &str, name: &str, d: Option<&str>| PsaAccount {
        id: id.into(),
        name: name.into(),
        description: d.map(str::to_owned),
    };
    psa.create_accounts(
        &t,
        &[
            account("a", "A", None),
            account("b", "B", Some("b.example")),
        ],
    )
    .await
    .unwrap();
    // Blank and padded values as another writer might have left them in Gradient.
    c.create_accounts(
        &t,
        &[
            NewAccount {
                id: "c".into(),
                name: "  C  ".into(),
                description: Some("   ".into()),
            },
            NewAccount {
                id: "d".into(),
                name: "D".into(),
                description: Some(" d.example\n".into()),
            },
        ],
    )
    .await
    .unwrap();
    let raw = c.list_accounts(&t).await.unwrap();
    assert_eq!(
        raw[0].description.as_deref(),
        Some(""),
        "Gradient shows \"\""
    );
    assert_eq!(
        psa.accounts(&t).await.unwrap(),
        [
            account("a", "A", None),
            account("b", "B", Some("b.example")),
            account("c", "C", None),
            account("d", "D", Some("d.example")),
        ]
    );

    // The core's account lost its domain: the description is cleared in Gradient.
    sim.clear_requests();
    psa.update_account(&t, &account("b", "B", None))
        .await
        .unwrap();
    let o = sim.organization(&org.organization_id).unwrap();
    assert_eq!(o.accounts[1].description, None);
    assert_eq!(psa.accounts(&t).await.unwrap()[1], account("b", "B", None));
    // And set again.
    psa.update_account(&t, &account("b", "B2", Some("new.example")))
        .await
        .unwrap();
    assert_eq!(
        psa.accounts(&t).await.unwrap()[1],
        account("b", "B2", Some("new.example"))
    );
}

#[tokio::test]
async fn psa_update_sends_an_explicit_empty_description() {
    use psa_domain::ports::{Psa, PsaAccount};
    let srv = Scripted::start(vec![(
        200,
        vec![],
        r#"{"id":"a","name":"A","description":""}"#.into(),
    )])
    .await;
    let psa = psa_gradient::GradientPsa::new(client(&srv.base), Arc::new(NoServices));
    psa.update_account(
        &token("pk-desc"),
        &PsaAccount {
            id: "a".into(),
            name: "A".into(),
            description: None,
        },
    )
    .await
    .unwrap();
    let seen = srv.seen();
    assert_eq!(seen[0].method, "PATCH");
    assert_eq!(seen[0].uri, "/api/vendor-api/organization/accounts/a");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(body, serde_json::json!({"name": "A", "description": ""}));
}

// ---------------------------------------------------------------- alerts

fn sync_failed_alert(alert_id: &str) -> NewAlert {
    NewAlert {
        title: "Coro usage sync failed".into(),
        description: "Coro could not report usage to Gradient".into(),
        alert_id: alert_id.into(),
        priority: AlertPriority::High,
        status: NewAlert::STATUS_NEW,
        due_date_time: None,
        service_id: None,
    }
}

#[tokio::test]
async fn alert_success_400_404_and_failing_endpoint() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let t = token(&org.partner_key);
    let c = client(&sim.base_url());
    let svc = c.create_service(&t, &edr()).await.unwrap().skus[0]
        .id
        .clone();
    c.create_accounts(&t, &[acct("ws-1")]).await.unwrap();

    let receipt = c
        .alert(&t, "ws-1", &sync_failed_alert("run-1"))
        .await
        .unwrap();
    assert_eq!(receipt.alert_id, "run-1");
    assert!(!receipt.message_id.is_empty());
    assert!(!receipt.correlation_id.is_empty());
    let full = NewAlert {
        due_date_time: Some("2026-12-01T00:00:00Z".into()),
        service_id: Some(svc.clone()),
        priority: AlertPriority::VeryHigh,
        status: 6,
        ..sync_failed_alert("run-2")
    };
    c.alert(&t, "ws-1", &full).await.unwrap();
    let alerts = sim.organization(&org.organization_id).unwrap().alerts;
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].title, "Coro usage sync failed");
    assert_eq!(alerts[0].message_id, receipt.message_id);
    assert_eq!(alerts[0].correlation_id, receipt.correlation_id);
    assert_eq!((alerts[0].priority, alerts[0].status), (3, 1));
    assert_eq!((alerts[1].priority, alerts[1].status), (4, 6));
    assert_eq!(alerts[1].service_id.as_deref(), Some(svc.as_str()));
    assert_eq!(
        alerts[1].due_date_time.as_deref(),
        Some("2026-12-01T00:00:00Z")
    );

    // 400: Gradient validates (empty title, status out of range); never retried.
    let before = c.requests_sent();
    for bad in [
        NewAlert {
            title: String::new(),
            ..sync_failed_alert("run-3")
        },
        NewAlert {
            status: 7,
            ..sync_failed_alert("run-3")
        },
    ] {
        let err = c.alert(&t, "ws-1", &bad).await.unwrap_err();
        assert!(
            matches!(err, GradientError::BadRequest { status: 400, .. }),
            "{err:?}"
        );
        assert_redacted(&err, &org.partner_key);
    }
    assert_eq!(c.requests_sent(), before + 2);

    // 404: an account that is not the organization's, or an unknown service.
    let err = c
        .alert(&t, "ws-9", &sync_failed_alert("run-4"))
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::NotFound { .. }), "{err:?}");
    let unknown_service = NewAlert {
        service_id: Some("svc_999".into()),
        ..sync_failed_alert("run-5")
    };
    let err = c.alert(&t, "ws-1", &unknown_service).await.unwrap_err();
    assert!(matches!(err, GradientError::NotFound { .. }), "{err:?}");

    // A failing alert endpoint: 503 is not retried (not idempotent); other routes still work.
    sim.set_faults(Faults {
        alert_status: Some(503),
        ..Faults::default()
    });
    let before = c.requests_sent();
    let err = c
        .alert(&t, "ws-1", &sync_failed_alert("run-6"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GradientError::Server { status: 503 }),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(c.requests_sent(), before + 1);
    c.organization(&t).await.unwrap();
    assert_eq!(
        sim.organization(&org.organization_id).unwrap().alerts.len(),
        2
    );
}

#[tokio::test]
async fn alert_request_shape_429_retry_and_tolerant_receipts() {
    let srv = Scripted::start(vec![
        (429, vec![("retry-after", "0".into())], "{}".into()),
        (
            200,
            vec![],
            r#"{"messageId":"m1","alertId":"a 1","correlationID":"c1"}"#.into(),
        ),
        (202, vec![], String::new()),
        (
            201,
            vec![],
            r#"{"status":"success","data":{"messageId":"m3","alertId":"a 1","correlationID":"c3"}}"#
                .into(),
        ),
        (200, vec![], r#"{"messageId":"#.into()),
    ])
    .await;
    let c = client(&srv.base);
    let t = token("pk-alert");
    let alert = sync_failed_alert("a 1");
    let r = c.alert(&t, "ws 1/x", &alert).await.unwrap();
    assert_eq!(
        (
            r.message_id.as_str(),
            r.alert_id.as_str(),
            r.correlation_id.as_str()
        ),
        ("m1", "a 1", "c1")
    );
    assert_eq!(c.requests_sent(), 2, "a 429 is retried");
    let seen = srv.seen();
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].uri, "/api/vendor-api/alerting/ws%201%2Fx");
    assert_eq!(seen[0].headers["content-type"], "application/json");
    let body: serde_json::Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "title": "Coro usage sync failed",
            "description": "Coro could not report usage to Gradient",
            "alertId": "a 1",
            "priority": 3,
            "status": 1,
        })
    );
    // An empty 2xx body is accepted; an envelope is looked into; a cut body is Malformed.
    let r = c.alert(&t, "ws-1", &alert).await.unwrap();
    assert_eq!((r.alert_id.as_str(), r.message_id.as_str()), ("a 1", ""));
    let r = c.alert(&t, "ws-1", &alert).await.unwrap();
    assert_eq!(r.message_id, "m3");
    let err = c.alert(&t, "ws-1", &alert).await.unwrap_err();
    assert!(matches!(err, GradientError::Malformed { .. }), "{err:?}");
}

// ---------------------------------------------------------------- echoed secrets

/// A realistic vendor key (48 characters).
const LONG_VENDOR_KEY: &str = "coro-vendor-7f3a9c2e-41b8-4d6a-9e0f-5b2c8d1a7e36";

/// Calls every endpoint of the client once; what each returned (the value dropped).
async fn every_endpoint(
    c: &GradientClient,
    t: &ApiToken,
) -> Vec<(&'static str, Result<(), GradientError>)> {
    let update = AccountUpdate {
        name: Some("Renamed".into()),
        description: None,
    };
    vec![
        ("vendor", c.vendor(t).await.map(drop)),
        ("organization", c.organization(t).await.map(drop)),
        (
            "set_status",
            c.set_status(t, IntegrationStatus::Pending).await,
        ),
        ("list_accounts", c.list_accounts(t).await.map(drop)),
        (
            "create_accounts",
            c.create_accounts(t, &[acct("ws-1")]).await.map(drop),
        ),
        (
            "update_account",
            c.update_account(t, "ws-1", &update).await.map(drop),
        ),
        (
            "create_service",
            c.create_service(t, &edr()).await.map(drop),
        ),
        ("service", c.service(t, "svc_1").await.map(drop)),
        (
            "post_count",
            c.post_count(t, "svc_1", "ws-1", 3, true).await,
        ),
        (
            "alert",
            c.alert(t, "ws-1", &sync_failed_alert("a-1"))
                .await
                .map(drop),
        ),
    ]
}

/// Gradient (or a proxy) echoes the `GRADIENT-TOKEN` header in an error body — as JSON, plain
/// text, JSON cut inside the string, or a 16 KiB+ body with the value across both the 200-char
/// message cut and the 16 KiB read cut — on every endpoint and for every error status with a
/// message: no 12-character piece of any secret shows.
#[tokio::test]
async fn echoed_token_leaks_no_piece_on_any_endpoint() {
    // 200 calls: above the simulator's default limit, which is not what this test is about.
    let sim = Simulator::start(SimConfig {
        vendor_key: LONG_VENDOR_KEY.to_owned(),
        max_rps: 10_000,
        ..SimConfig::default()
    })
    .await
    .unwrap();
    let org = sim.create_organization("Acme");
    assert!(org.partner_key.len() >= 32, "{}", org.partner_key);
    let t = token(&org.partner_key);
    let c = GradientClient::new(
        config(&sim.base_url()),
        VendorKey::parse(LONG_VENDOR_KEY).unwrap(),
    )
    .unwrap();
    let mut sent = 0;
    for shape in [
        EchoShape::Json,
        EchoShape::Text,
        EchoShape::BrokenJson,
        EchoShape::Large,
    ] {
        for status in [400, 403, 404, 409, 422] {
            sim.set_faults(Faults {
                echo_token: Some(EchoToken {
                    shape,
                    status,
                    ..EchoToken::default()
                }),
                ..Faults::default()
            });
            let results = every_endpoint(&c, &t).await;
            sent += results.len() as u64;
            assert_eq!(c.requests_sent(), sent, "4xx errors are not retried");
            for (endpoint, result) in results {
                let Err(err) = result else {
                    panic!("{shape:?} {status} {endpoint}: succeeded")
                };
                assert_eq!(err.status(), Some(status), "{shape:?} {endpoint}: {err:?}");

                assert_no_secret_piece(&err, LONG_VENDOR_KEY, &org.partner_key);
                let message = match &err {
                    GradientError::BadRequest { message, .. }
                    | GradientError::Forbidden { message }
                    | GradientError::NotFound { message }
                    | GradientError::Conflict { message } => message,
                    other => panic!("{other:?}"),
                };
                assert!(message.chars().count() <= 200, "{message}");
                if shape != EchoShape::Large {
                    assert!(message.contains("[REDACTED]"), "{shape:?}: {message}");
                }
            }
        }
    }
}

/// Error bodies (none cut at 16 KiB) with a secret across the 200-character message cut, or
/// re-encoded: escaped in JSON text that is shown raw, or base64 of a key on its own.
#[tokio::test]
async fn secrets_across_the_message_cut_or_re_encoded_leak_no_piece() {
    let partner = "pk_live_???Zq8~~~Xv4R3mT0wKd9Lp7Yb2Nc5";
    let header = gradient_sim::gradient_token(LONG_VENDOR_KEY, partner);
    assert!(header.contains('/') && header.contains('+'), "{header}");
    let dots = ".".repeat(140);
    let bodies = [
        // Plain text: the value starts at char ~180 of the message.
        format!("{dots} GRADIENT-TOKEN: {header} rejected"),
        // JSON cut inside the message string, the value across char 200, body not cut.
        format!(r#"{{"statusCode":400,"message":"{dots} bad header {header} and more"#),
        // JSON without a `message`, shown raw: `/` escaped as `\/` (as PHP does), `+` as \u002B.
        format!(
            r#"{{"error":"bad header {}"}}"#,
            header.replace('/', "\\/").replace('+', "\\u002B")
        ),
        // A proxy's log line: the vendor key alone in base64, and the header in URL-safe base64.
        format!(
            "auth {} / {}",
            STANDARD.encode(LONG_VENDOR_KEY),
            URL_SAFE.encode(&header)
        ),
        // The partner key in base64, in a JSON message.
        serde_json::json!({"message": format!("partner {}", STANDARD.encode(partner))}).to_string(),
    ];
    let srv = Scripted::start(bodies.iter().map(|b| (400, vec![], b.clone())).collect()).await;
    let c = GradientClient::new(
        config(&srv.base),
        VendorKey::parse(LONG_VENDOR_KEY).unwrap(),
    )
    .unwrap();
    let mut leaks = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let err = c.vendor(&token(partner)).await.unwrap_err();
        let GradientError::BadRequest { message, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(message.chars().count() <= 200, "{message}");
        if let Some(leak) = shown_piece(&err, LONG_VENDOR_KEY, partner) {
            leaks.push(format!("body {i} ({} bytes): {leak}", body.len()));
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
}

/// A 2xx body that does not parse and quotes the secrets: serde's message quotes the value.
#[tokio::test]
async fn unparsable_success_body_quoting_the_token_leaks_no_piece() {
    let partner = "pk_3b9e1f7c0a2d4e6f8a1b3c5d7e9f0a2b";
    let header = gradient_sim::gradient_token(LONG_VENDOR_KEY, partner);
    let quoted = serde_json::json!(format!(
        "GRADIENT-TOKEN: {header} (vendor {LONG_VENDOR_KEY}, partner {partner})"
    ))
    .to_string();
    let srv = Scripted::start((0..10).map(|_| (200, vec![], quoted.clone())).collect()).await;
    let c = GradientClient::new(
        config(&srv.base),
        VendorKey::parse(LONG_VENDOR_KEY).unwrap(),
    )
    .unwrap();
    let mut malformed = 0;
    for (endpoint, result) in every_endpoint(&c, &token(partner)).await {
        match result {
            // These two read nothing of a 2xx body.
            Ok(()) => assert!(
                ["set_status", "post_count"].contains(&endpoint),
                "{endpoint}"
            ),
            Err(err) => {
                assert!(
                    matches!(err, GradientError::Malformed { .. }),
                    "{endpoint}: {err:?}"
                );
                assert_no_secret_piece(&err, LONG_VENDOR_KEY, partner);
                malformed += 1;
            }
        }
    }
    assert_eq!(malformed, 8);
}

// ---------------------------------------------------------------- the job's deadline

/// A server that answers every request `status` after `delay` (with `Retry-After` when given),
/// counting the requests as they arrive.
struct Slow {
    base: String,
    seen: Arc<std::sync::atomic::AtomicUsize>,
}

impl Slow {
    async fn start(delay: Duration, status: u16, retry_after: Option<u64>) -> Self {
        let seen = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen.clone();
        let app = Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let mut resp = (
                    StatusCode::from_u16(status).unwrap(),
                    [("content-type", "application/json")],
                    ORG_JSON,
                )
                    .into_response();
                if let Some(secs) = retry_after {
                    resp.headers_mut().insert("retry-after", secs.into());
                }
                resp
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base, seen }
    }

    fn seen(&self) -> usize {
        self.seen.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A client with a long request timeout and many attempts: only the deadline can end a call early.
fn patient_client(base: &str) -> GradientClient {
    let mut cfg = config(base);
    cfg.request_timeout = Duration::from_secs(30);
    cfg.backoff_cap = Duration::from_secs(10);
    cfg.max_attempts = 10;
    GradientClient::new(cfg, VendorKey::parse(VENDOR_KEY).unwrap()).unwrap()
}

#[tokio::test]
async fn a_slow_answer_is_cut_at_the_deadline_and_not_retried_past_it() {
    let srv = Slow::start(Duration::from_secs(15), 200, None).await;
    let c = patient_client(&srv.base);
    let started = Instant::now();
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let result = psa_domain::deadline::scope(until, c.organization(&token("pk-slow"))).await;
    let elapsed = started.elapsed();
    assert!(matches!(result, Err(GradientError::Timeout)), "{result:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    assert_eq!(c.requests_sent(), 1, "no retry after the deadline");
    assert_eq!(srv.seen(), 1);
}

#[tokio::test]
async fn retries_stop_at_the_deadline() {
    // 503 after 600 ms each: within a 1.5 s scope at most three attempts start, the last is cut.
    let srv = Slow::start(Duration::from_millis(600), 503, None).await;
    let c = patient_client(&srv.base);
    let started = Instant::now();
    let until = std::time::Instant::now() + Duration::from_millis(1500);
    let err = psa_domain::deadline::scope(until, c.organization(&token("pk-5xx")))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        matches!(
            err,
            GradientError::Timeout | GradientError::Server { status: 503 }
        ),
        "{err:?}"
    );
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    assert!((1..=3).contains(&srv.seen()), "{}", srv.seen());

    // A Retry-After that would end after the deadline is not waited for: the 429 comes back.
    let srv = Slow::start(Duration::ZERO, 429, Some(5)).await;
    let c = patient_client(&srv.base);
    let started = Instant::now();
    let until = std::time::Instant::now() + Duration::from_secs(2);
    let err = psa_domain::deadline::scope(until, c.organization(&token("pk-429")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, GradientError::RateLimited { retry_after: Some(d) } if d.as_secs() == 5),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(srv.seen(), 1);

    // Outside a scope the same answer is waited for (capped at backoff_cap) as before.
    let srv = Slow::start(Duration::ZERO, 429, Some(1)).await;
    let mut cfg = config(&srv.base);
    cfg.max_attempts = 2;
    let c = GradientClient::new(cfg, VendorKey::parse(VENDOR_KEY).unwrap()).unwrap();
    let started = Instant::now();
    let err = c.organization(&token("pk-429")).await.unwrap_err();
    assert!(matches!(err, GradientError::RateLimited { .. }), "{err:?}");
    assert!(started.elapsed() >= Duration::from_millis(950));
    assert_eq!(srv.seen(), 2);
}

#[tokio::test]
async fn a_call_without_time_left_sends_nothing() {
    let srv = Scripted::start(vec![(200, vec![], ORG_JSON.into())]).await;
    let c = client(&srv.base);
    let past = std::time::Instant::now() - Duration::from_secs(1);
    let started = Instant::now();
    let err = psa_domain::deadline::scope(past, c.organization(&token("pk-late")))
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::Timeout), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(c.requests_sent(), 0);
    assert!(srv.seen().is_empty());
    // Outside a scope the same client sends as usual.
    c.organization(&token("pk-late")).await.unwrap();
    assert_eq!(srv.seen().len(), 1);
}

#[tokio::test]
async fn a_wait_for_the_budget_is_cut_at_the_deadline() {
    let srv = Scripted::start(vec![(200, vec![], ORG_JSON.into()); 2]).await;
    // One request a window (~1 s): the second call would wait about a second for its slot.
    let c = client(&srv.base).with_budget(psa_gradient::Budget::local(1));
    let t = token("pk-budget");
    c.organization(&t).await.unwrap();
    let started = Instant::now();
    let until = std::time::Instant::now() + Duration::from_millis(200);
    let err = psa_domain::deadline::scope(until, c.organization(&t))
        .await
        .unwrap_err();
    assert!(matches!(err, GradientError::Timeout), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(c.requests_sent(), 1, "nothing sent without a slot");
    assert_eq!(srv.seen().len(), 1);
}
