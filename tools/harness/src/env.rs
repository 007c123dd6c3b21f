//! One test's environment: its own tables, queue, simulator and platform on the local stack.

use crate::claims::{ApiResponse, Claims, call_app};
use crate::mail::{CONSOLE_URL, NOTIFY_FROM};
use crate::{logs, meter, quiet};

use aws_sdk_dynamodb::types::AttributeValue;
use devkit::{LocalAws, Tables};
use gradient_sim::{SimConfig, SimHandle, Simulator};
use psa_gradient::GradientConfig;
use psa_runtime::Platform;
use psa_runtime::config::Settings;
use psa_store::WorkspaceItem;
use serde_json::Value;
use std::collections::HashMap;
use std::time::Duration;

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
