//! Property-based fuzzing of the API from `openapi.yaml` with schemathesis (`st`, installed into
//! `.local/venv` by `scripts/install.sh`), against the local HTTP front (`harness::front`, the
//! real handlers behind API Gateway v2 events) over the local stack: no server error, only
//! status codes, content types and response bodies the spec allows. 0 failures, ≥ 1,000 requests,
//! and some of them answered 2xx about the sample's connected connector.
//!
//! Knobs: `FUZZ_MAX_EXAMPLES` (per operation and phase, default 150), `FUZZ_SEED` (default a
//! fixed seed, so CI is repeatable; `random` for a new one each run).

use harness::front::{self, Stats, local_jwt};
use harness::{Claims, TestEnv};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance";
const DEFAULT_SEED: &str = "20261201";

fn root() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failure_in_the_api() {
    let st = root().join(".local/venv/bin/st");
    assert!(
        st.exists(),
        "{} is missing: run scripts/install.sh",
        st.display()
    );
    let env = TestEnv::start("fuzz").await;
    let sample = front::seed_sample(&env, 8).await;
    let env = Arc::new(env);
    let worker = front::spawn_worker(env.clone());
    // The fuzzer deletes the connector now and then; connect it again so most requests meet one.
    let reconnector =
        front::spawn_reconnector(env.clone(), sample.partner_key, Duration::from_millis(500));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let stats = Arc::new(Stats::default());
    let server = tokio::spawn(front::serve(
        env.clone(),
        listener,
        stats.clone(),
        Vec::new(),
    ));

    let max_examples = std::env::var("FUZZ_MAX_EXAMPLES").unwrap_or_else(|_| "150".into());
    let seed = std::env::var("FUZZ_SEED").unwrap_or_else(|_| DEFAULT_SEED.into());
    let auth = format!(
        "Authorization: Bearer {}",
        local_jwt(&Claims::admin(&sample.channel))
    );
    // st keeps a crash cache in its working directory: keep it in the git-ignored .local/.
    let work = root().join(".local/logs/schemathesis");
    std::fs::create_dir_all(&work).expect("schemathesis work dir");
    let spec = root().join("openapi.yaml");
    let mut cmd = Command::new(&st);
    cmd.current_dir(&work)
        .arg("run")
        .arg(&spec)
        .args(["--url", &url, "--checks", CHECKS])
        .args(["--max-examples", &max_examples, "-H", &auth])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--request-timeout", "30"])
        .env("NO_COLOR", "1");
    if seed != "random" {
        cmd.args(["--seed", &seed]);
    }
    let started = Instant::now();
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("st runs");
    let took = started.elapsed();
    server.abort();
    reconnector.abort();
    worker.abort();

    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let requests = stats.requests.load(Ordering::Relaxed);
    let connector_ok = stats.connector_ok.load(Ordering::Relaxed);
    let summary: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("WARNINGS") && !l.contains("SUMMARY"))
        .collect();
    println!(
        "schemathesis: {requests} requests ({connector_ok} answered 2xx about the connected \
         connector, {} 5xx) in {:.1}s, seed {seed}, max examples {max_examples}\n{}",
        stats.server_errors.load(Ordering::Relaxed),
        took.as_secs_f64(),
        summary.join("\n")
    );
    assert!(
        out.status.success(),
        "schemathesis found failures (exit {:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    assert!(
        requests >= 1_000,
        "only {requests} requests reached the front"
    );
    assert!(
        connector_ok >= 50,
        "only {connector_ok} requests met the connected connector"
    );
}

/// What the fuzzer cannot craft: a real `nextCursor` of each list with one key attribute edited.
/// An edited cursor is 400 `invalid_cursor` or a page, never a 5xx (an emptied `gsi1sk` once
/// reached DynamoDB and answered 500).
#[tokio::test]
async fn edited_cursors_answer_400_never_500() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let env = TestEnv::start("fuzz-cursors").await;
    let sample = front::seed_sample(&env, 4).await;
    harness::fixture::sync_and_wait(&env).await; // a second run: the run list has 2 pages
    let admin = Claims::admin(&sample.channel);
    let base = "/v1/psa/connectors/gradient";
    for list in [
        format!("{base}/syncs?limit=1"),
        format!("{base}/syncs/{}/readings?limit=1", sample.first_run),
        "/v1/psa/audit?limit=1".to_owned(),
    ] {
        let r = env.call("GET", &list, Some(&admin), None).await;
        assert_eq!(r.status, 200, "{list}: {}", r.body);
        let cursor = r.json()["nextCursor"]
            .as_str()
            .unwrap_or_else(|| panic!("{list}: no second page"))
            .to_owned();
        let key: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&cursor).unwrap()).unwrap();
        for name in key.keys() {
            for value in ["", "x", "RUN#", "\u{0}"] {
                let mut edited = key.clone();
                edited.insert(name.clone(), value.into());
                let c = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&edited).unwrap());
                let r = env
                    .call("GET", &format!("{list}&cursor={c}"), Some(&admin), None)
                    .await;
                assert!(
                    r.status == 200 || (r.status, r.code().as_str()) == (400, "invalid_cursor"),
                    "{list} with {name}={value:?}: {} {}",
                    r.status,
                    r.body
                );
            }
        }
    }
}

/// A dot segment in the path — plain or percent-encoded, as API Gateway passes it on — is part of
/// a path parameter, never a way to another route (lambda_http's URI resolves them).
#[tokio::test]
async fn dot_segments_never_lead_to_another_route() {
    let env = TestEnv::start("fuzz-dots").await;
    let sample = front::seed_sample(&env, 2).await;
    let admin = Claims::admin(&sample.channel);
    for path in [
        "/v1/psa/connectors/gradient/syncs/%2e%2e",
        "/v1/psa/connectors/gradient/syncs/..",
        "/v1/psa/connectors/gradient/syncs/%2E%2E/readings",
    ] {
        let r = env.call("GET", path, Some(&admin), None).await;
        assert_eq!(
            (r.status, r.code()),
            (404, "run_not_found".into()),
            "{path}: {}",
            r.body
        );
    }
    let r = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/syncs/../../../services",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
}
