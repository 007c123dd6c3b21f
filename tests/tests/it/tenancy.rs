//! Safe among many tenants, against DynamoDB Local, moto and the Gradient simulator through the
//! real handlers: one organization backs one connector; a delete that fails half-way is finished
//! and no token outlives its connector, whatever races it; one MSP's rejections are never a
//! vendor-key fault; a workspace over its API rate is refused alone; a filtered readings page
//! costs its size; opaque user ids sign in; a function answers a route it does not serve with 404.

use crate::faults::{FaultyVault, SlowVerify};
use harness::fixture::{CH, connected_msp};
use harness::{Claims, TestEnv, logs, workspace};
use psa_domain::ports::RunReadings;
use psa_domain::{ConnectorRef, ConnectorType, Outcome, RunId, RunReading, Unit, WorkspaceId};
use psa_store::DynamoSync;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// A channel workspace with one managed child, connected to a new organization.
async fn channel(env: &TestEnv, id: &str, parent: Option<&str>) {
    env.seed_workspaces(&[
        workspace(id, parent, "channel", id, "subscription", &[], 0, 0),
        workspace(
            &format!("{id}_c1"),
            Some(id),
            "child",
            "Bakery",
            "subscription",
            &["EDR"],
            3,
            2,
        ),
    ])
    .await;
}

/// `GET /v1/psa/connectors/gradient` of `ws` as its viewer: (status, code).
async fn get_connector(env: &TestEnv, ws: &str) -> (u16, String) {
    let r = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient",
            Some(&Claims::viewer(ws)),
            None,
        )
        .await;
    (r.status, r.code())
}

/// Items of the project's table other than the per-workspace rate counters.
async fn state_items(env: &TestEnv) -> usize {
    env.psa_items()
        .await
        .iter()
        .filter(|i| !i["pk"].as_s().is_ok_and(|p| p.starts_with("LIMIT#")))
        .count()
}

#[tokio::test]
async fn an_organization_backs_one_connector() {
    let env = TestEnv::start("orgs").await;
    channel(&env, "msp_a", None).await;
    channel(&env, "msp_b", None).await;
    let org = env.sim.create_organization("Acme MSP");
    let other = env.sim.create_organization("Other MSP");
    assert_eq!(env.connect("msp_a", &org.partner_key).await.status, 201);

    // Another workspace with a key of the same organization: refused, nothing written anywhere.
    env.sim.clear_requests();
    let before = state_items(&env).await;
    let second_key = env.sim.regenerate_key(&org.organization_id).unwrap();
    let r = env.connect("msp_b", &second_key).await;
    assert_eq!((r.status, r.code().as_str()), (409, "organization_in_use"));
    let calls = env.sim.requests();
    assert!(
        calls.requests.iter().all(|c| c.method == "GET"),
        "no Gradient write: {:?}",
        calls.requests
    );
    assert_eq!(state_items(&env).await, before, "no item written");
    assert_eq!(env.token_secret_value("msp_b").await, None, "no secret");
    assert_eq!(get_connector(&env, "msp_b").await.0, 404);

    // A re-token that reaches another organization than the connector's own: refused.
    let kept = env.token_secret_value("msp_a").await;
    let r = env.retoken("msp_a", &other.partner_key).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "organization_mismatch")
    );
    assert_eq!(
        env.token_secret_value("msp_a").await,
        kept,
        "token unchanged"
    );
    // The organization's own regenerated key is fine (the connector follows it).
    let r = env.retoken("msp_a", &second_key).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // Delete frees the organization.
    let r = env.delete_connector("msp_a").await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(env.connect("msp_b", &second_key).await.status, 201);
}

#[tokio::test]
async fn a_connector_from_before_bindings_binds_on_its_next_sync() {
    let msp = connected_msp("orgs-legacy", 3).await;
    let env = &msp.env;
    // Remove the binding and the connector's organization, as a connector created before them.
    let ddb = env.local.dynamodb();
    ddb.delete_item()
        .table_name(&env.tables.psa)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("ORG#gradient#{}", msp.org)),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("BINDING".into()),
        )
        .send()
        .await
        .unwrap();
    ddb.update_item()
        .table_name(&env.tables.psa)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("WS#{CH}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("CONNECTOR#gradient".into()),
        )
        .update_expression("REMOVE organizationId")
        .send()
        .await
        .unwrap();
    channel(env, "msp_other", None).await;
    // Unbound: another workspace could still take it — until the legacy connector syncs.
    let run = harness::fixture::sync_and_wait(env).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let key = env.sim.regenerate_key(&msp.org).unwrap();
    let r = env.connect("msp_other", &key).await;
    assert_eq!((r.status, r.code().as_str()), (409, "organization_in_use"));
}

