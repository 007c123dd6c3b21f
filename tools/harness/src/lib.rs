//! One harness for the integration tests (`tests/`) and the tools (`tools/devtools`: demo, bench,
//! serve, startup): real DynamoDB Local and moto (started by `scripts/stack.sh`), a Gradient
//! simulator on a real socket per test, the real handlers driven with real API Gateway v2
//! payloads. Each test gets its own tables, secret prefix and simulator.

pub mod events;
pub mod fixture;
pub mod front;
pub mod logs;
pub mod mail;
pub mod meter;
pub mod population;
pub mod quiet;
pub mod runtime_api;

use aws_sdk_dynamodb::types::AttributeValue;
use devkit::{LocalAws, Tables};
use gradient_sim::{SimConfig, SimHandle, Simulator};
use lambda_http::http::HeaderMap;
use psa_gradient::GradientConfig;
use psa_runtime::Platform;
use psa_runtime::config::Settings;
use psa_store::WorkspaceItem;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

pub use mail::{CONSOLE_URL, NOTIFY_FROM};

pub use gradient_sim;

/// The API Gateway v2 (HTTP API) payload every request event is built from.
pub const HTTP_EVENT: &str = include_str!("../events/http-api-v2.json");

/// The EventBridge payload of the daily rule, as Lambda receives it (the file in `events/`).
pub const SCHEDULED_EVENT: &str = include_str!("../events/eventbridge-scheduled.json");

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

/// Client settings for tests: short timeouts and quick backoff, so fault tests stay fast.
pub fn test_gradient_config() -> GradientConfig {
    let mut c = GradientConfig::new(String::new());
    c.request_timeout = Duration::from_secs(3);
    c.connect_timeout = Duration::from_secs(1);
    c.backoff_base = Duration::from_millis(10);
    c.backoff_cap = Duration::from_millis(300);
    c.max_attempts = 3;
    c.key_refresh_interval = Duration::from_millis(50);
    c
}

/// Sync knobs for tests: no cool-down unless a test sets one, small checkpoints so they happen.
pub fn test_sync_policy() -> psa_domain::usecase::sync::SyncPolicy {
    psa_domain::usecase::sync::SyncPolicy {
        cooldown: Duration::ZERO,
        // Tests connect and re-token far more often than an admin; tests/tests/it/limits.rs checks
        // the production limit.
        verify_attempts: 1_000,
        checkpoint_every: 10,
        lease_ttl: Duration::from_secs(5),
        ..Default::default()
    }
}

pub struct TestEnv {
    pub queue_url: String,
    pub local: LocalAws,
    pub tables: Tables,
    pub prefix: String,
    pub secret_prefix: String,
    pub sim: SimHandle,
    pub platform: Platform,
    pub api: psa_http::App,
    /// What the platform's DynamoDB calls consumed (the API, the worker, budget leases).
    pub meter: meter::Meter,
    /// The EMF records this environment's in-process core wrote: [`TestEnv::metrics`].
    pub emf: logs::Emf,
    /// Its share of the room ([`quiet`]): a test that must run alone waits until it is gone.
    _share: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
}

impl TestEnv {
    /// Fresh tables, a fresh secret prefix and a fresh simulator; panics loudly without the stack.
    pub async fn start(label: &str) -> Self {
        Self::start_with(label, SimConfig::default(), test_gradient_config(), 80).await
    }

    pub async fn start_with(
        label: &str,
        sim: SimConfig,
        gradient: GradientConfig,
        max_rps: u32,
    ) -> Self {
        logs::install();
        let share = quiet::share().await;
        let local = LocalAws::from_env().await;
        let prefix = LocalAws::unique_prefix(label);
        let tables = local.create_tables(&prefix).await;
        let sim = Simulator::start(sim)
            .await
            .expect("the Gradient simulator starts");
        let vendor_secret = local
            .create_secret(&format!("{prefix}/vendor-key"), &sim.vendor_key())
            .await;
        let secret_prefix = format!("{prefix}/tokens/");
        let queue_url = local.create_queue(&format!("{prefix}-sync")).await;
        let settings = Settings {
            psa_table: tables.psa.clone(),
            workspaces_table: tables.workspaces.clone(),
            sync_queue_url: Some(queue_url.clone()),
            gradient_base_url: sim.base_url(),
            vendor_key_secret_id: vendor_secret,
            gradient_max_rps: max_rps,
            token_secret_prefix: secret_prefix.clone(),
            sync: test_sync_policy(),
            event_bus_name: None,
            // Tests drive one workspace hard; `limits.rs` sets the contract's default.
            api_workspace_rps: 1_000,
            token_kms_key_id: None,
            notify_from: Some(NOTIFY_FROM.into()),
            console_url: Some(CONSOLE_URL.into()),
        };
        // Every DynamoDB call of the platform is billed: `env.meter.bill()` (`harness::meter`).
        let meter = meter::Meter::default();
        let mut platform =
            Platform::build_on(settings, &local.sdk, gradient, meter.client(&local.sdk))
                .await
                .expect("platform builds");
        // EMF records go to this environment's own capture (`TestEnv::metrics`), not stdout: a
        // test reads only what its own core wrote, whatever else runs in the process.
        let emf = logs::Emf::default();
        let sink = emf.clone();
        platform.core.metrics =
            std::sync::Arc::new(psa_runtime::emf::EmfMetrics::to(move |line| {
                sink.record(line)
            }));
        let api = platform.http_app();
        Self {
            queue_url,
            local,
            tables,
            prefix,
            secret_prefix,
            sim,
            platform,
            api,
            meter,
            emf,
            _share: share,
        }
    }

