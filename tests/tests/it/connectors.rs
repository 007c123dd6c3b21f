//! Connector lifecycle against DynamoDB Local, moto and the Gradient simulator, through the real
//! HTTP handler with real API Gateway v2 payloads.

use harness::{Claims, RESPONSES, TestEnv, logs, workspace};
use std::collections::BTreeSet;

const CH: &str = "msp_channel";

/// A channel with three child workspaces, one inactive, one regular workspace that is not managed.
async fn seed_small_msp(env: &TestEnv, channel: &str) {
    env.seed_workspaces(&[
        workspace(
            channel,
            None,
            "channel",
            "Acme MSP",
            "subscription",
            &[],
            0,
            0,
        ),
        workspace(
            &format!("{channel}_c1"),
            Some(channel),
            "child",
            "Bakery",
            "subscription",
            &["EDR", "EMAIL_SECURITY"],
            12,
            9,
        ),
        workspace(
            &format!("{channel}_c2"),
            Some(channel),
            "child",
            "Dentist",
            "trial",
            &["CLOUD_SECURITY"],
            4,
            2,
        ),
        workspace(
            &format!("{channel}_c3"),
            Some(channel),
            "child",
            "Old Shop",
            "inactive",
            &["EDR"],
            5,
            5,
        ),
    ])
    .await;
}

fn account_ids(env: &TestEnv, org: &str) -> BTreeSet<String> {
    env.sim
        .organization(org)
        .expect("org")
        .accounts
        .iter()
        .map(|a| a.id.clone())
        .collect()
}