/// `msp_a` connected; then its token vault (the real one on moto) fails the next delete.
async fn connected_with_a_vault_whose_next_delete_fails(
    label: &str,
) -> (TestEnv, gradient_sim::CreatedOrg) {
    let mut env = TestEnv::start(label).await;
    channel(&env, "msp_a", None).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect("msp_a", &org.partner_key).await.status, 201);
    let vault = FaultyVault::new(env.platform.vault.clone());
    vault.failing_deletes.store(1, Ordering::SeqCst);
    env.platform.vault = Arc::new(vault);
    env.rewire_api();
    (env, org)
}

#[tokio::test]
async fn a_delete_that_fails_half_way_is_finished_by_a_retry() {
    let (env, org) = connected_with_a_vault_whose_next_delete_fails("delete-retry").await;

    let admin = Claims::admin("msp_a");
    let r = env.delete_connector("msp_a").await;
    assert_eq!((r.status, r.code().as_str()), (500, "internal"));
    // Gone for every caller at once, though its token is still there.
    assert_eq!(get_connector(&env, "msp_a").await.0, 404);
    let list = env
        .call("GET", "/v1/psa/connectors", Some(&admin), None)
        .await;
    assert_eq!(list.json()["items"], serde_json::json!([]));
    assert!(env.token_secret_value("msp_a").await.is_some());
    // The retried DELETE finishes it: no token, no item, no binding.
    let r = env.delete_connector("msp_a").await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(env.token_secret_value("msp_a").await, None);
    assert!(env.token_secret_names().await.is_empty());
    assert!(
        !env.psa_items()
            .await
            .iter()
            .any(|i| i["sk"].as_s().is_ok_and(|s| s.starts_with("CONNECTOR#"))),
        "no connector item"
    );
    assert!(
        !env.psa_items()
            .await
            .iter()
            .any(|i| i["pk"].as_s().is_ok_and(|p| p.starts_with("ORG#"))),
        "no organization binding"
    );
    assert_eq!(
        env.sim
            .organization(&org.organization_id)
            .unwrap()
            .status
            .as_str(),
        "inactive"
    );
    let r = env.delete_connector("msp_a").await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn a_delete_that_fails_half_way_is_finished_by_the_next_scheduled_firing() {
    let (env, org) = connected_with_a_vault_whose_next_delete_fails("delete-firing").await;
    let r = env.delete_connector("msp_a").await;
    assert_eq!(r.status, 500);
    assert!(env.token_secret_value("msp_a").await.is_some());

    // Nobody retries; the daily firing schedules the marked connector and the worker finishes.
    let scheduler = sync_scheduled::Scheduler::new(
        env.platform.queue_core(),
        env.platform.settings.sync.clone(),
        env.platform.settings.gradient_max_rps,
    );
    let report = sync_scheduled::handle_until(
        &scheduler,
        sync_scheduled::Request::Daily(Box::new(
            serde_json::from_value(harness::scheduled_event()).unwrap(),
        )),
        None,
        None,
    )
    .await
    .expect("the firing runs");
    assert_eq!(report.connectors, 1, "{report:?}");
    assert!(env.drain().await >= 1);
    assert_eq!(env.token_secret_value("msp_a").await, None, "token removed");
    assert!(
        !env.psa_items()
            .await
            .iter()
            .any(|i| i["sk"].as_s().is_ok_and(|s| s.starts_with("CONNECTOR#"))),
        "connector item removed"
    );
    // And the organization is free again.
    channel(&env, "msp_b", None).await;
    let key = env.sim.regenerate_key(&org.organization_id).unwrap();
    assert_eq!(env.connect("msp_b", &key).await.status, 201);
}

#[tokio::test]
async fn a_retoken_that_loses_a_race_with_a_delete_leaves_no_token() {
    let mut env = TestEnv::start("race-retoken").await;
    channel(&env, "msp_a", None).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect("msp_a", &org.partner_key).await.status, 201);
    let new_key = env.sim.regenerate_key(&org.organization_id).unwrap();
    // The real adapter over the simulator, with a slow token check.
    let inner: Arc<dyn psa_domain::ports::Psa> = Arc::new(psa_gradient::GradientPsa::new(
        env.platform.gradient.clone(),
        Arc::new(psa_store::DynamoServiceRegistry::new(
            env.local.dynamodb(),
            &env.tables.psa,
        )),
    ));
    env.platform.psas.set(
        ConnectorType::Gradient,
        Arc::new(SlowVerify {
            inner,
            delay: Duration::from_millis(1500),
        }),
    );
    env.rewire_api();

    let retoken = env.retoken("msp_a", &new_key);
    let delete = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        env.delete_connector("msp_a").await
    };
    let (r, d) = tokio::join!(retoken, delete);
    assert_eq!(d.status, 204, "{}", d.body);
    assert_eq!((r.status, r.code().as_str()), (404, "connector_not_found"));
    assert_eq!(
        env.token_secret_value("msp_a").await,
        None,
        "the re-token's late store was undone"
    );
    assert!(env.token_secret_names().await.is_empty());
}