    /// Every EMF record this environment's in-process core wrote so far, parsed.
    pub fn metrics(&self) -> Vec<Value> {
        self.emf.records()
    }

    /// Sends one request through the real HTTP handler.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        claims: Option<&Claims>,
        body: Option<&str>,
    ) -> ApiResponse {
        call_app(&self.api, method, path, claims, body).await
    }

    /// `DELETE /v1/psa/connectors/gradient` as the channel's admin.
    pub async fn delete_connector(&self, channel: &str) -> ApiResponse {
        self.call(
            "DELETE",
            "/v1/psa/connectors/gradient",
            Some(&Claims::admin(channel)),
            None,
        )
        .await
    }

    /// `POST /v1/psa/connectors` as the channel's admin.
    pub async fn connect(&self, channel: &str, partner_key: &str) -> ApiResponse {
        let body = serde_json::json!({"type": "gradient", "apiToken": partner_key}).to_string();
        self.call(
            "POST",
            "/v1/psa/connectors",
            Some(&Claims::admin(channel)),
            Some(&body),
        )
        .await
    }

    /// `PUT /v1/psa/connectors/gradient/token` as the channel's admin.
    pub async fn retoken(&self, channel: &str, partner_key: &str) -> ApiResponse {
        let body = serde_json::json!({"apiToken": partner_key}).to_string();
        self.call(
            "PUT",
            "/v1/psa/connectors/gradient/token",
            Some(&Claims::admin(channel)),
            Some(&body),
        )
        .await
    }

    /// Writes workspaces into the read-model table, as the Coro platform would.
    pub async fn seed_workspaces(&self, items: &[WorkspaceItem]) {
        let ddb = self.local.dynamodb();
        for chunk in items.chunks(25) {
            let writes = chunk
                .iter()
                .map(|w| {
                    let item = serde_dynamo::to_item(w).expect("workspace item");
                    aws_sdk_dynamodb::types::WriteRequest::builder()
                        .put_request(
                            aws_sdk_dynamodb::types::PutRequest::builder()
                                .set_item(Some(item))
                                .build()
                                .expect("put"),
                        )
                        .build()
                })
                .collect();
            let out = ddb
                .batch_write_item()
                .request_items(&self.tables.workspaces, writes)
                .send()
                .await
                .expect("seed workspaces");
            assert!(
                out.unprocessed_items.is_none_or(|u| u.is_empty()),
                "DynamoDB Local left items unprocessed"
            );
        }
    }

    /// Every item of the project's table (a scan: tests only).
    pub async fn psa_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        let ddb = self.local.dynamodb();
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let page = ddb
                .scan()
                .table_name(&self.tables.psa)
                .set_exclusive_start_key(start)
                .send()
                .await
                .expect("scan");
            items.extend(page.items.unwrap_or_default());
            start = page.last_evaluated_key;
            if start.is_none() {
                return items;
            }
        }
    }

    /// Items of the project's table whose `pk` starts with `WS#` (connectors and their data).
    pub async fn workspace_items(&self) -> Vec<HashMap<String, AttributeValue>> {
        self.psa_items()
            .await
            .into_iter()
            .filter(|i| {
                i.get("pk")
                    .and_then(|v| v.as_s().ok())
                    .is_some_and(|p| p.starts_with("WS#"))
            })
            .collect()
    }

    /// Names of the token secrets under this test's prefix.
    pub async fn token_secret_names(&self) -> Vec<String> {
        let sm = self.local.secrets();
        let mut names = Vec::new();
        let mut next = None;
        loop {
            let out = sm
                .list_secrets()
                .set_next_token(next)
                .max_results(100)
                .send()
                .await
                .expect("list secrets");
            names.extend(
                out.secret_list()
                    .iter()
                    .filter_map(|s| s.name())
                    .filter(|n| n.starts_with(&self.secret_prefix))
                    .map(str::to_owned),
            );
            next = out.next_token;
            if next.is_none() {
                return names;
            }
        }
    }

    /// Moves the last full resend of `channel`'s connector `by` into the past, as if it went out
    /// then (a re-token forces at most one full resend a day).
    pub async fn age_last_full_resend(&self, channel: &str, by: time::Duration) {
        let at = time::OffsetDateTime::now_utc() - by;
        self.local
            .dynamodb()
            .update_item()
            .table_name(&self.tables.psa)
            .key("pk", AttributeValue::S(format!("WS#{channel}")))
            .key("sk", AttributeValue::S("CONNECTOR#gradient".into()))
            .update_expression("SET lastFullResendAt = :at")
            .expression_attribute_values(
                ":at",
                AttributeValue::S(
                    at.format(&time::format_description::well_known::Rfc3339)
                        .expect("a time formats"),
                ),
            )
            .send()
            .await
            .expect("age the last full resend");
    }

    /// The current value of a connector's token secret.
    pub async fn token_secret_value(&self, channel: &str) -> Option<String> {
        self.local
            .secrets()
            .get_secret_value()
            .secret_id(format!("{}{channel}", self.secret_prefix))
            .send()
            .await
            .ok()
            .and_then(|o| o.secret_string)
    }
}

