//! Real-socket tests of the simulator (reqwest against a started server).

use gradient_sim::{
    Faults, Pair, RequestsReport, Service, SimConfig, SimHandle, SimState, Simulator,
    gradient_token,
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
        gradient_token(sim.vendor_key(), "nope"),
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
