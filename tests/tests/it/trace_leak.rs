//! At `RUST_LOG=trace` (see [`RUST_LOG`]) no secret reaches the log: the REAL function binaries
//! (connectors-api, sync-on-demand, sync-worker) run as child processes against a Lambda Runtime
//! API emulator, the local stack (DynamoDB Local, moto) and a Gradient simulator; a connect, a
//! re-token, a sync request and the sync job go through them as raw Lambda events; then everything
//! the processes wrote to stdout and stderr is scanned for the partner keys, the vendor key and
//! the `GRADIENT-TOKEN` header values.
//!
//! The binaries come from `cargo build --workspace --bins` (scripts/test.sh runs it first).

use gradient_sim::{SimConfig, gradient_token};
use harness::fixture::service_ids;
use harness::runtime_api::{
    CapturedOutput, FunctionProcess, HttpAnswer, contract_env, http_event_json, sqs_event_json,
};
use harness::{Claims, TestEnv, test_gradient_config, workspace};
use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const CH: &str = "msp_trace";

/// `trace` for everything, and the crates that print events, requests and responses named at
/// `trace` explicitly, the way an operator hunting a bug would: they must stay capped all the same.
const RUST_LOG: &str = "trace,lambda_runtime=trace,lambda_runtime::layers::api_response=trace,\
                        lambda_runtime_api_client=trace,aws_smithy_runtime=trace,\
                        aws_sdk_secretsmanager=trace,aws_sigv4=trace,hyper_util=trace,h2=trace,\
                        reqwest=trace";

/// (account, service key, expected count): children in trial/subscription, each enabled service,
/// counted in users (CLOUD_SECURITY, EMAIL_SECURITY) or devices (EDR, ENDPOINT_SECURITY).
const EXPECTED: &[(&str, &str, u64)] = &[
    ("msp_trace_a", "EMAIL_SECURITY", 12),
    ("msp_trace_a", "EDR", 7),
    ("msp_trace_b", "CLOUD_SECURITY", 5),
    ("msp_trace_b", "ENDPOINT_SECURITY", 3),
];

async fn seed(env: &TestEnv) {
    env.seed_workspaces(&[
        workspace(CH, None, "channel", "Trace MSP", "subscription", &[], 0, 0),
        workspace(
            "msp_trace_a",
            Some(CH),
            "child",
            "Customer A",
            "subscription",
            &["EMAIL_SECURITY", "EDR"],
            12,
            7,
        ),
        workspace(
            "msp_trace_b",
            Some(CH),
            "child",
            "Customer B",
            "trial",
            &["CLOUD_SECURITY", "ENDPOINT_SECURITY"],
            5,
            3,
        ),
        workspace(
            "msp_trace_c",
            Some(CH),
            "child",
            "Customer C",
            "inactive",
            &["EDR"],
            4,
            4,
        ),
    ])
    .await;
}

/// A vendor key no log line can contain by chance.
fn unique_vendor_key() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("vk-trace-{nanos:x}-{:x}", std::process::id())
}

/// A test environment whose simulator has a vendor key of its own (returned), seeded.
async fn seeded(label: &str) -> (String, TestEnv) {
    let vendor_key = unique_vendor_key();
    let env = TestEnv::start_with(
        label,
        SimConfig {
            vendor_key: vendor_key.clone(),
            ..SimConfig::default()
        },
        test_gradient_config(),
        80,
    )
    .await;
    seed(&env).await;
    (vendor_key, env)
}