/// A workspace item of the read model (contract shape).
#[allow(clippy::too_many_arguments)]
pub fn workspace(
    id: &str,
    parent: Option<&str>,
    kind: &str,
    name: &str,
    status: &str,
    services: &[&str],
    users: u64,
    devices: u64,
) -> WorkspaceItem {
    let catalogue = psa_domain::Catalogue::builtin();
    let (mut modules, mut addons) = (
        std::collections::BTreeSet::new(),
        std::collections::BTreeSet::new(),
    );
    for s in services {
        match catalogue.get(s).map(|s| s.kind) {
            Some(psa_domain::catalogue::ServiceKind::Addon) => addons.insert(s.to_string()),
            _ => modules.insert(s.to_string()),
        };
    }
    WorkspaceItem {
        workspace_id: id.into(),
        parent_workspace_id: parent.map(str::to_owned),
        kind: kind.into(),
        name: name.into(),
        domain: Some(format!("{id}.example.com")),
        status: status.into(),
        modules: (!modules.is_empty()).then_some(modules),
        addons: (!addons.is_empty()).then_some(addons),
        protected_users: users,
        protected_devices: devices,
        updated_at: "2026-11-24T04:00:00Z".into(),
    }
}

// ---- the queue and the worker, driven with real SQS event payloads ---------------------------

/// A real SQS → Lambda event (`aws:sqs` records) for messages received from the local queue.
/// The EventBridge "Scheduled Event" of the daily rule, as Lambda receives it (05:00 UTC,
/// 2026-11-24).
pub fn scheduled_event() -> serde_json::Value {
    serde_json::json!({
        "version": "0",
        "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2026-11-24T05:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/psa-daily-sync"],
        "detail": {}
    })
}