#[tokio::test]
async fn a_connect_that_loses_a_race_with_a_delete_leaves_no_token() {
    let mut env = TestEnv::start("race-connect").await;
    channel(&env, "msp_a", None).await;
    let org = env.sim.create_organization("Acme MSP");
    let mut vault = FaultyVault::new(env.platform.vault.clone());
    vault.store_delay = Duration::from_millis(1500);
    env.platform.vault = Arc::new(vault);
    env.rewire_api();

    let connect = env.connect("msp_a", &org.partner_key);
    let delete = async {
        // The connector item exists as soon as the token check answered; its token does not yet.
        for _ in 0..50 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let r = env.delete_connector("msp_a").await;
            if r.status == 204 {
                return r;
            }
        }
        panic!("the connect never claimed the connector");
    };
    let (c, d) = tokio::join!(connect, delete);
    assert_eq!(d.status, 204);
    assert_eq!((c.status, c.code().as_str()), (404, "connector_not_found"));
    assert_eq!(env.token_secret_value("msp_a").await, None);
    assert!(env.token_secret_names().await.is_empty());
}

#[tokio::test]
async fn one_msp_rekeying_all_its_channels_is_its_own_business_not_a_vendor_key_fault() {
    logs::install();
    let env = TestEnv::start("one-msp").await;
    channel(&env, "root", None).await;
    let subs = ["root_s1", "root_s2", "root_s3"];
    for s in subs {
        channel(&env, s, Some("root")).await;
    }
    let mut orgs = Vec::new();
    for s in subs {
        let org = env.sim.create_organization(s);
        assert_eq!(env.connect(s, &org.partner_key).await.status, 201);
        orgs.push(org);
    }
    for org in &orgs {
        env.sim.regenerate_key(&org.organization_id).unwrap();
    }
    for s in subs {
        assert_eq!(env.sync_now(s).await.status, 202);
        env.drain().await;
    }
    for s in subs {
        let c = env.connector(s).await;
        assert_eq!(
            (c["status"].as_str(), c["statusReason"].as_str()),
            (Some("disconnected"), Some("token_rejected")),
            "{s}: {c}"
        );
        let runs = env.syncs(s).await;
        let run = &runs["items"][0];
        assert_eq!(run["status"], "token_rejected", "{s}: {run}");
        assert!(
            !run["reason"]
                .as_str()
                .unwrap_or_default()
                .contains("vendor key"),
            "{run}"
        );
    }
    let faults = env
        .metrics()
        .iter()
        .filter(|m| m.to_string().contains("VendorKeyFault"))
        .count();
    assert_eq!(faults, 0, "no vendor-key alarm for one MSP's own re-keying");
}

