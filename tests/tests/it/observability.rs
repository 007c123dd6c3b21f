//! Observability, end to end against the local stack:
//! - the contract events (`PSA Connector Status Changed`, `PSA Sync Finished`) of a connect, a
//!   sync, a 401 that disconnects and a re-token, read back from moto through a rule that targets
//!   a queue — exact details, no token; a bus that refuses changes nothing else;
//! - the EMF record of a run and the log fields, from the REAL binaries (connectors-api,
//!   sync-worker) under the Lambda Runtime API emulator: one record per finished run whose numbers
//!   are the run's counts and the simulator's own count of calls and 429s; every log line of a
//!   request or a job carries the Lambda request id and the workspace, connector and run ids.
//!
//! The binaries come from `cargo build --workspace --bins` (scripts/test.sh runs it first).

use gradient_sim::{Faults, SimConfig, gradient_token};
use harness::runtime_api::{FunctionProcess, HttpAnswer, contract_env, http_event_json};
use harness::runtime_api::{Outcome, sqs_event_json};
use harness::{Claims, TestEnv, logs, test_gradient_config, workspace};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

async fn seed(env: &TestEnv, ch: &str) {
    env.seed_workspaces(&[
        workspace(ch, None, "channel", "Obs MSP", "subscription", &[], 0, 0),
        workspace(
            &format!("{ch}_a"),
            Some(ch),
            "child",
            "Customer A",
            "subscription",
            &["EMAIL_SECURITY", "EDR"],
            12,
            7,
        ),
        workspace(
            &format!("{ch}_b"),
            Some(ch),
            "child",
            "Customer B",
            "trial",
            &["CLOUD_SECURITY", "ENDPOINT_SECURITY"],
            5,
            3,
        ),
    ])
    .await;
}

/// Sync now, run the queue dry, answer the run.
async fn sync(env: &TestEnv, ch: &str) -> Value {
    let r = env.sync_now(ch).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run_id = r.json()["runId"].as_str().expect("runId").to_owned();
    assert!(env.drain().await >= 1);
    env.run(ch, &run_id).await
}