async fn receive_jobs(env: &TestEnv) -> Vec<aws_sdk_sqs::types::Message> {
    for _ in 0..20 {
        let batch = env.receive(120).await;
        if !batch.is_empty() {
            return batch;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("sync-on-demand answered 202 but no job reached the queue");
}

/// `(what, where)` for every secret found in the output, without the secret itself.
fn leaks(outputs: &[CapturedOutput], secrets: &[(&str, String)]) -> Vec<String> {
    let mut found = Vec::new();
    for out in outputs {
        for (stream, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            for (what, secret) in secrets {
                // As written, and as it reads inside a JSON string (an escaped event body).
                let escaped = serde_json::to_string(secret).expect("json");
                let escaped = escaped.trim_matches('"').to_owned();
                let lines: Vec<usize> = text
                    .lines()
                    .enumerate()
                    .filter(|(_, l)| l.contains(secret.as_str()) || l.contains(&escaped))
                    .map(|(i, _)| i + 1)
                    .collect();
                if !lines.is_empty() {
                    found.push(format!(
                        "{what} in {} {stream}, line(s) {lines:?}",
                        out.function
                    ));
                }
            }
        }
    }
    found
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_of_the_real_binaries_at_trace() {
    let (vendor_key, env) = seeded("trace-leak").await;
    let org = env.sim.create_organization("Trace MSP");
    let first_key = org.partner_key.clone();

    let mut vars = contract_env(&env.platform.settings);
    vars.push(("RUST_LOG".into(), RUST_LOG.into()));
    let dump = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("trace_leak");
    let mut api = FunctionProcess::spawn("connectors-api", &vars, &dump).await;
    let mut on_demand = FunctionProcess::spawn("sync-on-demand", &vars, &dump).await;
    let mut worker = FunctionProcess::spawn("sync-worker", &vars, &dump).await;
    let admin = Claims::admin(CH);

    // Connect: POST /v1/psa/connectors with the first partner key.
    let body = serde_json::json!({"type": "gradient", "apiToken": first_key}).to_string();
    let event = http_event_json("POST", "/v1/psa/connectors", Some(&admin), Some(&body));
    let connect = HttpAnswer::from_outcome(&api.invoke(&event).await);
    assert_eq!(connect.status, 201, "{}", connect.body);
    assert_eq!(connect.json()["status"], "connected", "{}", connect.body);

    // Re-token: Gradient issues a new partner key, the admin pastes it.
    let second_key = env
        .sim
        .regenerate_key(&org.organization_id)
        .expect("the organization exists");
    let body = serde_json::json!({"apiToken": second_key}).to_string();
    let event = http_event_json(
        "PUT",
        "/v1/psa/connectors/gradient/token",
        Some(&admin),
        Some(&body),
    );
    let retoken = HttpAnswer::from_outcome(&api.invoke(&event).await);
    assert_eq!(retoken.status, 200, "{}", retoken.body);
    assert_eq!(
        env.token_secret_value(CH).await.as_deref(),
        Some(second_key.as_str()),
        "the re-token stored the new key"
    );
    assert!(env.sim.map_all(&org.organization_id, &[]));

    // Sync: POST .../sync through sync-on-demand, the job from SQS through sync-worker.
    let event = http_event_json(
        "POST",
        "/v1/psa/connectors/gradient/sync",
        Some(&admin),
        None,
    );
    let sync = HttpAnswer::from_outcome(&on_demand.invoke(&event).await);
    assert_eq!(sync.status, 202, "{}", sync.body);
    let run_id = sync.json()["runId"].as_str().expect("runId").to_owned();
    assert_eq!(
        sync.header("location"),
        Some(format!("/v1/psa/connectors/gradient/syncs/{run_id}").as_str())
    );
    let jobs = receive_jobs(&env).await;
    let batch = worker.invoke(&sqs_event_json(&jobs)).await.json();
    assert_eq!(
        batch["batchItemFailures"],
        serde_json::json!([]),
        "the worker finished every job: {batch}"
    );

    // What the binaries did, read through the handler and the simulator.
    let run = env.run(CH, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["posted"], EXPECTED.len() as u64, "{run}");
    let ids = service_ids(&env).await;
    let state = env
        .sim
        .organization(&org.organization_id)
        .expect("the organization exists");
    for (account, service, want) in EXPECTED {
        let got = state.count(account, &ids[*service]).map(|c| c.unit_count);
        assert_eq!(got, Some(*want), "{account}/{service}");
    }
    assert_eq!(state.counts.len(), EXPECTED.len(), "no other count");

    // Let the last lines land, then stop the processes and read everything they wrote.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outputs = vec![api.stop(), on_demand.stop(), worker.stop()];

    let secrets = [
        ("the partner key of the connect", first_key.clone()),
        ("the partner key of the re-token", second_key.clone()),
        ("the vendor key", vendor_key.clone()),
        (
            "the GRADIENT-TOKEN header of the connect",
            gradient_token(&vendor_key, &first_key),
        ),
        (
            "the GRADIENT-TOKEN header of the re-token",
            gradient_token(&vendor_key, &second_key),
        ),
    ];
    let found = leaks(&outputs, &secrets);
    assert!(
        found.is_empty(),
        "secrets reached the log (full output in {}): {found:#?}",
        dump.display()
    );

    // The scan proves something only if the processes really logged at trace.
    for out in &outputs {
        let lines = json_lines(&out.stdout);
        assert!(
            lines.iter().any(|l| l["level"] == "DEBUG"
                && l["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("logging ready"))
                && l["fields"]["rust_log"] == RUST_LOG),
            "{}: no debug line of our own crates: RUST_LOG did not take effect ({})",
            out.function,
            dump.display()
        );
        assert!(
            !out.stdout.contains("raw JSON event received from Lambda"),
            "{}: lambda_runtime's trace of the raw event is in the log",
            out.function
        );
    }
    // lambda_runtime still logs at info: its invocation span is on our lines.
    let worker_lines = json_lines(&outputs[2].stdout);
    assert!(
        worker_lines.iter().any(|l| {
            l["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["name"] == "Lambda runtime invoke" && s["requestId"].is_string())
            })
        }),
        "sync-worker: no line inside lambda_runtime's invocation span ({})",
        dump.display()
    );
}

/// Every 12-character piece of `secret`, raw and in standard base64 (the forms an echo carries).
fn pieces(secret: &str) -> Vec<String> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    let mut out = Vec::new();
    for form in [secret.to_owned(), b64] {
        let chars: Vec<char> = form.chars().collect();
        for w in chars.windows(12) {
            out.push(w.iter().collect());
        }
    }
    out
}

/// `(what, where)` for every piece of a secret in `text`.
fn pieces_in(text: &str, secrets: &[(&str, String)], place: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (what, secret) in secrets {
        if let Some(p) = pieces(secret).iter().find(|p| text.contains(p.as_str())) {
            let at = text.find(p.as_str()).unwrap_or_default();
            let line = text[..at].lines().count();
            found.push(format!("a piece of {what} in {place} (line {line})"));
        }
    }
    found
}

/// Gradient (or a proxy in front of it) echoes the `GRADIENT-TOKEN` header in its error bodies —
/// as a JSON message, plain text, cut JSON and a 16 KiB+ body — on every call a sync, a re-token
/// and a delete make. No piece of 12 characters of a key or of the header, raw or base64, reaches
/// the real binaries' output at trace (logs and EMF records), an API response (runs with their
/// reasons, readings, the audit trail, problem bodies), an item of the table, or an event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_echoed_token_leaks_nowhere() {
    use gradient_sim::{EchoShape, EchoToken, Faults};
    let (vendor_key, mut env) = seeded("echo-leak").await;
    let probe = env.enable_events().await;
    let org = env.sim.create_organization("Trace MSP");
    let key = org.partner_key.clone();
    let admin = Claims::admin(CH);
    let mut vars = contract_env(&env.platform.settings);
    vars.push(("RUST_LOG".into(), RUST_LOG.into()));
    let dump = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("echo_leak");
    let mut api = FunctionProcess::spawn("connectors-api", &vars, &dump).await;
    let mut on_demand = FunctionProcess::spawn("sync-on-demand", &vars, &dump).await;
    let mut worker = FunctionProcess::spawn("sync-worker", &vars, &dump).await;
    let mut bodies = Vec::new();
    let mut keys = vec![key.clone()];

    let body = serde_json::json!({"type": "gradient", "apiToken": key}).to_string();
    let connect = HttpAnswer::from_outcome(
        &api.invoke(&http_event_json(
            "POST",
            "/v1/psa/connectors",
            Some(&admin),
            Some(&body),
        ))
        .await,
    );
    assert_eq!(connect.status, 201, "{}", connect.body);
    assert!(env.sim.map_all(&org.organization_id, &[]));

    let shapes = [
        EchoShape::Json,
        EchoShape::Text,
        EchoShape::BrokenJson,
        EchoShape::Large,
    ];
    // Each prefix fails a different step: counts, services, accounts, the status, the token check.
    let prefixes = [
        "/api/vendor-api/service/",
        "/api/vendor-api/service",
        "/api/vendor-api/organization/accounts",
        "/api/vendor-api/organization/status",
        "/api/vendor-api/organization",
    ];
    let mut runs = 0;
    for shape in shapes {
        for prefix in prefixes {
            env.sim.set_faults(Faults {
                echo_token: Some(EchoToken {
                    shape,
                    status: 400,
                    path_prefix: Some(prefix.into()),
                    times: None,
                }),
                ..Faults::default()
            });
            // A full resend each time, so the counts go out (and meet the echo) every run.
            let body = serde_json::json!({"settings": {"guardDropPercent": null}}).to_string();
            api.invoke(&http_event_json(
                "PATCH",
                "/v1/psa/connectors/gradient",
                Some(&admin),
                Some(&body),
            ))
            .await;
            let sync = HttpAnswer::from_outcome(
                &on_demand
                    .invoke(&http_event_json(
                        "POST",
                        "/v1/psa/connectors/gradient/sync",
                        Some(&admin),
                        None,
                    ))
                    .await,
            );
            bodies.push(sync.body.clone());
            if sync.status == 202 {
                runs += 1;
                let jobs = receive_jobs(&env).await;
                let batch = worker.invoke(&sqs_event_json(&jobs)).await.json();
                bodies.push(batch.to_string());
                for _ in 0..5 {
                    // continuations, if any
                    let more = env.receive(1).await;
                    if more.is_empty() {
                        break;
                    }
                    worker.invoke(&sqs_event_json(&more)).await;
                }
            }
            // A re-token with the same organization's key meets the echo on its token check or
            // its set-up.
            let body = serde_json::json!({"apiToken": env.sim.organization(&org.organization_id).unwrap().partner_key}).to_string();
            let retoken = HttpAnswer::from_outcome(
                &api.invoke(&http_event_json(
                    "PUT",
                    "/v1/psa/connectors/gradient/token",
                    Some(&admin),
                    Some(&body),
                ))
                .await,
            );
            bodies.push(retoken.body.clone());
            // A connector that a token-check echo disconnected is reconnected for the next round.
            env.sim.clear_faults();
            let c = env
                .call("GET", "/v1/psa/connectors/gradient", Some(&admin), None)
                .await;
            if c.json()["status"] != "connected" {
                let fresh = env.sim.regenerate_key(&org.organization_id).unwrap();
                keys.push(fresh.clone());
                let body = serde_json::json!({"apiToken": fresh}).to_string();
                let r = env
                    .call(
                        "PUT",
                        "/v1/psa/connectors/gradient/token",
                        Some(&admin),
                        Some(&body),
                    )
                    .await;
                assert_eq!(r.status, 200, "{}", r.body);
            }
        }
    }
    assert!(runs >= 15, "the sweep ran syncs: {runs}");
    // The delete meets the echo on the status call.
    env.sim.set_faults(Faults {
        echo_token: Some(EchoToken {
            shape: EchoShape::Large,
            status: 400,
            path_prefix: Some("/api/vendor-api/organization/status".into()),
            times: None,
        }),
        ..Faults::default()
    });
    // Everything the views show: every run (reasons), every reading, the audit trail.
    let (runs_page, _) = (
        env.call(
            "GET",
            "/v1/psa/connectors/gradient/syncs?limit=100",
            Some(&admin),
            None,
        )
        .await,
        (),
    );
    bodies.push(runs_page.body.clone());
    for run in runs_page.json()["items"].as_array().unwrap() {
        let id = run["runId"].as_str().unwrap();
        let r = env
            .call(
                "GET",
                &format!("/v1/psa/connectors/gradient/syncs/{id}/readings?limit=100"),
                Some(&admin),
                None,
            )
            .await;
        bodies.push(r.body);
    }
    bodies.push(
        env.call("GET", "/v1/psa/audit?limit=100", Some(&admin), None)
            .await
            .body,
    );
    let failed_reasons: Vec<String> = runs_page.json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str().map(str::to_owned))
        .collect();
    assert!(
        failed_reasons
            .iter()
            .any(|r| r.contains("REDACTED") || r.contains("400")),
        "the runs met the echo: {failed_reasons:?}"
    );
    let delete = HttpAnswer::from_outcome(
        &api.invoke(&http_event_json(
            "DELETE",
            "/v1/psa/connectors/gradient",
            Some(&admin),
            None,
        ))
        .await,
    );
    assert_eq!(delete.status, 204, "{}", delete.body);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let outputs = vec![api.stop(), on_demand.stop(), worker.stop()];
    let events = probe.drain(&env, 1).await;
    let items = env.psa_items().await;

    let mut secrets = vec![("the vendor key", vendor_key.clone())];
    for k in &keys {
        secrets.push(("a partner key", k.clone()));
        secrets.push(("a GRADIENT-TOKEN header", gradient_token(&vendor_key, k)));
    }
    let mut found = Vec::new();
    for out in &outputs {
        found.extend(pieces_in(
            &out.stdout,
            &secrets,
            &format!("{} stdout", out.function),
        ));
        found.extend(pieces_in(
            &out.stderr,
            &secrets,
            &format!("{} stderr", out.function),
        ));
    }
    for (i, b) in bodies.iter().enumerate() {
        found.extend(pieces_in(b, &secrets, &format!("response {i}")));
    }
    found.extend(pieces_in(
        &format!("{items:?}"),
        &secrets,
        "the table's items",
    ));
    found.extend(pieces_in(
        &serde_json::to_string(&events).unwrap(),
        &secrets,
        "the events",
    ));
    assert!(
        found.is_empty(),
        "pieces of secrets escaped (full output in {}): {found:#?}",
        dump.display()
    );
    // The scan saw what it scans: the echo's redaction in the readings' reasons, and the
    // worker's EMF records in its output.
    assert!(
        bodies.iter().any(|b| b.contains("[REDACTED]")),
        "the echo reached the runs' readings"
    );
    assert!(
        outputs[2].stdout.contains("\"_aws\""),
        "EMF records are in the scanned output"
    );
    assert!(!events.is_empty());
}