#[tokio::test]
async fn a_workspace_over_its_rate_is_refused_and_no_other_notices() {
    let mut env = TestEnv::start("rate").await;
    channel(&env, "noisy", None).await;
    channel(&env, "quiet", None).await;
    env.api.limiter = Arc::new(psa_http::limit::WorkspaceLimiter::new(
        psa_runtime::config::DEFAULT_API_WORKSPACE_RPS,
    ));
    let noisy = Claims::viewer("noisy");
    let quiet = Claims::viewer("quiet");
    let flood = futures::future::join_all(
        (0..60).map(|_| env.call("GET", "/v1/psa/services", Some(&noisy), None)),
    );
    let calm = futures::future::join_all(
        (0..10).map(|_| env.call("GET", "/v1/psa/services", Some(&quiet), None)),
    );
    let (flood, calm) = tokio::join!(flood, calm);
    let refused: Vec<_> = flood.iter().filter(|r| r.status == 429).collect();
    assert!(!refused.is_empty(), "60 requests at once are over 20/s");
    assert!(flood.iter().filter(|r| r.status == 200).count() >= 1);
    for r in &refused {
        assert_eq!(r.code(), "too_many_requests");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=2).contains(&wait), "{wait}");
    }
    assert!(
        calm.iter().all(|r| r.status == 200),
        "the quiet workspace is not affected: {:?}",
        calm.iter().map(|r| r.status).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn opaque_user_ids_sign_in_and_a_workspace_no_secret_can_name_is_400() {
    let env = TestEnv::start("identity").await;
    channel(&env, "msp_a", None).await;
    let org = env.sim.create_organization("Acme MSP");
    let mut claims = Claims::admin("msp_a");
    claims.sub = "auth0|65f0c1e2d3a4b5".into();
    let body = serde_json::json!({"type": "gradient", "apiToken": org.partner_key}).to_string();
    let r = env
        .call("POST", "/v1/psa/connectors", Some(&claims), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["createdBy"], "auth0|65f0c1e2d3a4b5");
    claims.sub = "google-oauth2|109348572093485720934".into();
    claims.role = "viewer".into();
    let r = env
        .call("GET", "/v1/psa/connectors/gradient", Some(&claims), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    claims.sub = "bad\u{7}bell".into();
    let r = env
        .call("GET", "/v1/psa/connectors/gradient", Some(&claims), None)
        .await;
    assert_eq!(r.status, 401);

    let colon = Claims::admin("tenant:42");
    let r = env
        .call("POST", "/v1/psa/connectors", Some(&colon), Some(&body))
        .await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_workspace"));
    assert!(env.token_secret_names().await.len() == 1);
}

#[tokio::test]
async fn the_connectors_api_answers_the_sync_routes_it_does_not_serve_with_404() {
    let msp = connected_msp("misroute", 3).await;
    let mut api = msp.env.api.clone();
    api.with_queue = None; // as `psa_runtime::connectors_api` wires it: no queue
    for (method, path) in [
        ("POST", "/v1/psa/connectors/gradient/sync"),
        (
            "POST",
            "/v1/psa/connectors/gradient/syncs/20261206T050000.000Z-x/release",
        ),
    ] {
        let r = harness::call_app(&api, method, path, Some(&Claims::admin(CH)), None).await;
        assert_eq!((r.status, r.code().as_str()), (404, "not_found"), "{path}");
    }
}

#[tokio::test]
async fn a_re_token_with_the_connectors_own_token_changes_nothing() {
    let msp = connected_msp("same-token", 3).await;
    let env = &msp.env;
    let key = env.sim.organization(&msp.org).unwrap().partner_key;
    let before = env.connector(CH).await;
    let audit_before = env
        .call("GET", "/v1/psa/audit", Some(&Claims::admin(CH)), None)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .len();
    let r = env.retoken(CH, &key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["updatedAt"], before["updatedAt"]);
    let audit_after = env
        .call("GET", "/v1/psa/audit", Some(&Claims::admin(CH)), None)
        .await
        .json()["items"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        audit_before, audit_after,
        "nothing happened, nothing audited"
    );
}

#[tokio::test]
async fn settings_changes_are_limited_per_workspace() {
    let msp = connected_msp("settings-limit", 3).await;
    let env = &msp.env;
    let admin = Claims::admin(CH);
    let mut codes = Vec::new();
    for i in 0..32u32 {
        let body = serde_json::json!({"settings": {"guardDropPercent": 10 + i}}).to_string();
        let r = env
            .call(
                "PATCH",
                "/v1/psa/connectors/gradient",
                Some(&admin),
                Some(&body),
            )
            .await;
        codes.push((r.status, r.code()));
    }
    assert!(codes[..30].iter().all(|(s, _)| *s == 200), "{codes:?}");
    assert_eq!(codes[30], (429, "too_many_attempts".to_owned()));
    // Asking for what is already set changes nothing and counts nothing.
    let body = serde_json::json!({"settings": {"guardDropPercent": 39}}).to_string();
    let r = env
        .call(
            "PATCH",
            "/v1/psa/connectors/gradient",
            Some(&admin),
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Counts DynamoDB requests of one client.
#[derive(Debug, Default)]
struct Requests(Arc<AtomicU64>);

impl aws_sdk_dynamodb::config::Intercept for Requests {
    fn name(&self) -> &'static str {
        "count-requests"
    }
    fn read_before_transmit(
        &self,
        _: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _: &aws_sdk_dynamodb::config::RuntimeComponents,
        _: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_sdk_dynamodb::error::BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn a_filtered_readings_page_costs_its_size_not_the_runs() {
    let env = TestEnv::start("readings-cost").await;
    let n = Arc::new(AtomicU64::new(0));
    let conf = aws_sdk_dynamodb::config::Builder::from(&env.local.sdk)
        .interceptor(Requests(n.clone()))
        .build();
    let store = DynamoSync::new(aws_sdk_dynamodb::Client::from_conf(conf), &env.tables.psa);
    let c = ConnectorRef {
        workspace: WorkspaceId::parse("msp_big").unwrap(),
        kind: ConnectorType::Gradient,
        incarnation: "inc1".into(),
    };
    let run = RunId::parse("20261206T050000.000Z-big").unwrap();
    let readings: Vec<RunReading> = (0..2000)
        .map(|i| RunReading {
            account_id: format!("acc{:04}", i / 4),
            account_name: "Acme".into(),
            service: format!("svc{}", i % 4),
            unit: Unit::ProtectedUsers,
            value: i,
            previous: None,
            outcome: if i % 500 == 7 {
                Outcome::Unmapped
            } else {
                Outcome::Posted
            },
            reason: None,
        })
        .collect();
    store.put_readings(&c, &run, &readings).await.unwrap();

    let page = |outcome, limit, cursor: Option<String>| {
        let (store, c, run, n) = (&store, &c, &run, n.clone());
        async move {
            let before = n.load(Ordering::SeqCst);
            let p = store
                .readings_page(c, run, outcome, limit, cursor.as_deref())
                .await
                .unwrap();
            (p, n.load(Ordering::SeqCst) - before)
        }
    };
    // No reading failed: one request answers so (it walked 2,000 readings before).
    let (p, requests) = page(Some(Outcome::Failed), 1, None).await;
    assert!(p.items.is_empty() && p.next.is_none());
    assert_eq!(requests, 1);
    // Four unmapped among 2,000: pages of one, each one request, in reading order.
    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let (p, requests) = page(Some(Outcome::Unmapped), 1, cursor).await;
        assert_eq!(requests, 1);
        got.extend(p.items);
        cursor = p.next;
        if cursor.is_none() {
            break;
        }
    }
    let want: Vec<_> = readings
        .iter()
        .filter(|r| r.outcome == Outcome::Unmapped)
        .cloned()
        .collect();
    assert_eq!(got, want);
    // Posted readings have no index entry: one Query of them, one of the index (runs recorded
    // before that).
    let (p, requests) = page(Some(Outcome::Posted), 100, None).await;
    assert_eq!((p.items.len(), requests), (100, 2));
    assert!(p.items.iter().all(|r| r.outcome == Outcome::Posted));
    let (p2, requests) = page(Some(Outcome::Posted), 100, p.next.clone()).await;
    assert_eq!((p2.items.len(), requests), (100, 2));
    assert!(p2.items[0].account_id >= p.items[99].account_id);
    // A cursor of the filtered list is not one of another filter's.
    assert!(
        store
            .readings_page(&c, &run, Some(Outcome::Unmapped), 1, p.next.as_deref())
            .await
            .is_err()
    );
    // Unfiltered: one Query of reading items, one of posted ones and one of packed `unchanged`
    // readings (two around a cursor).
    let (p, requests) = page(None, 100, None).await;
    assert_eq!((p.items.len(), requests), (100, 3));
    let (p, requests) = page(None, 100, p.next).await;
    assert_eq!((p.items.len(), requests), (100, 4));
}

/// The deadline arithmetic on the real worker handler: counts answered in 15 s, the production
/// client (10 s per attempt, 4 attempts), an invocation with 45 s. Before every call was bounded,
/// one post took ~41 s (4 × 10 s + backoff) and the invocation ended past what Lambda leaves it.
#[tokio::test]
async fn no_gradient_call_outlives_the_invocation() {
    use harness::fixture::{expected_pairs, fixture, seed, service_ids};
    let env = TestEnv::start_with(
        "deadline",
        gradient_sim::SimConfig::default(),
        psa_gradient::GradientConfig::new(String::new()),
        80,
    )
    .await;
    let children = fixture(3);
    seed(&env, &children).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    env.sim.set_faults(gradient_sim::Faults {
        count_latency_ms: 15_000,
        ..Default::default()
    });
    let r = env.sync_now(CH).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run_id = r.json()["runId"].as_str().unwrap().to_owned();

    let batch = env.receive(120).await;
    assert_eq!(batch.len(), 1);
    let worker = env.worker();
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(45),
        sync_worker::handle(
            &worker,
            harness::sqs_event(&batch),
            "req-deadline",
            started + Duration::from_secs(45),
        ),
    )
    .await
    .expect("the invocation ended before its deadline");
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(40),
        "the worker must leave Lambda at least 5 s of its 45 s; it took {took:?}"
    );
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    env.local
        .sqs()
        .delete_message()
        .queue_url(&env.queue_url)
        .receipt_handle(batch[0].receipt_handle().unwrap())
        .send()
        .await
        .unwrap();
    let run = env.run(CH, &run_id).await;
    assert_eq!(
        run["status"], "running",
        "not finished, not abandoned: {run}"
    );
    assert_eq!(
        run["counts"]["failed"], 0,
        "a cut post is no failure: {run}"
    );
    let jobs = env.queued_jobs().await;
    assert_eq!(jobs.len(), 1, "a continuation carries the rest: {jobs:?}");

    // Counts answer promptly again: the continuation finishes the run, nothing lost.
    env.sim.clear_faults();
    assert!(env.drain().await >= 1);
    let run = env.run(CH, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let want = expected_pairs(&children);
    assert_eq!(run["counts"]["posted"], want.len() as u64, "{run}");
    let ids = service_ids(&env).await;
    let held = env.sim.organization(&org.organization_id).unwrap();
    for ((acc, key), value) in want {
        assert_eq!(
            held.count(&acc, &ids[&key]).map(|c| c.unit_count),
            Some(value),
            "{acc}/{key}"
        );
    }
}

#[tokio::test]
async fn token_secrets_are_tagged_and_encrypted_with_the_configured_key() {
    use psa_domain::ports::TokenVault;
    let env = TestEnv::start("kms").await;
    let vault = psa_secrets::SecretsManagerVault::new(env.local.secrets(), &env.secret_prefix)
        .with_kms_key(Some("alias/coro-psa-tokens".into()));
    let ws = WorkspaceId::parse("msp_kms").unwrap();
    let token = psa_domain::ApiToken::parse("partner-token-0123456789").unwrap();
    vault
        .store(&ws, ConnectorType::Gradient, &token)
        .await
        .unwrap();
    let d = env
        .local
        .secrets()
        .describe_secret()
        .secret_id(format!("{}msp_kms", env.secret_prefix))
        .send()
        .await
        .unwrap();
    assert_eq!(d.kms_key_id(), Some("alias/coro-psa-tokens"));
    let tags: Vec<(&str, &str)> = d
        .tags()
        .iter()
        .map(|t| (t.key().unwrap_or(""), t.value().unwrap_or("")))
        .collect();
    assert!(
        tags.contains(&psa_secrets::TOKEN_SECRET_TAG),
        "the IAM condition's tag: {tags:?}"
    );
}

/// Three different MSPs re-key at once while a fourth MSP's token keeps working: the suspected
/// vendor-key fault is checked with the fourth's recently accepted token, which Gradient still
/// accepts — so the three are disconnected as their own business and nobody is paged.
#[tokio::test]
async fn a_suspected_vendor_key_fault_is_checked_with_a_recently_accepted_token() {
    logs::install();
    let env = TestEnv::start("key-check").await;
    let msps = ["msp_k1", "msp_k2", "msp_k3", "msp_ok"];
    let mut orgs = Vec::new();
    for m in msps {
        channel(&env, m, None).await;
        let org = env.sim.create_organization(m);
        assert_eq!(env.connect(m, &org.partner_key).await.status, 201);
        orgs.push(org);
    }
    // The healthy MSP syncs: its token is the deployment's last accepted one.
    assert_eq!(env.sync_now("msp_ok").await.status, 202);
    env.drain().await;
    for org in &orgs[..3] {
        env.sim.regenerate_key(&org.organization_id).unwrap();
    }
    for m in &msps[..3] {
        assert_eq!(env.sync_now(m).await.status, 202);
        env.drain().await;
    }
    for m in &msps[..3] {
        let c = env.connector(m).await;
        assert_eq!(
            (c["status"].as_str(), c["statusReason"].as_str()),
            (Some("disconnected"), Some("token_rejected")),
            "{m}: {c}"
        );
    }
    let faults = env
        .metrics()
        .iter()
        .filter(|m| m.to_string().contains("VendorKeyFault"))
        .count();
    assert_eq!(faults, 0, "the vendor key works: no alarm");
}
