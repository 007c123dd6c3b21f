//! Real-socket tests of the simulator (reqwest against a started server).

use gradient_sim::{
    ECHO_LARGE_AT, ECHO_LARGE_CUT, EchoShape, EchoToken, Faults, OrgState, Pair, RefusedAccount,
    RequestsReport, Service, SimConfig, SimHandle, SimState, Simulator, gradient_token,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

async fn sim() -> SimHandle {
    Simulator::start(SimConfig::default()).await.unwrap()
}

fn client() -> Client {
    Client::new()
}

fn url(sim: &SimHandle, path: &str) -> String {
    format!("{}/api/vendor-api{}", sim.base_url(), path)
}

async fn get(sim: &SimHandle, token: &str, path: &str) -> (StatusCode, Value) {
    let r = client()
        .get(url(sim, path))
        .header("Gradient-Token", token)
        .send()
        .await
        .unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn send(
    sim: &SimHandle,
    method: reqwest::Method,
    token: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = client()
        .request(method, url(sim, path))
        .header("GRADIENT-TOKEN", token);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap();
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn service(name: &str) -> Service {
    Service {
        id: String::new(),
        name: name.to_owned(),
        description: format!("{name} by Coro"),
        category: "security".to_owned(),
        subcategory: "endpoint detection and response (EDR)".to_owned(),
        support_article: None,
        support_contact: None,
    }
}

#[tokio::test]
async fn auth_good_wrong_vendor_wrong_partner_and_regenerated() {
    let sim = sim().await;
    let org = sim.create_organization("Acme MSP");
    let good = sim.token_for(&org.partner_key);

    let (s, body) = get(&sim, &good, "/organization").await;
    assert_eq!(s, 200);
    assert_eq!(body["organizationId"], org.organization_id.as_str());
    assert_eq!(body["name"], "Acme MSP");
    assert_eq!(body["vendorName"], "Coro");
    assert_eq!(body["status"], "inactive");
    assert!(body["lastSyncedAt"].is_null());

    let (s, body) = get(&sim, &good, "").await;
    assert_eq!(s, 200);
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["name"], "Coro");
    assert!(body["data"]["skus"].as_array().unwrap().is_empty());

    for bad in [
        gradient_token("other-vendor", &org.partner_key),
        gradient_token(&sim.vendor_key(), "nope"),
        "%%%not-base64".to_owned(),
        String::new(),
    ] {
        let (s, body) = get(&sim, &bad, "/organization").await;
        assert_eq!(s, 401, "{bad}");
        assert_eq!(body["statusCode"], 401);
        assert!(body["message"].is_string());
    }
    let r = client()
        .get(url(&sim, "/organization"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );

    let new_key = sim.regenerate_key(&org.organization_id).unwrap();
    assert_eq!(get(&sim, &good, "/organization").await.0, 401);
    assert_eq!(
        get(&sim, &sim.token_for(&new_key), "/organization").await.0,
        200
    );

    // Same through the admin route.
    let r: Value = client()
        .post(format!(
            "{}/_sim/organizations/{}/regenerate-key",
            sim.base_url(),
            org.organization_id
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let newer = r["partnerKey"].as_str().unwrap();
    assert_eq!(
        get(&sim, &sim.token_for(&new_key), "/organization").await.0,
        401
    );
    assert_eq!(
        get(&sim, &sim.token_for(newer), "/organization").await.0,
        200
    );
}

#[tokio::test]
async fn status_accounts_services_and_counts() {
    let sim = sim().await;
    // Organization through the admin API.
    let created: Value = client()
        .post(format!("{}/_sim/organizations", sim.base_url()))
        .json(&json!({"name": "Beta MSP"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org_id = created["organizationId"].as_str().unwrap().to_owned();
    let token = sim.token_for(created["partnerKey"].as_str().unwrap());
    use reqwest::Method as M;

    let (s, body) = send(&sim, M::PATCH, &token, "/organization/status/pending", None).await;
    assert_eq!(s, 200);
    assert_eq!(body["data"]["status"], "pending");
    let (s, body) = send(&sim, M::PATCH, &token, "/organization/status/Active", None).await;
    assert_eq!(s, 400);
    assert_eq!(body["statusCode"], 400);

    let (s, body) = send(
        &sim,
        M::POST,
        &token,
        "/service",
        Some(json!({"name": "EDR", "description": "d", "category": "security", "subcategory": "other"})),
    )
    .await;
    assert_eq!(s, 201);
    let svc = body["data"]["skus"][0]["id"].as_str().unwrap().to_owned();
    let (s, body) = get(&sim, &token, &format!("/service/{svc}")).await;
    assert_eq!(s, 200);
    assert_eq!(body["data"]["name"], "EDR");
    assert_eq!(get(&sim, &token, "/service/svc_999").await.0, 404);

    let (s, body) = send(
        &sim,
        M::POST,
        &token,
        "/organization/accounts",
        Some(json!([{"id": "ws-1", "name": "One"}, {"id": "ws-2", "name": "Two", "description": "x"}])),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(body.as_array().unwrap().len(), 2);
    let (s, body) = send(
        &sim,
        M::PATCH,
        &token,
        "/organization/accounts/ws-1",
        Some(json!({"name": "Uno"})),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(body["name"], "Uno");
    let (s, _) = send(
        &sim,
        M::PATCH,
        &token,
        "/organization/accounts/ws-9",
        Some(json!({"name": "X"})),
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = send(
        &sim,
        M::POST,
        &token,
        "/organization/accounts",
        Some(json!({"id": "not-an-array"})),
    )
    .await;
    assert_eq!(s, 400);

    // Unmapped → 404 (recorded), mapped → 201.
    let count = |n: Value| Some(json!({"accountId": "ws-1", "unitCount": n}));
    let path = format!("/service/{svc}/count");
    let (s, body) = send(&sim, M::POST, &token, &path, count(json!(5))).await;
    assert_eq!(s, 404);
    assert_eq!(body["statusCode"], 404);
    assert!(sim.set_mappings(&org_id, &[Pair::new("ws-1", &svc)], true));
    let (s, body) = send(
        &sim,
        M::POST,
        &token,
        &format!("{path}?no_build=true"),
        count(json!(5)),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(body["status"], "success");
    let (s, _) = send(&sim, M::POST, &token, &path, count(json!(7))).await;
    assert_eq!(s, 201);
    for bad in [json!(-1), json!(1.5), json!("3")] {
        let (s, _) = send(&sim, M::POST, &token, &path, count(bad)).await;
        assert_eq!(s, 400);
    }
    let (s, _) = send(
        &sim,
        M::POST,
        &token,
        "/service/svc_999/count",
        count(json!(1)),
    )
    .await;
    assert_eq!(s, 404);

    let state: SimState = client()
        .get(format!("{}/_sim/state", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let org = state
        .organizations
        .iter()
        .find(|o| o.organization_id == org_id)
        .unwrap();
    assert_eq!(org.status, "active", "first usage activates a pending org");
    assert!(org.last_synced_at.is_some());
    let rec = org.count("ws-1", &svc).unwrap();
    assert_eq!(rec.unit_count, 7);
    assert_eq!(rec.history.len(), 2);
    assert!(rec.history[0].no_build);
    assert!(!rec.history[1].no_build);
    assert_eq!(org.not_found_counts.len(), 2);
    assert_eq!(org.not_found_counts[0], Pair::new("ws-1", &svc));
    assert_eq!(org.accounts[0].name, "Uno");
}

#[tokio::test]
async fn duplicate_batch_is_409_and_nothing_applied() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    use reqwest::Method as M;
    let p = "/organization/accounts";
    let (s, _) = send(
        &sim,
        M::POST,
        &token,
        p,
        Some(json!([{"id": "a", "name": "A"}])),
    )
    .await;
    assert_eq!(s, 201);
    // Clash with an existing id.
    let (s, body) = send(
        &sim,
        M::POST,
        &token,
        p,
        Some(json!([{"id": "b", "name": "B"}, {"id": "a", "name": "A2"}])),
    )
    .await;
    assert_eq!(s, 409);
    assert_eq!(body["statusCode"], 409);
    // Duplicate inside the batch.
    let (s, _) = send(
        &sim,
        M::POST,
        &token,
        p,
        Some(json!([{"id": "c", "name": "C"}, {"id": "c", "name": "C"}])),
    )
    .await;
    assert_eq!(s, 409);
    let (s, body) = get(&sim, &token, p).await;
    assert_eq!(s, 200);
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a"]);
}

#[tokio::test]
async fn wipe_and_map_all() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let s1 = sim.create_service(service("EDR")).id;
    let s2 = sim.create_service(service("Email")).id;
    assert_eq!((s1.as_str(), s2.as_str()), ("svc_1", "svc_2"));
    let (s, _) = send(
        &sim,
        reqwest::Method::POST,
        &token,
        "/organization/accounts",
        Some(json!([{"id": "a", "name": "A"}, {"id": "b", "name": "B"}])),
    )
    .await;
    assert_eq!(s, 201);
    let r = client()
        .post(format!(
            "{}/_sim/organizations/{}/mappings/all",
            sim.base_url(),
            org.organization_id
        ))
        .json(&json!({"except": [{"accountId": "b", "serviceId": s2}]}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let o = sim.organization(&org.organization_id).unwrap();
    assert_eq!(o.mappings.len(), 3);
    assert!(!o.mappings.contains(&Pair::new("b", &s2)));

    let r = client()
        .delete(format!(
            "{}/_sim/organizations/{}/accounts",
            sim.base_url(),
            org.organization_id
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let o = sim.organization(&org.organization_id).unwrap();
    assert!(o.accounts.is_empty());
    assert!(o.mappings.is_empty());
    let (s, body) = get(&sim, &token, "/organization/accounts").await;
    assert_eq!(s, 200);
    assert_eq!(body, json!([]));
}

#[tokio::test]
async fn rate_limit_429_and_window_stats() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let r = client()
        .put(format!("{}/_sim/config", sim.base_url()))
        .json(&json!({"maxRps": 10}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let c = client();
    let futs = (0..25).map(|_| {
        c.get(url(&sim, "/organization"))
            .header("GRADIENT-TOKEN", &token)
            .send()
    });
    let responses = futures_join(futs).await;
    let mut limited = 0;
    for r in responses {
        if r.status() == 429 {
            limited += 1;
            assert_eq!(r.headers()["retry-after"], "1");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["statusCode"], 429);
            assert_eq!(
                body["message"],
                "Request limit reached (10 requests a second)"
            );
        } else {
            assert_eq!(r.status(), 200);
        }
    }
    assert_eq!(limited, 15);
    let report: RequestsReport = client()
        .get(format!("{}/_sim/requests", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report.stats.total, 25);
    assert_eq!(report.stats.by_status[&429], 15);
    assert_eq!(report.stats.by_status[&200], 10);
    assert_eq!(report.stats.max_in_one_second_total, 25);
    assert_eq!(report.stats.max_in_one_second_accepted, 10);
    assert_eq!(
        report.requests[0].organization_id.as_deref(),
        Some(org.organization_id.as_str())
    );
    assert_eq!(report.requests[0].path, "/api/vendor-api/organization");
    // Admin calls are never limited or logged.
    assert!(sim.state().organizations.len() == 1);
    let r = client()
        .delete(format!("{}/_sim/requests", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(sim.requests().stats.total, 0);
}

async fn futures_join<F>(futs: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn faults_unauthorized_after_n_and_injection() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let r = client()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"unauthorizedAfter": 2}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&sim, &token, "/organization").await.0, 200);
    assert_eq!(get(&sim, &token, "/organization").await.0, 200);
    assert_eq!(get(&sim, &token, "/organization").await.0, 401);
    assert_eq!(get(&sim, &token, "").await.0, 401);
    // Admin routes are never faulted.
    assert_eq!(sim.state().faults.unauthorized_after, Some(0));
    let r = client()
        .delete(format!("{}/_sim/faults", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(get(&sim, &token, "/organization").await.0, 200);

    sim.set_faults(Faults {
        rate429: 1.0,
        retry_after_secs: Some(3),
        ..Faults::default()
    });
    let r = client()
        .get(url(&sim, "/organization"))
        .header("GRADIENT-TOKEN", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "3");

    sim.set_faults(Faults {
        rate5xx: 1.0,
        ..Faults::default()
    });
    let (s, body) = get(&sim, &token, "/organization").await;
    assert_eq!(s, 503);
    assert_eq!(body["statusCode"], 503);

    sim.set_faults(Faults {
        force_status: Some(403),
        ..Faults::default()
    });
    assert_eq!(get(&sim, &token, "/organization").await.0, 403);

    sim.set_faults(Faults {
        latency_ms: 150,
        ..Faults::default()
    });
    let t = std::time::Instant::now();
    assert_eq!(get(&sim, &token, "/organization").await.0, 200);
    assert!(t.elapsed() >= std::time::Duration::from_millis(150));

    // Bad fractions are refused.
    let r = client()
        .put(format!("{}/_sim/faults", sim.base_url()))
        .json(&json!({"rate429": 2.0}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn seeded_faults_are_repeatable() {
    async fn run() -> Vec<u16> {
        let sim = sim().await;
        let org = sim.create_organization("Acme");
        let token = sim.token_for(&org.partner_key);
        sim.set_faults(Faults {
            rate5xx: 0.5,
            ..Faults::default()
        });
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(get(&sim, &token, "/organization").await.0.as_u16());
        }
        out
    }
    let a = run().await;
    assert_eq!(a, run().await);
    assert!(a.contains(&503) && a.contains(&200));
}

#[tokio::test]
async fn unknown_route_and_shutdown() {
    let sim = sim().await;
    let base = sim.base_url();
    let r = client().get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["statusCode"], 404);
    sim.shutdown().await;
    let fresh = Client::builder().pool_max_idle_per_host(0).build().unwrap();
    assert!(
        fresh
            .get(format!("{base}/_sim/state"))
            .send()
            .await
            .is_err()
    );
}

fn admin(sim: &SimHandle, path: &str) -> String {
    format!("{}/_sim{}", sim.base_url(), path)
}

async fn admin_state(sim: &SimHandle, org_id: &str) -> OrgState {
    let state: SimState = client()
        .get(admin(sim, "/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    state
        .organizations
        .into_iter()
        .find(|o| o.organization_id == org_id)
        .unwrap()
}

#[tokio::test]
async fn descriptions_show_as_empty_strings_and_patch_keeps_or_clears() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    use reqwest::Method as M;
    let (s, body) = send(
        &sim,
        M::POST,
        &token,
        "/organization/accounts",
        Some(json!([
            {"id": "a", "name": "A"},
            {"id": "b", "name": "B", "description": "b.example"},
            {"id": "c", "name": "C", "description": ""},
        ])),
    )
    .await;
    assert_eq!(s, 201);
    assert_eq!(
        body,
        json!([
            {"id": "a", "name": "A", "description": ""},
            {"id": "b", "name": "B", "description": "b.example"},
            {"id": "c", "name": "C", "description": ""},
        ])
    );
    let (_, listed) = get(&sim, &token, "/organization/accounts").await;
    assert_eq!(listed, body);
    let o = sim.organization(&org.organization_id).unwrap();
    assert_eq!(o.accounts[0].description, None);
    assert_eq!(o.accounts[1].description.as_deref(), Some("b.example"));
    assert_eq!(o.accounts[2].description, None, "\"\" is no description");

    let patch = |id: &str, body: Value| {
        let path = format!("/organization/accounts/{id}");
        let token = token.clone();
        let sim = &sim;
        async move { send(sim, M::PATCH, &token, &path, Some(body)).await }
    };
    // `name` alone keeps the description.
    let (s, body) = patch("b", json!({"name": "B2"})).await;
    assert_eq!(s, 200);
    assert_eq!(
        body,
        json!({"id": "b", "name": "B2", "description": "b.example"})
    );
    // An explicit description replaces it; the name stays.
    let (_, body) = patch("b", json!({"description": "new.example"})).await;
    assert_eq!(
        body,
        json!({"id": "b", "name": "B2", "description": "new.example"})
    );
    // `""` clears it.
    let (_, body) = patch("b", json!({"description": ""})).await;
    assert_eq!(body, json!({"id": "b", "name": "B2", "description": ""}));
    let o = sim.organization(&org.organization_id).unwrap();
    assert_eq!(o.accounts[1].description, None);
    // An empty body changes nothing; a description on an account without one sets it.
    let (s, body) = patch("a", json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(body, json!({"id": "a", "name": "A", "description": ""}));
    let (_, body) = patch("a", json!({"description": "a.example"})).await;
    assert_eq!(body["description"], "a.example");
    let (_, listed) = get(&sim, &token, "/organization/accounts").await;
    assert_eq!(listed[0]["description"], "a.example");
    assert_eq!(listed[1]["description"], "");
}

#[tokio::test]
async fn refused_accounts_answer_400_and_create_nothing_of_the_batch() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    use reqwest::Method as M;
    let p = "/organization/accounts";
    let (s, _) = send(
        &sim,
        M::POST,
        &token,
        p,
        Some(json!([{"id": "a", "name": "A"}])),
    )
    .await;
    assert_eq!(s, 201);

    // Through the handle: a refused id in a bulk create → 400, nothing of the batch is created.
    assert!(sim.refuse_account(&org.organization_id, "bad", "Account name is invalid", true));
    assert!(!sim.refuse_account("org_999", "bad", "x", true));
    let (s, body) = send(
        &sim,
        M::POST,
        &token,
        p,
        Some(json!([{"id": "b", "name": "B"}, {"id": "bad", "name": "Bad"}])),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        body,
        json!({"statusCode": 400, "message": "Account name is invalid"})
    );
    let (_, listed) = get(&sim, &token, p).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // Through the admin route (refused defaults to true); a PATCH of a refused account → 400.
    let r = client()
        .post(admin(
            &sim,
            &format!("/organizations/{}/refuse-account", org.organization_id),
        ))
        .json(&json!({"accountId": "a", "message": "Account a is locked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (s, body) = send(
        &sim,
        M::PATCH,
        &token,
        "/organization/accounts/a",
        Some(json!({"name": "A2"})),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(
        body,
        json!({"statusCode": 400, "message": "Account a is locked"})
    );
    let o = admin_state(&sim, &org.organization_id).await;
    assert_eq!(o.accounts[0].name, "A");
    assert_eq!(
        o.refused_accounts,
        [
            RefusedAccount {
                account_id: "a".into(),
                message: "Account a is locked".into()
            },
            RefusedAccount {
                account_id: "bad".into(),
                message: "Account name is invalid".into()
            },
        ]
    );
    let r = client()
        .post(admin(&sim, "/organizations/org_999/refuse-account"))
        .json(&json!({"accountId": "a", "message": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Accepted again: both work.
    let r = client()
        .post(admin(
            &sim,
            &format!("/organizations/{}/refuse-account", org.organization_id),
        ))
        .json(&json!({"accountId": "a", "message": "", "refused": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(sim.refuse_account(&org.organization_id, "bad", "", false));
    let (s, _) = send(
        &sim,
        M::PATCH,
        &token,
        "/organization/accounts/a",
        Some(json!({"name": "A2"})),
    )
    .await;
    assert_eq!(s, 200);
    let (s, _) = send(
        &sim,
        M::POST,
        &token,
        p,
        Some(json!([{"id": "b", "name": "B"}, {"id": "bad", "name": "Bad"}])),
    )
    .await;
    assert_eq!(s, 201);
    assert!(
        sim.organization(&org.organization_id)
            .unwrap()
            .refused_accounts
            .is_empty()
    );
}

#[tokio::test]
async fn vendor_key_rotation_and_revocation() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let old = sim.token_for(&org.partner_key);
    assert_eq!(sim.vendor_key(), "sim-vendor-key");
    assert_eq!(get(&sim, &old, "/organization").await.0, 200);

    sim.set_vendor_key("vendor-key-2");
    assert_eq!(sim.vendor_key(), "vendor-key-2");
    let new = sim.token_for(&org.partner_key);
    assert_ne!(new, old);
    assert_eq!(get(&sim, &old, "/organization").await.0, 401);
    assert_eq!(get(&sim, &new, "/organization").await.0, 200);
    assert_eq!(
        new,
        gradient_token("vendor-key-2", &org.partner_key),
        "token_for uses the current key"
    );

    // The admin route: GET shows the key, PUT replaces it, bad keys are refused.
    let shown: Value = client()
        .get(admin(&sim, "/vendor-key"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, json!({"vendorKey": "vendor-key-2"}));
    let r = client()
        .put(admin(&sim, "/vendor-key"))
        .json(&json!({"vendorKey": "vendor-key-3"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(sim.vendor_key(), "vendor-key-3");
    assert_eq!(get(&sim, &new, "/organization").await.0, 401);
    assert_eq!(
        get(&sim, &sim.token_for(&org.partner_key), "/organization")
            .await
            .0,
        200
    );
    for bad in [
        json!({"vendorKey": ""}),
        json!({"vendorKey": "a:b"}),
        json!({}),
    ] {
        let r = client()
            .put(admin(&sim, "/vendor-key"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert_eq!(sim.vendor_key(), "vendor-key-3");
}

#[tokio::test]
async fn no_build_is_recorded_per_count() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let svc = sim.create_service(service("EDR")).id;
    let (s, _) = send(
        &sim,
        reqwest::Method::POST,
        &token,
        "/organization/accounts",
        Some(json!([{"id": "a", "name": "A"}])),
    )
    .await;
    assert_eq!(s, 201);
    assert!(sim.map_all(&org.organization_id, &[]));
    let base = format!("/service/{svc}/count");
    for (n, query) in [
        (1, "?no_build=true"),
        (2, ""),
        (3, "?no_build=false"),
        (4, "?no_build=TRUE"),
        (5, "?x=1&no_build=true"),
    ] {
        let (s, _) = send(
            &sim,
            reqwest::Method::POST,
            &token,
            &format!("{base}{query}"),
            Some(json!({"accountId": "a", "unitCount": n})),
        )
        .await;
        assert_eq!(s, 201, "{query}");
    }
    let o = admin_state(&sim, &org.organization_id).await;
    let rec = o.count("a", &svc).unwrap();
    assert_eq!(rec.unit_count, 5);
    assert_eq!(
        rec.history
            .iter()
            .map(|h| (h.unit_count, h.no_build))
            .collect::<Vec<_>>(),
        [(1, true), (2, false), (3, false), (4, true), (5, true)]
    );
    assert!(rec.history.iter().all(|h| !h.at.is_empty()));
}

#[tokio::test]
async fn count_latency_delays_only_count_posts() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let svc = sim.create_service(service("EDR")).id;
    let r = client()
        .put(admin(&sim, "/faults"))
        .json(&json!({"countLatencyMs": 300}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(sim.state().faults.count_latency_ms, 300);

    let t = std::time::Instant::now();
    assert_eq!(get(&sim, &token, "/organization").await.0, 200);
    assert_eq!(get(&sim, &token, &format!("/service/{svc}")).await.0, 200);
    assert!(
        t.elapsed() < std::time::Duration::from_millis(250),
        "other routes are not delayed"
    );

    let t = std::time::Instant::now();
    let (s, _) = send(
        &sim,
        reqwest::Method::POST,
        &token,
        &format!("/service/{svc}/count?no_build=true"),
        Some(json!({"accountId": "nope", "unitCount": 1})),
    )
    .await;
    assert_eq!(s, 404);
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));

    // Added to the general latency.
    sim.set_faults(Faults {
        latency_ms: 100,
        count_latency_ms: 200,
        ..Faults::default()
    });
    let t = std::time::Instant::now();
    send(
        &sim,
        reqwest::Method::POST,
        &token,
        &format!("/service/{svc}/count"),
        Some(json!({"accountId": "nope", "unitCount": 1})),
    )
    .await;
    assert!(t.elapsed() >= std::time::Duration::from_millis(300));
}

#[tokio::test]
async fn error_bodies_are_padded_for_every_vendor_error() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let svc = sim.create_service(service("EDR")).id;
    let r = client()
        .put(admin(&sim, "/faults"))
        .json(&json!({"errorBodyBytes": 100_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let check = |s: StatusCode, body: &Value, expected: u16, starts: &str| {
        assert_eq!(s, expected);
        assert_eq!(body["statusCode"], expected);
        let m = body["message"].as_str().unwrap();
        assert!(m.len() >= 100_000, "{}", m.len());
        assert!(m.starts_with(starts), "{}", &m[..80]);
    };
    // Real 404 of an unmapped count.
    let (s, body) = send(
        &sim,
        reqwest::Method::POST,
        &token,
        &format!("/service/{svc}/count"),
        Some(json!({"accountId": "a", "unitCount": 1})),
    )
    .await;
    check(s, &body, 404, "Mapping not found");
    // Real 400 and 401.
    let (s, body) = send(
        &sim,
        reqwest::Method::PATCH,
        &token,
        "/organization/status/Active",
        None,
    )
    .await;
    check(s, &body, 400, "Invalid status");
    let (s, body) = get(&sim, "nope", "/organization").await;
    check(s, &body, 401, "Unauthorized");
    // Success answers are untouched.
    let (s, body) = get(&sim, &token, "/organization").await;
    assert_eq!(s, 200);
    assert_eq!(body["name"], "Acme");

    // Injected 503 and 429 (its Retry-After kept).
    sim.set_faults(Faults {
        error_body_bytes: Some(5000),
        rate429: 1.0,
        retry_after_secs: Some(7),
        ..Faults::default()
    });
    let r = client()
        .get(url(&sim, "/organization"))
        .header("GRADIENT-TOKEN", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let len: usize = r.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().len() >= 5000);
    assert!(len > 5000);
    sim.set_faults(Faults {
        error_body_bytes: Some(5000),
        force_status: Some(503),
        ..Faults::default()
    });
    let (s, body) = get(&sim, &token, "/organization").await;
    assert_eq!(s, 503);
    assert!(body["message"].as_str().unwrap().len() >= 5000);
    // Short messages stay as they are without the fault.
    sim.clear_faults();
    let (s, body) = get(&sim, "nope", "/organization").await;
    assert_eq!(s, 401);
    assert!(body["message"].as_str().unwrap().len() < 100);
}

#[tokio::test]
async fn alerting_validates_like_the_sdk_and_records_alerts() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let svc = sim.create_service(service("EDR")).id;
    use reqwest::Method as M;
    let (s, _) = send(
        &sim,
        M::POST,
        &token,
        "/organization/accounts",
        Some(json!([{"id": "ws-1", "name": "One"}])),
    )
    .await;
    assert_eq!(s, 201);
    let good = json!({
        "title": "Sync failed",
        "description": "Coro could not report usage",
        "alertId": "coro-1",
        "priority": 3,
        "status": 1,
        "extra": {"ignored": true},
    });

    let (s, body) = send(&sim, M::POST, &token, "/alerting/ws-1", Some(good.clone())).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["alertId"], "coro-1");
    let message_id = body["messageId"].as_str().unwrap().to_owned();
    assert!(!message_id.is_empty());
    assert!(!body["correlationID"].as_str().unwrap().is_empty());

    let mut full = good.clone();
    full["alertId"] = json!("coro-2");
    full["priority"] = json!(4);
    full["status"] = json!(6);
    full["dueDateTime"] = json!("2026-12-01T00:00:00Z");
    full["serviceId"] = json!(svc);
    let (s, _) = send(&sim, M::POST, &token, "/alerting/ws-1", Some(full)).await;
    assert_eq!(s, 200);

    // 400: missing/empty/wrong-typed required fields, out-of-range integers, not an object.
    let mut bad_bodies = Vec::new();
    for field in ["title", "description", "alertId", "priority", "status"] {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(field);
        bad_bodies.push(b);
    }
    for (field, v) in [
        ("title", json!("")),
        ("description", json!("")),
        ("alertId", json!("")),
        ("title", json!(5)),
        ("alertId", json!(null)),
        ("priority", json!(0)),
        ("priority", json!(5)),
        ("priority", json!("2")),
        ("priority", json!(2.5)),
        ("status", json!(0)),
        ("status", json!(7)),
        ("status", json!(-1)),
        ("dueDateTime", json!(5)),
        ("serviceId", json!(7)),
    ] {
        let mut b = good.clone();
        b[field] = v;
        bad_bodies.push(b);
    }
    bad_bodies.push(json!([good.clone()]));
    for b in bad_bodies {
        let (s, body) = send(&sim, M::POST, &token, "/alerting/ws-1", Some(b.clone())).await;
        assert_eq!(s, 400, "{b}");
        assert_eq!(body["statusCode"], 400);
    }
    let r = client()
        .post(url(&sim, "/alerting/ws-1"))
        .header("GRADIENT-TOKEN", &token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // 404: not one of the organization's accounts; a serviceId that is no vendor service.
    let (s, body) = send(&sim, M::POST, &token, "/alerting/ws-9", Some(good.clone())).await;
    assert_eq!(s, 404);
    assert_eq!(body["statusCode"], 404);
    let other = sim.create_organization("Other");
    let other_token = sim.token_for(&other.partner_key);
    let (s, _) = send(
        &sim,
        M::POST,
        &other_token,
        "/alerting/ws-1",
        Some(good.clone()),
    )
    .await;
    assert_eq!(s, 404, "another organization's account");
    let mut b = good.clone();
    b["serviceId"] = json!("svc_999");
    let (s, _) = send(&sim, M::POST, &token, "/alerting/ws-1", Some(b)).await;
    assert_eq!(s, 404);
    // 401 without a valid token.
    let (s, _) = send(&sim, M::POST, "nope", "/alerting/ws-1", Some(good.clone())).await;
    assert_eq!(s, 401);

    let o = admin_state(&sim, &org.organization_id).await;
    assert_eq!(o.alerts.len(), 2, "only accepted alerts are recorded");
    let a = &o.alerts[0];
    assert_eq!(a.account_id, "ws-1");
    assert_eq!(a.title, "Sync failed");
    assert_eq!(a.description, "Coro could not report usage");
    assert_eq!(
        (a.alert_id.as_str(), a.priority, a.status),
        ("coro-1", 3, 1)
    );
    assert_eq!(a.due_date_time, None);
    assert_eq!(a.service_id, None);
    assert_eq!(a.message_id, message_id);
    assert!(time_ok(&a.at), "{}", a.at);
    let b = &o.alerts[1];
    assert_eq!((b.priority, b.status), (4, 6));
    assert_eq!(b.due_date_time.as_deref(), Some("2026-12-01T00:00:00Z"));
    assert_eq!(b.service_id.as_deref(), Some(svc.as_str()));
    assert!(
        sim.organization(&other.organization_id)
            .unwrap()
            .alerts
            .is_empty()
    );
    // The vendor-JSON name of the correlation id.
    let raw = serde_json::to_value(a).unwrap();
    assert!(raw["correlationID"].is_string(), "{raw}");
}

fn time_ok(s: &str) -> bool {
    s.len() >= 20 && s.contains('T') && (s.ends_with('Z') || s.contains('+'))
}

#[tokio::test]
async fn alert_status_fault_only_on_the_alerting_route() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    use reqwest::Method as M;
    send(
        &sim,
        M::POST,
        &token,
        "/organization/accounts",
        Some(json!([{"id": "ws-1", "name": "One"}])),
    )
    .await;
    let r = client()
        .put(admin(&sim, "/faults"))
        .json(&json!({"alertStatus": 503}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let alert =
        json!({"title": "t", "description": "d", "alertId": "x", "priority": 1, "status": 1});
    let (s, body) = send(&sim, M::POST, &token, "/alerting/ws-1", Some(alert.clone())).await;
    assert_eq!(s, 503);
    assert_eq!(body["statusCode"], 503);
    assert_eq!(get(&sim, &token, "/organization").await.0, 200);
    assert_eq!(get(&sim, &token, "/organization/accounts").await.0, 200);
    // Auth still comes first.
    assert_eq!(
        send(&sim, M::POST, "nope", "/alerting/ws-1", Some(alert.clone()))
            .await
            .0,
        401
    );
    assert!(
        sim.organization(&org.organization_id)
            .unwrap()
            .alerts
            .is_empty()
    );
    let r = client()
        .put(admin(&sim, "/faults"))
        .json(&json!({"alertStatus": 1000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sim.clear_faults();
    assert_eq!(
        send(&sim, M::POST, &token, "/alerting/ws-1", Some(alert))
            .await
            .0,
        200
    );
}

// ---------------------------------------------------------------- echoToken fault

/// A GET with `token` as `GRADIENT-TOKEN`: status, content type and the raw body.
async fn get_raw(sim: &SimHandle, token: &str, path: &str) -> (u16, String, String) {
    let r = client()
        .get(url(sim, path))
        .header("GRADIENT-TOKEN", token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, r.text().await.unwrap())
}

fn echo(shape: EchoShape) -> Faults {
    Faults {
        echo_token: Some(EchoToken {
            shape,
            ..EchoToken::default()
        }),
        ..Faults::default()
    }
}

#[tokio::test]
async fn echo_token_json_through_the_admin_route_defaults_to_400_on_every_route() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let r = client()
        .put(admin(&sim, "/faults"))
        .json(&json!({"echoToken": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        sim.state().faults.echo_token,
        Some(EchoToken {
            shape: EchoShape::Json,
            status: 400,
            path_prefix: None,
            times: None,
        })
    );
    for path in ["", "/organization", "/organization/accounts", "/service/s1"] {
        let (status, content_type, body) = get_raw(&sim, &token, path).await;
        assert_eq!(status, 400, "{path}");
        assert_eq!(content_type, "application/json");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["statusCode"], 400);
        assert_eq!(body["message"], format!("bad header {token}"));
    }
    // Decided before auth: a wrong token is echoed too.
    let (status, _, body) = get_raw(&sim, "not-base64-at-all", "/organization").await;
    assert_eq!(status, 400);
    assert!(body.contains("bad header not-base64-at-all"), "{body}");
    // And logged with the status answered.
    let log = sim.requests().requests;
    assert!(log.iter().all(|r| r.status == 400), "{log:?}");
    // A success status is refused.
    let r = client()
        .put(admin(&sim, "/faults"))
        .json(&json!({"echoToken": {"status": 200}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sim.clear_faults();
    assert_eq!(get_raw(&sim, &token, "/organization").await.0, 200);
}

#[tokio::test]
async fn echo_token_text_with_status_path_prefix_and_times() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    let svc = sim.create_service(service("EDR")).id;
    let r = client()
        .put(admin(&sim, "/faults"))
        .json(&json!({"echoToken": {
            "shape": "text", "status": 502, "pathPrefix": "/api/vendor-api/service/", "times": 2
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Other routes are untouched (and do not use up `times`).
    assert_eq!(get_raw(&sim, &token, "/organization").await.0, 200);
    assert_eq!(get_raw(&sim, &token, "").await.0, 200);
    for _ in 0..2 {
        let (status, content_type, body) = get_raw(&sim, &token, &format!("/service/{svc}")).await;
        assert_eq!(status, 502);
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        assert_eq!(body, format!("GRADIENT-TOKEN: {token}"));
    }
    assert_eq!(
        sim.state().faults.echo_token.unwrap().times,
        Some(0),
        "spent"
    );
    assert_eq!(
        get_raw(&sim, &token, &format!("/service/{svc}")).await.0,
        200
    );
    // A count POST with a query matches the prefix on its path.
    sim.set_faults(Faults {
        echo_token: Some(EchoToken {
            shape: EchoShape::Text,
            path_prefix: Some(format!("/api/vendor-api/service/{svc}/count")),
            ..EchoToken::default()
        }),
        ..Faults::default()
    });
    let r = client()
        .post(url(&sim, &format!("/service/{svc}/count?no_build=true")))
        .header("GRADIENT-TOKEN", &token)
        .json(&json!({"accountId": "a", "unitCount": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.text().await.unwrap(), format!("GRADIENT-TOKEN: {token}"));
}

#[tokio::test]
async fn echo_token_broken_json_cuts_the_string_after_the_value() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    sim.set_faults(echo(EchoShape::BrokenJson));
    let (status, content_type, body) = get_raw(&sim, &token, "/organization/accounts").await;
    assert_eq!(status, 400);
    assert_eq!(content_type, "application/json");
    assert!(serde_json::from_str::<Value>(&body).is_err(), "{body}");
    assert!(
        body.starts_with(&format!(
            r#"{{"statusCode":400,"message":"bad header {token}, "#
        )),
        "{body}"
    );
    assert!(!body.ends_with('"') && !body.ends_with('}'), "{body}");
}

#[tokio::test]
async fn echo_token_large_straddles_the_16_kib_mark() {
    let sim = sim().await;
    let org = sim.create_organization("Acme");
    let token = sim.token_for(&org.partner_key);
    // The same error body under `errorBodyBytes`: an echo is never padded.
    sim.set_faults(Faults {
        error_body_bytes: Some(100_000),
        ..echo(EchoShape::Large)
    });
    let (status, content_type, body) = get_raw(&sim, &token, "/organization").await;
    assert_eq!(status, 400);
    assert_eq!(content_type, "application/json");
    assert!(body.is_ascii());
    assert!(body.len() > ECHO_LARGE_CUT + 512, "{}", body.len());
    assert!(body.len() < 100_000, "not padded");
    let parsed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(parsed["statusCode"], 400);
    let at: Vec<usize> = body.match_indices(&token).map(|(i, _)| i).collect();
    assert_eq!(at.len(), 2, "{at:?}");
    assert_eq!(at[0], ECHO_LARGE_AT);
    assert!((150..=250).contains(&at[0]));
    assert!(
        at[1] < ECHO_LARGE_CUT && at[1] + token.len() > ECHO_LARGE_CUT,
        "{} + {}",
        at[1],
        token.len()
    );
}