pub fn sqs_event(messages: &[aws_sdk_sqs::types::Message]) -> aws_lambda_events_sqs::SqsEvent {
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            serde_json::json!({
                "messageId": m.message_id().unwrap_or_default(),
                "receiptHandle": m.receipt_handle().unwrap_or_default(),
                "body": m.body().unwrap_or_default(),
                "attributes": {
                    "ApproximateReceiveCount": "1",
                    "SentTimestamp": "1795496400000",
                    "SenderId": "AIDAEXAMPLE",
                    "ApproximateFirstReceiveTimestamp": "1795496400001"
                },
                "messageAttributes": {},
                "md5OfBody": m.md5_of_body().unwrap_or_default(),
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:psa-sync",
                "awsRegion": "us-east-1"
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).expect("SQS event shape")
}

pub use aws_lambda_events::event::sqs as aws_lambda_events_sqs;

impl TestEnv {
    /// Gives the API the platform's ports again after a test replaced some (a faulty vault, a
    /// slow PSA, another event bus); the API keeps its settings and the routes it serves.
    pub fn rewire_api(&mut self) {
        self.api.core = self.platform.core.clone();
        let (psa, queue) = (self.platform.psa_core(), self.platform.queue_core());
        self.api.with_psa = self.api.with_psa.take().map(|_| psa);
        self.api.with_queue = self.api.with_queue.take().map(|_| queue);
    }

    /// The sync worker with the test's core and sync policy.
    pub fn worker(&self) -> sync_worker::Worker {
        sync_worker::Worker::new(
            self.platform.worker_core(),
            self.platform.settings.sync.clone(),
            Some(self.platform.budget_share()),
        )
    }

    /// Receives up to 10 messages (hidden for `visibility` seconds).
    pub async fn receive(&self, visibility: i32) -> Vec<aws_sdk_sqs::types::Message> {
        self.local
            .sqs()
            .receive_message()
            .queue_url(&self.queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(visibility)
            .send()
            .await
            .expect("receive")
            .messages
            .unwrap_or_default()
    }

    /// Jobs currently waiting on the queue (each visible message once; they stay queued).
    pub async fn queued_jobs(&self) -> Vec<psa_domain::ports::SyncJob> {
        let mut seen = Vec::new();
        loop {
            let batch = self.receive(30).await;
            if batch.is_empty() {
                break;
            }
            seen.extend(batch);
        }
        let mut jobs = Vec::new();
        for m in &seen {
            jobs.push(serde_json::from_str(m.body().unwrap_or_default()).expect("job body"));
            self.local
                .sqs()
                .change_message_visibility()
                .queue_url(&self.queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .visibility_timeout(0)
                .send()
                .await
                .expect("change visibility");
        }
        jobs
    }

    /// Runs the worker like Lambda's SQS poller: receive a batch, invoke the handler with a real
    /// SQS event, delete what succeeded; failed items come back after `retry_after` (visibility).
    /// Stops when the queue stays empty or after `max_rounds`.
    pub async fn drain_with(
        &self,
        worker: &sync_worker::Worker,
        max_rounds: usize,
        retry_after: i32,
    ) -> usize {
        self.drain_with_deadline(worker, max_rounds, retry_after, Duration::from_secs(300))
            .await
    }

    /// [`Self::drain_with`] where each invocation has `time` before Lambda would stop it.
    pub async fn drain_with_deadline(
        &self,
        worker: &sync_worker::Worker,
        max_rounds: usize,
        retry_after: i32,
        time: Duration,
    ) -> usize {
        let mut invocations = 0;
        let mut empty_rounds = 0;
        for _ in 0..max_rounds {
            let batch = self.receive(retry_after.max(1)).await;
            if batch.is_empty() {
                empty_rounds += 1;
                if empty_rounds >= 8 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                continue;
            }
            empty_rounds = 0;
            invocations += 1;
            let deadline = std::time::Instant::now() + time;
            let resp = sync_worker::handle(
                worker,
                sqs_event(&batch),
                &format!("req-{invocations}"),
                deadline,
            )
            .await;
            let failed: std::collections::BTreeSet<String> = resp
                .batch_item_failures
                .iter()
                .map(|f| f.item_identifier.clone())
                .collect();
            for m in &batch {
                if !failed.contains(m.message_id().unwrap_or_default()) {
                    self.local
                        .sqs()
                        .delete_message()
                        .queue_url(&self.queue_url)
                        .receipt_handle(m.receipt_handle().unwrap_or_default())
                        .send()
                        .await
                        .expect("delete message");
                }
            }
        }
        invocations
    }

    /// Drains the queue with the default worker.
    pub async fn drain(&self) -> usize {
        self.drain_with(&self.worker(), 50, 1).await
    }

    /// `POST .../sync` as the channel's admin.
    pub async fn sync_now(&self, channel: &str) -> ApiResponse {
        self.call(
            "POST",
            "/v1/psa/connectors/gradient/sync",
            Some(&Claims::admin(channel)),
            None,
        )
        .await
    }

    /// `GET /v1/psa/connectors/gradient` as a viewer of the channel (must answer 200).
    pub async fn connector(&self, channel: &str) -> Value {
        let r = self
            .call(
                "GET",
                "/v1/psa/connectors/gradient",
                Some(&Claims::viewer(channel)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// `GET .../syncs` (first page, newest first) as a viewer of the channel.
    pub async fn syncs(&self, channel: &str) -> Value {
        let r = self
            .call(
                "GET",
                "/v1/psa/connectors/gradient/syncs",
                Some(&Claims::viewer(channel)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }

    /// `GET .../syncs/{runId}` as the channel's admin.
    pub async fn run(&self, channel: &str, run_id: &str) -> Value {
        let r = self
            .call(
                "GET",
                &format!("/v1/psa/connectors/gradient/syncs/{run_id}"),
                Some(&Claims::admin(channel)),
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    }
}
