//! The console is a web page on another origin (contract *Browser console*): the local front of
//! `make serve` answers CORS as the template configures the HTTP API, and a real browser —
//! headless Chromium from Debian, driven by Playwright for Python (`tests/browser/console.py`) —
//! lists connectors, PATCHes settings, asks for a sync (reading `Location`), meets the
//! workspace's rate (reading `Retry-After`); from an origin not configured, the browser does not let the page read.

use harness::front::{self, local_jwt};
use harness::{Claims, TestEnv};
use serde_json::Value;
use std::sync::Arc;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_calls_the_api_from_its_own_origin_in_a_real_browser() {
    let mut env = TestEnv::start("browser").await;
    let sample = front::seed_sample(&env, 3).await;
    // The contract's per-workspace rate is 20/s; a lower one lets a burst of 12 from the page
    // meet it.
    env.api.limiter = Arc::new(psa_http::limit::WorkspaceLimiter::new(8));
    let env = Arc::new(env);
    let (allowed, other) = (free_port(), free_port());
    let origin = format!("http://127.0.0.1:{allowed}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(front::serve(
        env.clone(),
        listener,
        Default::default(),
        vec![origin.clone()],
    ));

    // The preflight, as the browser sends it before a PATCH with a bearer token.
    let http = reqwest::Client::new();
    let preflight = |from: &str| {
        http.request(
            reqwest::Method::OPTIONS,
            format!("{api}/v1/psa/connectors/gradient"),
        )
        .header("origin", from)
        .header("access-control-request-method", "PATCH")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
    };
    let r = preflight(&origin).await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], origin.as_str());
    assert_eq!(h["access-control-max-age"], "600");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET, POST, PUT, PATCH, DELETE"
    );
    assert_eq!(
        h["access-control-allow-headers"],
        "authorization, content-type"
    );
    let r = preflight(&format!("http://127.0.0.1:{other}"))
        .await
        .unwrap();
    assert!(
        !r.headers().contains_key("access-control-allow-origin"),
        "no wildcard: another origin gets nothing"
    );

    // The browser.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = root.join(".local/venv/bin/python");
    let script = root.join("tests/browser/console.py");
    let jwt = local_jwt(&Claims::admin(&sample.channel));
    let args = [api.clone(), jwt, allowed.to_string(), other.to_string()];
    let run = {
        let (python, script) = (python.clone(), script.clone());
        move || {
            std::process::Command::new(&python)
                .arg(&script)
                .args(&args)
                .output()
        }
    };
    let out = tokio::task::spawn_blocking(run)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{} cannot run ({e}): scripts/install.sh", python.display()));
    assert!(
        out.status.success(),
        "the browser run failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let seen: Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
    let c = &seen["console"];
    println!("{}", seen["userAgent"]);
    assert_eq!(c["list"]["status"], 200, "{seen}");
    assert_eq!(c["list"]["body"]["items"][0]["id"], "gradient", "{seen}");
    assert_eq!(c["patch"]["status"], 200, "{seen}");
    assert_eq!(c["patch"]["body"]["settings"]["psaAlerts"], true, "{seen}");
    assert_eq!(c["sync"]["status"], 202, "{seen}");
    let run = c["sync"]["body"]["runId"].as_str().expect("runId");
    assert_eq!(
        c["sync"]["location"],
        format!("/v1/psa/connectors/gradient/syncs/{run}"),
        "Location is exposed to the page"
    );
    assert_eq!(c["again"]["status"], 409, "{seen}");
    assert_eq!(c["again"]["body"]["code"], "sync_in_progress");
    assert_eq!(c["burst"]["status"], 429, "{seen}");
    assert_eq!(c["burst"]["body"]["code"], "too_many_requests");
    let wait: u64 = c["burst"]["retryAfter"]
        .as_str()
        .expect("Retry-After is exposed to the page")
        .parse()
        .unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(seen["otherOrigin"], "blocked", "{seen}");
}