fn parse_time(v: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(v.as_str().expect("a time string"), &Rfc3339)
        .unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}"))
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_sync_disconnect_and_retoken_put_their_events_on_the_bus() {
    const CH: &str = "msp_events";
    let mut env = TestEnv::start("events").await;
    let probe = env.enable_events().await;
    seed(&env, CH).await;
    let org = env.sim.create_organization("Obs MSP");
    let first_key = org.partner_key.clone();
    let started = OffsetDateTime::now_utc();

    // Connect, map everything, sync.
    let r = env.connect(CH, &first_key).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    let first = sync(&env, CH).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(first["counts"]["posted"], 4, "{first}");

    // The MSP regenerates its key in Gradient: the next run gets 401s, the connector disconnects.
    let second_key = env
        .sim
        .regenerate_key(&org.organization_id)
        .expect("the organization exists");
    let second = sync(&env, CH).await;
    assert_eq!(second["status"], "token_rejected", "{second}");
    assert_eq!(env.connector(CH).await["status"], "disconnected");

    // The admin pastes the new key: connected again.
    env.sim.clear_requests();
    let r = env.retoken(CH, &second_key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "connected", "{}", r.body);
    // What template.yaml's budget arithmetic assumes of a token route (≤ 6 Gradient calls).
    let retoken_calls = env.sim.requests().stats.total;
    eprintln!("re-token: {retoken_calls} Gradient calls");
    assert!(
        retoken_calls <= 6,
        "a re-token made {retoken_calls} Gradient calls"
    );
    let ended = OffsetDateTime::now_utc();

    let events = probe.drain(&env, 5).await;
    let by_type =
        |t: &str| -> Vec<&Value> { events.iter().filter(|e| e["detail-type"] == t).collect() };
    assert_eq!(events.len(), 5, "{events:#?}");
    for e in &events {
        assert_eq!(e["source"], "coro.psa", "{e}");
    }

    // PSA Sync Finished: once per run, the run as the API shows it.
    let finished = by_type("PSA Sync Finished");
    assert_eq!(finished.len(), 2, "{events:#?}");
    for run in [&first, &second] {
        let e = finished
            .iter()
            .find(|e| e["detail"]["runId"] == run["runId"])
            .unwrap_or_else(|| panic!("no event for run {}: {events:#?}", run["runId"]));
        assert_eq!(
            e["detail"],
            json!({
                "workspaceId": CH,
                "connectorId": "gradient",
                "runId": run["runId"],
                "trigger": "on_demand",
                "status": run["status"],
                "counts": run["counts"],
                "queuedAt": run["queuedAt"],
                "finishedAt": run["finishedAt"],
            }),
            "{e}"
        );
    }

    // PSA Connector Status Changed: connect (from nothing), 401 (disconnected), re-token.
    let mut changed = by_type("PSA Connector Status Changed");
    changed.sort_by_key(|e| parse_time(&e["detail"]["at"]));
    let transitions: Vec<(Value, Value, Value)> = changed
        .iter()
        .map(|e| {
            let d = &e["detail"];
            (
                d["from"].clone(),
                d["to"].clone(),
                d["statusReason"].clone(),
            )
        })
        .collect();
    assert_eq!(
        transitions,
        vec![
            (Value::Null, json!("connected"), Value::Null),
            (
                json!("connected"),
                json!("disconnected"),
                json!("token_rejected")
            ),
            (json!("disconnected"), json!("connected"), Value::Null),
        ],
        "{changed:#?}"
    );
    for e in &changed {
        let d = &e["detail"];
        assert_eq!(d["workspaceId"], CH);
        assert_eq!(d["connectorId"], "gradient");
        let mut want: BTreeSet<&str> = ["workspaceId", "connectorId", "from", "to", "at"].into();
        if !d["statusReason"].is_null() {
            want.insert("statusReason");
        }
        assert_eq!(keys(d), want, "{d}");
        let at = parse_time(&d["at"]);
        assert!(at >= started && at <= ended, "{d}");
    }
    // The disconnection happened during the second run.
    let disconnected_at = parse_time(&changed[1]["detail"]["at"]);
    assert!(
        disconnected_at >= parse_time(&second["startedAt"]),
        "{second}"
    );
    assert!(
        disconnected_at <= parse_time(&second["finishedAt"]),
        "{second}"
    );

    // Never a token, a key or the GRADIENT-TOKEN header in an event.
    let vendor_key = env.sim.vendor_key();
    let all = serde_json::to_string(&events).expect("json");
    for (what, secret) in [
        ("the first partner key", first_key.clone()),
        ("the second partner key", second_key.clone()),
        ("the vendor key", vendor_key.clone()),
        ("a GRADIENT-TOKEN", gradient_token(&vendor_key, &first_key)),
        ("a GRADIENT-TOKEN", gradient_token(&vendor_key, &second_key)),
    ] {
        assert!(!all.contains(&secret), "{what} is in an event");
    }

    // A connect of another MSP once the vendor's services exist: also within the assumption.
    const OTHER: &str = "msp_events_2";
    seed(&env, OTHER).await;
    let other = env.sim.create_organization("Other MSP");
    env.sim.clear_requests();
    let r = env.connect(OTHER, &other.partner_key).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let connect_calls = env.sim.requests().stats.total;
    eprintln!("connect (2 accounts, services known): {connect_calls} Gradient calls");
    assert!(
        connect_calls <= 6,
        "a connect made {connect_calls} Gradient calls"
    );

    // The in-process core wrote the metrics of the same story: a record per run, a disconnection.
    let metrics: Vec<Value> = env
        .metrics()
        .into_iter()
        .filter(|m| m["workspaceId"] == CH)
        .collect();
    for run in [&first, &second] {
        let records: Vec<&Value> = metrics
            .iter()
            .filter(|m| m["runId"] == run["runId"])
            .collect();
        assert_eq!(records.len(), 1, "{metrics:#?}");
        assert_eq!(records[0]["Status"], run["status"]);
        assert_eq!(records[0]["Posted"], run["counts"]["posted"]);
    }
    let disconnections: Vec<&Value> = metrics
        .iter()
        .filter(|m| m.get("Disconnections").is_some())
        .collect();
    assert_eq!(disconnections.len(), 1, "{metrics:#?}");
    assert_eq!(disconnections[0]["statusReason"], "token_rejected");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bus_that_refuses_events_fails_neither_a_request_nor_a_run() {
    const CH: &str = "msp_nobus";
    let mut env = TestEnv::start("nobus").await;
    env.use_event_bus("no-such-bus-anywhere");
    seed(&env, CH).await;
    let org = env.sim.create_organization("Obs MSP");
    let r = env.connect(CH, &org.partner_key).await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    let run = sync(&env, CH).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["counts"]["posted"], 4, "{run}");
    assert_eq!(env.connector(CH).await["lastSync"]["runId"], run["runId"]);
    let warned = logs::captured_here()
        .lines()
        .filter(|l| l.contains("could not publish events") && l.contains("\"WARN\""))
        .count();
    assert!(
        warned >= 2,
        "the failed publishes (connect, run) are logged at warn"
    );
}

