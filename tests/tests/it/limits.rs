//! Limits that protect Gradient and the API's 29 s: token checks per workspace are bounded, and
//! a slow Gradient never makes an API request overrun or leave anything half-written.

use gradient_sim::Faults;
use harness::{ApiResponse, Claims, TestEnv, call_app, workspace};
use std::time::{Duration, Instant};

const CH: &str = "msp_lim";

/// `POST /v1/psa/connectors` with `token` as `ch`'s admin, through `api`.
async fn connect(api: &psa_http::App, ch: &str, token: &str) -> ApiResponse {
    let body = serde_json::json!({"type": "gradient", "apiToken": token}).to_string();
    call_app(
        api,
        "POST",
        "/v1/psa/connectors",
        Some(&Claims::admin(ch)),
        Some(&body),
    )
    .await
}

fn token_checks(env: &TestEnv) -> usize {
    env.sim
        .requests()
        .requests
        .iter()
        .filter(|r| r.path == "/api/vendor-api/organization")
        .count()
}

#[tokio::test]
async fn token_checks_per_workspace_are_bounded() {
    let env = TestEnv::start("limit-attempts").await;
    let mut api = env.api.clone();
    api.policy.verify_attempts = 10;
    let org = env.sim.create_organization("Acme MSP");
    for i in 0..10 {
        let r = connect(&api, CH, &format!("gr-wrong-{i:04}")).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (422, "token_rejected"),
            "{}",
            r.body
        );
    }
    assert_eq!(token_checks(&env), 10);
    // The 11th check within the window is refused before any Gradient call, even a good token.
    let r = connect(&api, CH, &org.partner_key).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "too_many_attempts"),
        "{}",
        r.body
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=600).contains(&wait), "{wait}");
    assert_eq!(
        token_checks(&env),
        10,
        "no Gradient call for a refused attempt"
    );
    assert!(
        env.workspace_items().await.is_empty(),
        "no connector was written"
    );
    // Another workspace has its own budget.
    let other = env.sim.create_organization("Other MSP");
    let r = connect(&api, "msp_other", &other.partner_key).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn a_slow_token_check_answers_503_in_time_and_writes_nothing() {
    let env = TestEnv::start("limit-slow-verify").await;
    let mut api = env.api.clone();
    api.policy.verify_deadline = Duration::from_millis(400);
    let org = env.sim.create_organization("Acme MSP");
    env.sim.set_faults(Faults {
        latency_ms: 1_500,
        ..Default::default()
    });
    let t = Instant::now();
    let r = connect(&api, CH, &org.partner_key).await;
    let took = t.elapsed();
    assert_eq!(
        (r.status, r.code().as_str()),
        (503, "gradient_unavailable"),
        "{}",
        r.body
    );
    assert!(r.header("retry-after").is_some());
    assert!(
        took < Duration::from_millis(1_400),
        "answered after {took:?}"
    );
    let left: Vec<_> = env
        .workspace_items()
        .await
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
        .collect::<Vec<_>>();
    assert!(left.is_empty(), "nothing half-written: {left:?}");
    assert!(
        env.token_secret_names().await.is_empty(),
        "no orphan secret"
    );
    // Once Gradient is fast again the same connect works.
    env.sim.clear_faults();
    let r = connect(&api, CH, &org.partner_key).await;
    assert_eq!(r.status, 201, "{}", r.body);
}

#[tokio::test]
async fn a_slow_set_up_ends_in_time_and_the_next_sync_finishes_it() {
    let env = TestEnv::start("limit-slow-setup").await;
    let mut items = vec![workspace(
        CH,
        None,
        "channel",
        "Acme",
        "subscription",
        &[],
        0,
        0,
    )];
    for i in 0..6 {
        items.push(workspace(
            &format!("{CH}_c{i}"),
            Some(CH),
            "child",
            "C",
            "subscription",
            &["EDR"],
            1,
            2,
        ));
    }
    env.seed_workspaces(&items).await;
    let mut api = env.api.clone();
    api.policy.verify_deadline = Duration::from_secs(2);
    api.policy.api_deadline = Duration::from_millis(900);
    let org = env.sim.create_organization("Acme MSP");
    env.sim.set_faults(Faults {
        latency_ms: 300,
        ..Default::default()
    });
    let t = Instant::now();
    let r = connect(&api, CH, &org.partner_key).await;
    let took = t.elapsed();
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        took < Duration::from_millis(1_500),
        "answered after {took:?}"
    );
    assert_eq!(r.json()["status"], "connected");
    assert_eq!(r.json()["statusReason"], "setup_incomplete", "{}", r.body);
    assert_eq!(env.token_secret_names().await.len(), 1);
    // The next sync repeats the set-up and clears the reason.
    env.sim.clear_faults();
    let r = env
        .call(
            "POST",
            "/v1/psa/connectors/gradient/sync",
            Some(&Claims::admin(CH)),
            None,
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.body);
    env.drain().await;
    let c = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await
        .json();
    assert_eq!(c["lastSync"]["status"], "succeeded", "{c}");
    assert!(c.get("statusReason").is_none(), "{c}");
    assert_eq!(
        env.sim
            .organization(&org.organization_id)
            .unwrap()
            .accounts
            .len(),
        6
    );
}
