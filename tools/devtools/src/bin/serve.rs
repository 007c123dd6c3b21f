//! `make serve`: the API on http://127.0.0.1:8080 over the local stack, for `curl` and tools.
//!
//! Creates its tables, queue and secrets, starts a Gradient simulator, seeds a sample MSP (channel
//! `msp`, connected, one finished sync), runs the sync worker in-process, and prints example
//! requests. Every request becomes an API Gateway v2 event for the real handlers
//! (`tools/harness/src/front.rs`).
//!
//! LOCAL ONLY: the caller's claims come from an unsigned JWT (`Authorization: Bearer
//! <header>.<payload>.`, base64url JSON with `sub`, `workspace_id`, `workspace_type`, `role`); no
//! signature is checked. In AWS, API Gateway's JWT authorizer does that.
//!
//! Options: `--port N` (or `PORT`; default 8080), `--children N` (managed workspaces, default
//! 12), `--cooldown SECS` (the on-demand cool-down, default 0 so "Sync now" can be repeated),
//! `--console-origin URL` (or `CONSOLE_ORIGIN`; default `http://127.0.0.1:8081`: the origin it
//! answers CORS for, as the template's `ConsoleOrigins`).

use harness::front::{self, local_jwt};
use harness::{Claims, TestEnv};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main]
async fn main() -> ExitCode {
    // Logs to stderr (the harness would otherwise capture them in memory).
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,harness=info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .init();
    let port: u16 = arg("--port")
        .or_else(|| std::env::var("PORT").ok())
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let children: usize = arg("--children").and_then(|n| n.parse().ok()).unwrap_or(12);
    let cooldown: u64 = arg("--cooldown").and_then(|n| n.parse().ok()).unwrap_or(0);
    // The console's origin the API answers CORS for (the template's `ConsoleOrigins`).
    let console_origin = arg("--console-origin")
        .or_else(|| std::env::var("CONSOLE_ORIGIN").ok())
        .unwrap_or_else(|| "http://127.0.0.1:8081".into());

    let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("serve: cannot listen on 127.0.0.1:{port}: {e} (try --port N)");
            return ExitCode::FAILURE;
        }
    };
    let mut env = TestEnv::start("serve").await;
    let sample = front::seed_sample(&env, children).await;
    env.api.policy.cooldown = Duration::from_secs(cooldown);
    let env = Arc::new(env);
    front::spawn_worker(env.clone());

    let base = format!("http://127.0.0.1:{port}");
    let admin = local_jwt(&Claims::admin(&sample.channel));
    let viewer = local_jwt(&Claims::viewer(&sample.channel));
    let child = local_jwt(&Claims::new("msp_w01", "child", "admin"));
    println!(
        r#"
serve: the PSA connectors API on {base} (LOCAL ONLY: unsigned JWTs, no signature checked)
  stack: DynamoDB tables {psa} / {ws}, queue {queue}, Gradient simulator {sim}
  sample MSP: channel `{ch}` ({children} managed workspaces), connected to organization {org};
  first sync run {run}; the sync worker runs in-process (POST .../sync completes in seconds).

  ADMIN="Authorization: Bearer {admin}"
  VIEWER="Authorization: Bearer {viewer}"
  CHILD="Authorization: Bearer {child}"

  curl -s -H "$ADMIN" {base}/v1/psa/connectors/gradient
  curl -s -H "$VIEWER" {base}/v1/psa/services
  curl -s -H "$ADMIN" -X POST {base}/v1/psa/connectors/gradient/sync -i
  curl -s -H "$VIEWER" '{base}/v1/psa/connectors/gradient/syncs?limit=5'
  curl -s -H "$VIEWER" {base}/v1/psa/connectors/gradient/syncs/{run}
  curl -s -H "$VIEWER" '{base}/v1/psa/connectors/gradient/syncs/{run}/readings?outcome=unmapped'
  curl -s -H "$VIEWER" '{base}/v1/psa/connectors/gradient/usage?state=new&limit=3'
  curl -s -H "$ADMIN" {base}/v1/psa/audit
  curl -s -H "$ADMIN" -X PATCH -H 'content-type: application/json' \
       -d '{{"settings": {{"guardDropPercent": 30, "psaAlerts": true}}}}' {base}/v1/psa/connectors/gradient
  curl -s -H "$ADMIN" -X PUT -H 'content-type: application/json' \
       -d '{{"apiToken": "{key}"}}' {base}/v1/psa/connectors/gradient/token
  curl -s -H "$ADMIN" -X DELETE {base}/v1/psa/connectors/gradient -i
  curl -s -H "$ADMIN" -X POST -H 'content-type: application/json' \
       -d '{{"type": "gradient", "apiToken": "{key}"}}' {base}/v1/psa/connectors -i
  curl -s -H "$CHILD" {base}/v1/psa/connectors      # 403 not_channel_workspace
  curl -s {base}/v1/psa/connectors                  # 401 unauthenticated
  curl -s -H "$VIEWER" '{base}/v1/psa/connectors/gradient/usage?format=csv'   # every line, CSV

  CORS for the console's origin {console_origin} (--console-origin), as the template's ConsoleOrigins:
  curl -s -i -X OPTIONS -H 'Origin: {console_origin}' -H 'Access-Control-Request-Method: PATCH' \
       -H 'Access-Control-Request-Headers: authorization,content-type' {base}/v1/psa/connectors/gradient

  A JWT for other claims: printf '%s.%s.' "$(printf '{{"alg":"none"}}' | base64 -w0 | tr '+/' '-_' | tr -d =)" \
       "$(printf '{{"sub":"u1","workspace_id":"msp","workspace_type":"channel","role":"viewer"}}' | base64 -w0 | tr '+/' '-_' | tr -d =)"
  The spec: openapi.yaml. Ctrl-C stops the server and the stack.
"#,
        psa = env.tables.psa,
        ws = env.tables.workspaces,
        queue = env.queue_url,
        sim = env.sim.base_url(),
        ch = sample.channel,
        console_origin = console_origin,
        org = sample.org_id,
        run = sample.first_run,
        key = sample.partner_key,
    );
    let serve = front::serve(
        env.clone(),
        listener,
        Default::default(),
        vec![console_origin.clone()],
    );
    tokio::select! {
        r = serve => {
            if let Err(e) = r {
                eprintln!("serve: {e}");
                return ExitCode::FAILURE;
            }
        }
        _ = tokio::signal::ctrl_c() => eprintln!("serve: stopping"),
    }
    ExitCode::SUCCESS
}