#[tokio::test]
async fn connect_verifies_stores_and_sets_up_gradient() {
    let env = TestEnv::start("connect").await;
    seed_small_msp(&env, CH).await;
    let org = env.sim.create_organization("Acme MSP");

    let resp = env.connect(CH, &org.partner_key).await;
    assert_eq!(resp.status, 201, "{}", resp.body);
    assert_eq!(
        resp.header("location").as_deref(),
        Some("/v1/psa/connectors/gradient")
    );
    let c = resp.json();
    assert_eq!(c["id"], "gradient");
    assert_eq!(c["type"], "gradient");
    assert_eq!(c["workspaceId"], CH);
    assert_eq!(c["status"], "connected");
    assert!(c.get("statusReason").is_none(), "{c}");
    assert_eq!(c["createdBy"], format!("user-of-{CH}"));
    let hint = c["tokenHint"].as_str().unwrap();
    assert!(hint.starts_with('…') && org.partner_key.ends_with(hint.trim_start_matches('…')));

    // The secret holds the token; Gradient holds status pending, every service once, the accounts.
    assert_eq!(
        env.token_secret_value(CH).await.as_deref(),
        Some(org.partner_key.as_str())
    );
    let state = env.sim.state();
    let o = env.sim.organization(&org.organization_id).unwrap();
    assert_eq!(o.status, "pending");
    assert_eq!(state.vendor.services.len(), 14);
    let names: BTreeSet<_> = state
        .vendor
        .services
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert!(names.contains("Coro Email Security"));
    let edr = state
        .vendor
        .services
        .iter()
        .find(|s| s.name == "Coro Endpoint Detection and Response (EDR)")
        .unwrap();
    assert!(
        edr.description.contains("Billed per protected device"),
        "{}",
        edr.description
    );
    // Trial and subscription children are accounts; the inactive one and the channel are not.
    assert_eq!(
        account_ids(&env, &org.organization_id),
        BTreeSet::from([format!("{CH}_c1"), format!("{CH}_c2")])
    );
    let bakery = o
        .accounts
        .iter()
        .find(|a| a.id == format!("{CH}_c1"))
        .unwrap();
    assert_eq!(bakery.name, "Bakery");
    assert_eq!(
        bakery.description.as_deref(),
        Some("msp_channel_c1.example.com")
    );

    // GET and list show the same connector.
    let got = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["tokenHint"], c["tokenHint"]);
    let list = env
        .call("GET", "/v1/psa/connectors", Some(&Claims::viewer(CH)), None)
        .await;
    assert_eq!(list.json()["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn authorization_matrix_follows_the_caller_contract() {
    let env = TestEnv::start("authz").await;
    seed_small_msp(&env, CH).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    let other_org = env.sim.create_organization("Other MSP");

    let token_body = serde_json::json!({"apiToken": org.partner_key}).to_string();
    let create_body =
        serde_json::json!({"type": "gradient", "apiToken": other_org.partner_key}).to_string();
    let run = "20261124T050000.000Z-x";
    // (route, method, path, body, is_write)
    let routes: Vec<(&str, &str, String, Option<String>, bool)> = vec![
        ("list", "GET", "/v1/psa/connectors".into(), None, false),
        (
            "create",
            "POST",
            "/v1/psa/connectors".into(),
            Some(create_body.clone()),
            true,
        ),
        (
            "get",
            "GET",
            "/v1/psa/connectors/gradient".into(),
            None,
            false,
        ),
        (
            "token",
            "PUT",
            "/v1/psa/connectors/gradient/token".into(),
            Some(token_body.clone()),
            true,
        ),
        (
            "sync",
            "POST",
            "/v1/psa/connectors/gradient/sync".into(),
            None,
            true,
        ),
        (
            "syncs",
            "GET",
            "/v1/psa/connectors/gradient/syncs".into(),
            None,
            false,
        ),
        (
            "run",
            "GET",
            format!("/v1/psa/connectors/gradient/syncs/{run}"),
            None,
            false,
        ),
        ("services", "GET", "/v1/psa/services".into(), None, false),
        (
            "delete",
            "DELETE",
            "/v1/psa/connectors/gradient".into(),
            None,
            true,
        ),
    ];
    let child = Claims::new("msp_channel_c1", "child", "admin");
    let regular = Claims::new("direct_customer", "regular", "admin");
    let other_channel = Claims::admin("other_channel");
    let viewer = Claims::viewer(CH);
    let admin = Claims::admin(CH);

    for (name, method, path, body, is_write) in &routes {
        let call = |claims: Option<Claims>| {
            let (method, path, body) = (method.to_string(), path.clone(), body.clone());
            let env = &env;
            async move {
                env.call(&method, &path, claims.as_ref(), body.as_deref())
                    .await
            }
        };
        let r = call(None).await;
        assert_eq!(
            (r.status, r.code()),
            (401, "unauthenticated".into()),
            "{name} without claims"
        );
        let r = call(Some(child.clone())).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "not_channel_workspace".into()),
            "{name} as child"
        );
        let r = call(Some(regular.clone())).await;
        assert_eq!(
            (r.status, r.code()),
            (403, "not_channel_workspace".into()),
            "{name} as regular"
        );

        // Another channel workspace never sees this connector: it has none of its own.
        let another = if *name == "create" {
            Claims::admin("third_channel")
        } else {
            other_channel.clone()
        };
        let r = call(Some(another)).await;
        let expected = match *name {
            "list" => 200,
            "services" => 200,
            "create" => 201, // creates its *own* connector, not this one
            _ => 404,
        };
        assert_eq!(r.status, expected, "{name} as another channel: {}", r.body);
        if expected == 404 {
            assert_eq!(r.code(), "connector_not_found", "{name}");
        }
        if *name == "list" {
            assert_eq!(r.json()["items"], serde_json::json!([]));
        }

        let r = call(Some(viewer.clone())).await;
        if *is_write {
            assert_eq!(
                (r.status, r.code()),
                (403, "admin_required".into()),
                "{name} as viewer"
            );
        } else if *name == "run" {
            // Allowed to read, but this run id does not exist.
            assert_eq!(
                (r.status, r.code()),
                (404, "run_not_found".into()),
                "{name} as viewer"
            );
        } else {
            assert_eq!(r.status, 200, "{name} as viewer: {}", r.body);
        }

        let r = call(Some(admin.clone())).await;
        let expected = match *name {
            "list" | "get" | "token" | "services" => 200,
            "create" => 409,
            "delete" => 204,
            "sync" => 202,
            "syncs" => 200,
            "run" => 404,
            other => unreachable!("{other}"),
        };
        assert_eq!(r.status, expected, "{name} as admin: {}", r.body);
    }
    // The other channel's connect created its own connector with its own token; ours is gone (deleted last).
    assert_eq!(
        env.token_secret_value("third_channel").await.as_deref(),
        Some(other_org.partner_key.as_str())
    );
    assert_eq!(env.token_secret_value("other_channel").await, None);
    assert_eq!(env.token_secret_value(CH).await, None);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let env = TestEnv::start("badinput").await;
    seed_small_msp(&env, CH).await;
    let org = env.sim.create_organization("Acme MSP");
    let admin = Claims::admin(CH);
    let huge = format!(
        r#"{{"type":"gradient","apiToken":"{}"}}"#,
        "x".repeat(1024 * 1024)
    );
    let rejected =
        serde_json::json!({"type": "gradient", "apiToken": "not-a-gradient-key"}).to_string();
    let cases: Vec<(&str, Option<String>, u16, &str)> = vec![
        (
            "malformed JSON",
            Some(r#"{"type": "gradient", "apiToken": "#.into()),
            400,
            "invalid_body",
        ),
        (
            "wrong type",
            Some(r#"{"type": "gradient", "apiToken": 12345}"#.into()),
            400,
            "invalid_body",
        ),
        (
            "body is a string",
            Some(format!("{:?}", org.partner_key)),
            400,
            "invalid_body",
        ),
        (
            "unknown field",
            Some(format!(
                r#"{{"type":"gradient","apiToken":"{}","workspaceId":"x"}}"#,
                org.partner_key
            )),
            400,
            "invalid_body",
        ),
        (
            "missing token",
            Some(r#"{"type":"gradient"}"#.into()),
            400,
            "invalid_body",
        ),
        (
            "empty token",
            Some(r#"{"type":"gradient","apiToken":"   "}"#.into()),
            400,
            "invalid_token",
        ),
        (
            "token with spaces",
            Some(r#"{"type":"gradient","apiToken":"abc def"}"#.into()),
            400,
            "invalid_token",
        ),
        (
            "unsupported type",
            Some(format!(
                r#"{{"type":"autotask","apiToken":"{}"}}"#,
                org.partner_key
            )),
            400,
            "unsupported_connector_type",
        ),
        ("no body", None, 400, "invalid_body"),
        ("1 MiB body", Some(huge), 413, "payload_too_large"),
        (
            "token Gradient rejects",
            Some(rejected),
            422,
            "token_rejected",
        ),
    ];
    for (what, body, status, code) in cases {
        let r = env
            .call("POST", "/v1/psa/connectors", Some(&admin), body.as_deref())
            .await;
        assert_eq!(r.status, status, "{what}: {}", r.body);
        assert_eq!(r.code(), code, "{what}");
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{what}"
        );
        let p = r.json();
        assert_eq!(p["status"], status, "{what}");
        assert!(
            p["title"].is_string() && p["detail"].is_string() && p["type"].is_string(),
            "{what}: {p}"
        );
        assert!(
            !r.body.contains(&org.partner_key),
            "{what} echoed the token"
        );
        assert!(
            env.workspace_items().await.is_empty(),
            "{what} wrote an item"
        );
        assert!(
            env.token_secret_names().await.is_empty(),
            "{what} wrote a secret"
        );
    }
    // Nothing reached Gradient's state either: no status change, no services, no accounts.
    let o = env.sim.organization(&org.organization_id).unwrap();
    assert_eq!(o.status, "inactive");
    assert!(o.accounts.is_empty());

    // Non-JSON content type.
    let mut ev = harness::http_event(
        "POST",
        "/v1/psa/connectors",
        Some(&admin),
        Some("type=gradient"),
    );
    ev.headers_mut().insert(
        "content-type",
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    let r = psa_http::handle(&env.api, ev).await;
    assert_eq!(r.status(), 415);

    // Bad re-token input leaves the connector and its secret as they were.
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    let before = env.workspace_items().await;
    for (body, status) in [
        (r#"{"apiToken": "not-a-gradient-key"}"#.to_string(), 422),
        (r#"{"apiToken": ""}"#.to_string(), 400),
        (
            format!(r#"{{"apiToken":"{}","extra":1}}"#, org.partner_key),
            400,
        ),
        ("[1,2".to_string(), 400),
    ] {
        let r = env
            .call(
                "PUT",
                "/v1/psa/connectors/gradient/token",
                Some(&admin),
                Some(&body),
            )
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
    }
    assert_eq!(env.workspace_items().await, before);
    assert_eq!(
        env.token_secret_value(CH).await.as_deref(),
        Some(org.partner_key.as_str())
    );
}

#[tokio::test]
async fn gradient_unreachable_answers_503_and_writes_nothing() {
    let env = TestEnv::start("unreachable").await;
    let org = env.sim.create_organization("Acme MSP");
    env.sim.set_faults(gradient_sim::Faults {
        rate5xx: 1.0,
        ..Default::default()
    });
    let r = env.connect(CH, &org.partner_key).await;
    assert_eq!(
        (r.status, r.code()),
        (503, "gradient_unavailable".into()),
        "{}",
        r.body
    );
    assert_eq!(
        r.header("retry-after").as_deref(),
        Some("60"),
        "contract: with Retry-After"
    );
    env.sim.set_faults(gradient_sim::Faults {
        force_status: Some(403),
        ..Default::default()
    });
    let r = env.connect(CH, &org.partner_key).await;
    assert_eq!(
        (r.status, r.code()),
        (502, "gradient_refused".into()),
        "{}",
        r.body
    );
    assert!(env.workspace_items().await.is_empty());
    assert!(env.token_secret_names().await.is_empty());
}

#[tokio::test]
async fn ten_concurrent_connects_make_one_connector_and_one_secret() {
    let env = TestEnv::start("race").await;
    seed_small_msp(&env, CH).await;
    let org = env.sim.create_organization("Acme MSP");
    let results =
        futures::future::join_all((0..10).map(|_| env.connect(CH, &org.partner_key))).await;
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(
        statuses,
        [vec![201], vec![409; 9]].concat(),
        "{:?}",
        results.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert!(
        results
            .iter()
            .filter(|r| r.status == 409)
            .all(|r| r.code() == "connector_exists")
    );
    assert_eq!(env.token_secret_names().await.len(), 1);
    let connectors = env
        .workspace_items()
        .await
        .into_iter()
        .filter(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|s| s.starts_with("CONNECTOR#"))
        })
        .count();
    assert_eq!(connectors, 1);
}

#[tokio::test]
async fn two_msps_connecting_at_once_create_each_service_once() {
    let env = TestEnv::start("services").await;
    seed_small_msp(&env, "msp_a").await;
    seed_small_msp(&env, "msp_b").await;
    let a = env.sim.create_organization("MSP A");
    let b = env.sim.create_organization("MSP B");
    let (ra, rb) = tokio::join!(
        env.connect("msp_a", &a.partner_key),
        env.connect("msp_b", &b.partner_key)
    );
    assert_eq!(
        (ra.status, rb.status),
        (201, 201),
        "{} {}",
        ra.body,
        rb.body
    );
    let services = env.sim.state().vendor.services;
    let names: Vec<_> = services.iter().map(|s| s.name.clone()).collect();
    let unique: BTreeSet<_> = names.iter().cloned().collect();
    assert_eq!(names.len(), 14, "{names:?}");
    assert_eq!(unique.len(), 14);
    // Both MSPs got their own accounts.
    assert_eq!(account_ids(&env, &a.organization_id).len(), 2);
    assert_eq!(account_ids(&env, &b.organization_id).len(), 2);
    // A third connect finds every service in the registry and creates none.
    env.sim.clear_requests();
    seed_small_msp(&env, "msp_c").await;
    let c = env.sim.create_organization("MSP C");
    assert_eq!(env.connect("msp_c", &c.partner_key).await.status, 201);
    assert!(
        env.sim
            .requests()
            .requests
            .iter()
            .all(|r| !r.path.contains("/service")),
        "services were touched again"
    );
    assert_eq!(env.sim.state().vendor.services.len(), 14);
}

#[tokio::test]
async fn retoken_recreates_wiped_accounts_and_renames_changed_workspaces() {
    let env = TestEnv::start("retoken").await;
    seed_small_msp(&env, CH).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);

    // The MSP disconnects on the Synthesize side (all accounts deleted) and regenerates its key;
    // meanwhile a workspace is renamed and a new one is added on the Coro side.
    assert!(env.sim.wipe_accounts(&org.organization_id));
    let new_key = env.sim.regenerate_key(&org.organization_id).unwrap();
    env.seed_workspaces(&[
        workspace(
            &format!("{CH}_c2"),
            Some(CH),
            "child",
            "Dentist & Co",
            "subscription",
            &["CLOUD_SECURITY"],
            4,
            2,
        ),
        workspace(
            &format!("{CH}_c4"),
            Some(CH),
            "child",
            "New Client",
            "trial",
            &[],
            0,
            0,
        ),
    ])
    .await;

    // The old token no longer works.
    let r = env.retoken(CH, &org.partner_key).await;
    assert_eq!((r.status, r.code()), (422, "token_rejected".into()));

    let r = env.retoken(CH, &new_key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "connected");
    assert_eq!(
        env.token_secret_value(CH).await.as_deref(),
        Some(new_key.as_str())
    );
    let o = env.sim.organization(&org.organization_id).unwrap();
    let names: BTreeSet<_> = o
        .accounts
        .iter()
        .map(|a| (a.id.clone(), a.name.clone()))
        .collect();
    assert_eq!(
        names,
        BTreeSet::from([
            (format!("{CH}_c1"), "Bakery".to_string()),
            (format!("{CH}_c2"), "Dentist & Co".to_string()),
            (format!("{CH}_c4"), "New Client".to_string()),
        ])
    );

    // A rename without a wipe is a PATCH of the existing account.
    env.seed_workspaces(&[workspace(
        &format!("{CH}_c1"),
        Some(CH),
        "child",
        "Bakery Ltd",
        "subscription",
        &["EDR"],
        12,
        9,
    )])
    .await;
    env.sim.clear_requests();
    // (Another key: the connector's own token again would change nothing.)
    let third_key = env.sim.add_key(&org.organization_id).unwrap();
    assert_eq!(env.retoken(CH, &third_key).await.status, 200);
    let patched: Vec<_> = env
        .sim
        .requests()
        .requests
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/accounts/"))
        .collect();
    assert_eq!(patched.len(), 1, "{patched:?}");
    assert!(patched[0].path.ends_with(&format!("{CH}_c1")));
    let o = env.sim.organization(&org.organization_id).unwrap();
    assert_eq!(
        o.accounts
            .iter()
            .find(|a| a.id == format!("{CH}_c1"))
            .unwrap()
            .name,
        "Bakery Ltd"
    );
}

#[tokio::test]
async fn delete_sets_inactive_removes_secret_and_item_then_connect_works_again() {
    let env = TestEnv::start("delete").await;
    seed_small_msp(&env, CH).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    let r = env
        .call(
            "DELETE",
            "/v1/psa/connectors/gradient",
            Some(&Claims::admin(CH)),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(
        env.sim.organization(&org.organization_id).unwrap().status,
        "inactive"
    );
    assert!(env.token_secret_names().await.is_empty());
    // Only the audit trail outlives the connector.
    let left: Vec<String> = env
        .workspace_items()
        .await
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
        .filter(|sk| !sk.starts_with("AUDIT#"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let r = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient",
            Some(&Claims::admin(CH)),
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (404, "connector_not_found".into()));
    let r = env
        .call(
            "DELETE",
            "/v1/psa/connectors/gradient",
            Some(&Claims::admin(CH)),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    // The secret name is free again at once (no recovery window blocks it).
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    assert_eq!(env.token_secret_names().await.len(), 1);
}

#[tokio::test]
async fn subchannels_are_followed_unless_they_have_their_own_connector() {
    let env = TestEnv::start("subchannel").await;
    env.seed_workspaces(&[
        workspace("top", None, "channel", "Top MSP", "subscription", &[], 0, 0),
        workspace(
            "top_c1",
            Some("top"),
            "child",
            "Direct",
            "subscription",
            &["EDR"],
            1,
            1,
        ),
        workspace(
            "sub",
            Some("top"),
            "channel",
            "Sub MSP",
            "subscription",
            &[],
            0,
            0,
        ),
        workspace(
            "sub_c1",
            Some("sub"),
            "child",
            "Nested",
            "subscription",
            &["EDR"],
            1,
            1,
        ),
        workspace(
            "sub2",
            Some("top"),
            "channel",
            "Own PSA",
            "subscription",
            &[],
            0,
            0,
        ),
        workspace(
            "sub2_c1",
            Some("sub2"),
            "child",
            "Theirs",
            "subscription",
            &["EDR"],
            1,
            1,
        ),
        workspace(
            "top_r",
            Some("top"),
            "regular",
            "Odd",
            "subscription",
            &["EDR"],
            1,
            1,
        ),
    ])
    .await;
    let own = env.sim.create_organization("Sub2 MSP");
    assert_eq!(env.connect("sub2", &own.partner_key).await.status, 201);
    let org = env.sim.create_organization("Top MSP");
    assert_eq!(env.connect("top", &org.partner_key).await.status, 201);
    assert_eq!(
        account_ids(&env, &org.organization_id),
        BTreeSet::from(["sub_c1".to_string(), "top_c1".to_string()])
    );
    assert_eq!(
        account_ids(&env, &own.organization_id),
        BTreeSet::from(["sub2_c1".to_string()])
    );
}

#[tokio::test]
async fn services_route_lists_the_catalogue_with_units() {
    let env = TestEnv::start("catalogue").await;
    let r = env
        .call("GET", "/v1/psa/services", Some(&Claims::viewer(CH)), None)
        .await;
    assert_eq!(r.status, 200);
    let items = r.json()["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 14);
    let edr = items.iter().find(|i| i["key"] == "EDR").unwrap();
    assert_eq!(edr["unit"], "protected_devices");
    let email = items.iter().find(|i| i["key"] == "EMAIL_SECURITY").unwrap();
    assert_eq!(email["unit"], "protected_users");
}

/// The token never appears in a response body, an error body, a DynamoDB item or a log line.
#[tokio::test]
async fn the_token_never_leaks() {
    let env = TestEnv::start("leak").await;
    seed_small_msp(&env, CH).await;
    let org = env.sim.create_organization("Leak MSP");
    let admin = Claims::admin(CH);
    // Exercise every path a token takes: rejected, malformed, accepted, re-token, read, delete.
    let tokens = [org.partner_key.clone()];
    env.call(
        "POST",
        "/v1/psa/connectors",
        Some(&admin),
        Some(&format!(
            r#"{{"type":"gradient","apiToken":"{}","x":1}}"#,
            org.partner_key
        )),
    )
    .await;
    env.call(
        "POST",
        "/v1/psa/connectors",
        Some(&admin),
        Some(&format!("{:?}", org.partner_key)),
    )
    .await;
    env.call(
        "POST",
        "/v1/psa/connectors",
        Some(&admin),
        Some(&format!(
            r#"{{"type":"gradient","apiToken":["{}"]}}"#,
            org.partner_key
        )),
    )
    .await;
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    let new_key = env.sim.regenerate_key(&org.organization_id).unwrap();
    assert_eq!(env.retoken(CH, &org.partner_key).await.status, 422);
    assert_eq!(env.retoken(CH, &new_key).await.status, 200);
    env.call("GET", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    let items = env.psa_items().await;
    assert!(!items.is_empty());
    env.sim.set_faults(gradient_sim::Faults {
        rate5xx: 1.0,
        ..Default::default()
    });
    assert_eq!(env.retoken(CH, &new_key).await.status, 503);
    env.sim.clear_faults();
    assert_eq!(
        env.call("DELETE", "/v1/psa/connectors/gradient", Some(&admin), None)
            .await
            .status,
        204
    );

    let logs = logs::captured();
    assert!(
        logs.contains("request refused"),
        "log capture is not working"
    );
    let responses = RESPONSES.lock().unwrap().join("\n");
    let items_text = format!("{items:?}");
    for t in tokens.iter().chain([&new_key]) {
        assert!(
            !responses.contains(t.as_str()),
            "a response carried the token"
        );
        assert!(!logs.contains(t.as_str()), "a log line carried the token");
        assert!(
            !items_text.contains(t.as_str()),
            "a DynamoDB item carried the token"
        );
        // Nor the GRADIENT-TOKEN header value built from it.
        let header = gradient_sim::gradient_token(&env.sim.vendor_key(), t);
        assert!(!logs.contains(&header) && !responses.contains(&header));
    }
    assert!(
        !logs.contains(&env.sim.vendor_key()),
        "a log line carried the vendor key"
    );
    let token = psa_domain::ApiToken::parse(&new_key).unwrap();
    assert!(!format!("{token:?}").contains(&new_key));
}
