//! Each function is wired with only what it uses (psa-runtime `Platform::<function>`), checked on
//! the real binaries: with the vendor key secret missing, the scheduler and the on-demand function
//! start and serve (they never read it), while the API and the worker stop at init naming it. The
//! notifier needs no vendor key either, only its sender and console link.

use harness::fixture::{CH, connected_msp};
use harness::runtime_api::{FunctionProcess, HttpAnswer, contract_env, http_event_json};
use harness::{Claims, TestEnv};
use std::time::Duration;

fn without_vendor_key(env: &TestEnv) -> Vec<(String, String)> {
    let mut vars = contract_env(&env.platform.settings);
    for (k, v) in &mut vars {
        if k == "GRADIENT_VENDOR_KEY_SECRET_ID" {
            *v = "no-such-vendor-key-secret".into();
        }
    }
    vars
}

/// Whether the process's output mentions `needle` within 30 s (a start-up failure naming a
/// variable or a secret).
async fn says(p: &FunctionProcess, needle: &str) -> bool {
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if p.captured().contains(needle) {
            return true;
        }
    }
    false
}

#[tokio::test]
async fn only_the_functions_that_call_gradient_read_the_vendor_key() {
    let msp = connected_msp("wiring", 3).await;
    let env = &msp.env;
    let vars = without_vendor_key(env);
    let dump = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wiring");

    // The on-demand function starts and queues a run.
    let mut on_demand = FunctionProcess::spawn("sync-on-demand", &vars, &dump).await;
    on_demand.init_time().await;
    let post = http_event_json(
        "POST",
        "/v1/psa/connectors/gradient/sync",
        Some(&Claims::admin(CH)),
        None,
    );
    let answer = HttpAnswer::from_outcome(&on_demand.invoke(&post).await);
    assert_eq!(answer.status, 202, "{}", answer.body);
    on_demand.stop();

    // The scheduler starts and serves the daily event (the run above holds the slot: busy).
    let mut scheduler = FunctionProcess::spawn("sync-scheduled", &vars, &dump).await;
    scheduler.init_time().await;
    let daily = serde_json::json!({
        "version": "0", "id": "wiring", "detail-type": "Scheduled Event",
        "source": "aws.events", "account": "123456789012", "time": "2026-11-30T05:00:00Z",
        "region": "us-east-1", "resources": [], "detail": {}
    });
    let report = scheduler.invoke(&daily).await.json();
    assert_eq!(report["connectors"], 1, "{report}");
    scheduler.stop();

    // The API and the worker need the key: their init fails and says which secret.
    for function in ["connectors-api", "sync-worker"] {
        let mut p = FunctionProcess::spawn(function, &vars, &dump).await;
        let failed = says(&p, "no-such-vendor-key-secret").await;
        // It reports, then exits: under load the exit can come a moment after the report.
        p.exits_within(Duration::from_secs(10)).await;
        let out = p.stop();
        assert!(
            failed,
            "{function} did not report the missing vendor key at init: {}{}",
            out.stdout, out.stderr
        );
        assert!(
            out.status.is_some_and(|s| !s.success()),
            "{function} exited with an error"
        );
    }
}

/// The real API binary answers the sync routes (served by the on-demand function) with 404, never
/// a 500 from an unwired queue; and a Gradient base URL in clear stops every Gradient-calling
/// function at init, naming the variable.
#[tokio::test]
async fn the_api_binary_answers_routes_it_does_not_serve_with_404_and_refuses_cleartext() {
    let msp = connected_msp("wiring-edge", 3).await;
    let env = &msp.env;
    let vars = contract_env(&env.platform.settings);
    let dump = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wiring-edge");
    let mut api = FunctionProcess::spawn("connectors-api", &vars, &dump).await;
    api.init_time().await;
    for path in [
        "/v1/psa/connectors/gradient/sync",
        "/v1/psa/connectors/gradient/syncs/20261206T050000.000Z-x/release",
    ] {
        let post = http_event_json("POST", path, Some(&Claims::admin(CH)), None);
        let answer = HttpAnswer::from_outcome(&api.invoke(&post).await);
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
        assert_eq!(answer.json()["code"], "not_found");
    }
    api.stop();

    let mut clear = vars.clone();
    for (k, v) in &mut clear {
        if k == "GRADIENT_BASE_URL" {
            *v = "http://gradient.example.com".into();
        }
    }
    for function in ["connectors-api", "sync-worker"] {
        let p = FunctionProcess::spawn(function, &clear, &dump).await;
        let named = says(&p, "GRADIENT_BASE_URL").await;
        let out = p.stop();
        assert!(named, "{function}: {}{}", out.stdout, out.stderr);
        assert!(
            !out.stdout.contains("gradient.example.com/api"),
            "no call went out"
        );
    }
}

/// The real notifier binary, without the vendor key, takes a real `PSA Sync Finished` event (as
/// the bus's rule delivers it) and sends the email through SES once; without `NOTIFY_FROM` it
/// stops at init naming it.
#[tokio::test]
async fn the_notifier_binary_emails_a_finished_run_once() {
    let mut msp = connected_msp("wiring-notify", 6).await;
    let probe = msp.env.enable_events().await;
    let env = &msp.env;
    let _ = env.notifier().await; // verifies the sender in SES
    let inbox = format!("wiring-{}@msp.example", env.prefix.replace('_', "-"));
    let body = serde_json::json!({"settings": {"notify": {"emails": [inbox], "on": "always"}}});
    let r = env
        .call(
            "PATCH",
            "/v1/psa/connectors/gradient",
            Some(&Claims::admin(CH)),
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    harness::fixture::sync_and_wait(env).await; // unmapped services: it needs attention
    let event = probe
        .drain(env, 1)
        .await
        .into_iter()
        .find(|e| e["detail-type"] == "PSA Sync Finished")
        .expect("the run's event");

    let vars = without_vendor_key(env);
    let dump = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wiring-notify");
    let mut notifier = FunctionProcess::spawn("sync-notifier", &vars, &dump).await;
    notifier.init_time().await;
    let first = notifier.invoke(&event).await.json();
    assert_eq!(
        first,
        serde_json::json!({"notice": "sent", "recipients": 1})
    );
    let again = notifier.invoke(&event).await.json();
    assert_eq!(again, serde_json::json!({"notice": "already_sent"}));
    let out = notifier.stop();
    let mail = env.emails_to(&inbox).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].subject.ends_with("Gradient sync needs attention"));
    assert!(
        !out.stdout.contains(&inbox) && !out.stderr.contains(&inbox),
        "addresses are not logged"
    );

    let no_sender: Vec<(String, String)> = vars
        .into_iter()
        .filter(|(k, _)| k != "NOTIFY_FROM")
        .collect();
    let p = FunctionProcess::spawn("sync-notifier", &no_sender, &dump).await;
    let named = says(&p, "NOTIFY_FROM").await;
    let out = p.stop();
    assert!(named, "{}{}", out.stdout, out.stderr);
    assert!(out.status.is_some_and(|s| !s.success()));
}