/// Every span field of a JSON log line, outer spans first (inner ones override).
fn span_fields(line: &Value) -> Map<String, Value> {
    let mut out = Map::new();
    for span in line["spans"].as_array().into_iter().flatten() {
        for (k, v) in span.as_object().into_iter().flatten() {
            out.insert(k.clone(), v.clone());
        }
    }
    out
}

fn span_names(line: &Value) -> Vec<&str> {
    line["spans"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["name"].as_str())
        .collect()
}

/// The JSON lines a process wrote on stdout: (log lines, EMF records).
fn split_stdout(stdout: &str) -> (Vec<Value>, Vec<Value>) {
    let lines: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .collect();
    lines.into_iter().partition(|l| l.get("_aws").is_none())
}

/// The log lines printed while the runtime was invoking the handler, each with its span fields.
fn invocation_lines(logs: &[Value]) -> Vec<(&Value, Map<String, Value>)> {
    logs.iter()
        .filter(|l| span_names(l).contains(&"Lambda runtime invoke"))
        .map(|l| (l, span_fields(l)))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binaries_write_one_emf_record_per_run_and_log_with_ids() {
    const CH: &str = "msp_emf";
    let env = TestEnv::start_with("emf", SimConfig::default(), test_gradient_config(), 80).await;
    seed(&env, CH).await;
    let org = env.sim.create_organization("Obs MSP");
    let rust_log = "info,psa_domain=debug,psa_gradient=debug,psa_http=debug,connectors_api=debug,sync_worker=debug";
    let mut vars = contract_env(&env.platform.settings);
    vars.push(("RUST_LOG".into(), rust_log.into()));
    let dump = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("observability");
    let mut api = FunctionProcess::spawn("connectors-api", &vars, &dump).await;
    let mut worker = FunctionProcess::spawn("sync-worker", &vars, &dump).await;

    // Connect through the real API binary.
    let admin = Claims::admin(CH);
    let body = json!({"type": "gradient", "apiToken": org.partner_key}).to_string();
    let event = http_event_json("POST", "/v1/psa/connectors", Some(&admin), Some(&body));
    let connect = HttpAnswer::from_outcome(&api.invoke(&event).await);
    assert_eq!(connect.status, 201, "{}", connect.body);

    // One pair unmapped (404), and a third of Gradient's answers 429 (retried): the record's
    // numbers must be the run's counts and exactly what the simulator saw.
    let ids = harness::fixture::service_ids(&env).await;
    let unmapped = gradient_sim::Pair::new(format!("{CH}_b"), ids["CLOUD_SECURITY"].clone());
    assert!(env.sim.map_all(&org.organization_id, &[unmapped]));
    let r = env.sync_now(CH).await;
    assert_eq!(r.status, 202, "{}", r.body);
    let run_id = r.json()["runId"].as_str().expect("runId").to_owned();
    let jobs = {
        let mut jobs = Vec::new();
        for _ in 0..20 {
            jobs = env.receive(120).await;
            if !jobs.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        jobs
    };
    assert_eq!(jobs.len(), 1, "one job on the queue");
    env.sim.clear_requests();
    env.sim.set_faults(Faults {
        rate429: 0.34,
        ..Faults::default()
    });
    let invoked = Instant::now();
    let batch = worker.invoke(&sqs_event_json(&jobs)).await;
    let took = invoked.elapsed();
    env.sim.clear_faults();
    let Outcome::Response(_) = &batch else {
        panic!("the worker failed: {batch:?}")
    };
    assert_eq!(batch.json()["batchItemFailures"], json!([]), "{batch:?}");
    let seen = env.sim.requests().stats;
    let run = env.run(CH, &run_id).await;
    assert_ne!(run["status"], "running", "{run}");
    assert_eq!(run["counts"]["unmapped"], 1, "{run}");

    tokio::time::sleep(Duration::from_millis(300)).await;
    let api_out = api.stop();
    let worker_out = worker.stop();
    let (worker_logs, records) = split_stdout(&worker_out.stdout);

    // Exactly one EMF record, for this run, with the contract's shape and the run's numbers.
    assert_eq!(records.len(), 1, "{records:#?}");
    let m = &records[0];
    let aws = &m["_aws"];
    assert!(aws["Timestamp"].as_i64().is_some_and(|t| t > 0), "{m}");
    let directive = &aws["CloudWatchMetrics"][0];
    assert_eq!(directive["Namespace"], "Coro/PSA", "{m}");
    assert_eq!(directive["Dimensions"], json!([["Status"]]), "{m}");
    let names: Vec<&str> = directive["Metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|d| d["Name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "Readings",
            "Posted",
            "Unchanged",
            "Unmapped",
            "SkippedDisabled",
            "Failed",
            "Held",
            "GradientCalls",
            "Throttled",
            "DurationMs"
        ]
    );
    assert_eq!(m["Status"], run["status"], "{m}");
    assert_eq!(m["runId"], run_id.as_str(), "{m}");
    assert_eq!(m["workspaceId"], CH, "a property: {m}");
    assert_eq!(m["connectorId"], "gradient", "{m}");
    for (metric, count) in [
        ("Readings", "readings"),
        ("Posted", "posted"),
        ("Unchanged", "unchanged"),
        ("Unmapped", "unmapped"),
        ("SkippedDisabled", "skippedDisabled"),
        ("Failed", "failed"),
        ("Held", "held"),
    ] {
        assert_eq!(m[metric], run["counts"][count], "{metric}: {m} vs {run}");
    }
    assert!(
        seen.total >= 8,
        "set-up and posts reached the simulator: {seen:?}"
    );
    assert_eq!(
        m["GradientCalls"], seen.total,
        "every attempt: {m} vs {seen:?}"
    );
    let throttled = seen.by_status.get(&429).copied().unwrap_or(0);
    assert!(
        throttled > 0,
        "the fault injection answered some 429s: {seen:?}"
    );
    assert_eq!(m["Throttled"], throttled, "{m} vs {seen:?}");
    let duration = m["DurationMs"].as_u64().expect("DurationMs");
    assert!(
        duration as u128 <= took.as_millis(),
        "{duration} ms > {took:?}"
    );

    // Every log line of the job carries the request id and the workspace, connector and run.
    let lines = invocation_lines(&worker_logs);
    let in_job: Vec<_> = lines
        .iter()
        .filter(|(l, _)| span_names(l).contains(&"job"))
        .collect();
    assert!(in_job.len() >= 3, "{} job lines", in_job.len());
    for (line, fields) in &lines {
        let lambda_id = fields.get("requestId").and_then(Value::as_str);
        assert!(lambda_id.is_some_and(|id| !id.is_empty()), "{line}");
        assert_eq!(
            fields.get("request_id").and_then(Value::as_str),
            lambda_id,
            "the Lambda request id on our own span: {line}"
        );
    }
    for (line, fields) in &in_job {
        assert_eq!(fields["workspace_id"], CH, "{line}");
        assert_eq!(fields["connector_id"], "gradient", "{line}");
        assert_eq!(fields["run_id"], run_id.as_str(), "{line}");
    }
    // Only start-up lines are outside an invocation.
    let outside = worker_logs.len() - lines.len();
    assert!(
        outside <= 2,
        "{outside} worker lines outside an invocation: {worker_logs:#?}"
    );

    // The API's lines of the connect: request id, workspace, connector.
    let (api_logs, api_records) = split_stdout(&api_out.stdout);
    assert!(
        api_records.is_empty(),
        "a connect finishes no run: {api_records:#?}"
    );
    let lines = invocation_lines(&api_logs);
    assert!(!lines.is_empty(), "the connect logged: {api_logs:#?}");
    for (line, fields) in &lines {
        assert!(span_names(line).contains(&"request"), "{line}");
        assert_eq!(fields.get("request_id"), fields.get("requestId"), "{line}");
        assert_eq!(fields["workspace_id"], CH, "{line}");
        assert_eq!(fields["connector_id"], "gradient", "{line}");
    }
}
