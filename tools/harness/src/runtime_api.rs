//! The real function binaries as child processes, fed by a minimal Lambda Runtime API emulator.
//!
//! [`RuntimeApi`] serves the part of the Runtime API that `lambda_runtime` uses
//! (`GET /2018-06-01/runtime/invocation/next`, `POST .../invocation/{id}/response`,
//! `POST .../invocation/{id}/error`, `POST /2018-06-01/runtime/init/error`) on 127.0.0.1 and a free
//! port. [`FunctionProcess`] starts `target/debug/<binary>` against its own emulator with
//! `AWS_LAMBDA_RUNTIME_API`, captures everything it writes to stdout and stderr, and invokes it
//! with raw event JSON ([`http_event_json`], [`sqs_event_json`]) exactly as Lambda would.

use crate::{Claims, HTTP_EVENT};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use psa_runtime::config::Settings;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path as FsPath, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

/// How long an invocation may take before it counts as hung (debug builds, local stack).
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(90);

/// The deadline each invocation gets (`Lambda-Runtime-Deadline-Ms`), as the worker's timeout.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(300);

/// What the function answered for one invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The body posted to `.../invocation/{id}/response` (the handler's JSON output).
    Response(String),
    /// `.../invocation/{id}/error`: `Lambda-Runtime-Function-Error-Type` and the body.
    Error {
        error_type: Option<String>,
        body: String,
    },
}

impl Outcome {
    /// The response as JSON; panics on an error outcome or a non-JSON body.
    pub fn json(&self) -> Value {
        match self {
            Outcome::Response(body) => serde_json::from_str(body)
                .unwrap_or_else(|e| panic!("the function answered non-JSON ({e}): {body}")),
            Outcome::Error { error_type, body } => {
                panic!("the function reported an error ({error_type:?}): {body}")
            }
        }
    }
}

struct Queued {
    request_id: String,
    deadline_ms: u64,
    body: String,
}

#[derive(Default)]
struct Shared {
    function_name: String,
    queue: Mutex<VecDeque<Queued>>,
    queued: Notify,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_error: Mutex<Option<String>>,
    next_id: AtomicU64,
    /// When the function first asked for an event: the end of its init.
    first_poll: Mutex<Option<Instant>>,
}

/// A Runtime API for one function process. Dropping it stops the server.
pub struct RuntimeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RuntimeApi {
    /// Binds 127.0.0.1 on a free port and serves until dropped.
    pub async fn start(function_name: &str) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the Runtime API emulator");
        let addr = listener.local_addr().expect("emulator address");
        let shared = Arc::new(Shared {
            function_name: function_name.to_owned(),
            ..Default::default()
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Self {
            addr,
            shared,
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `127.0.0.1:PORT`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an event for the next `GET .../next`; the receiver gets the function's answer.
    pub fn enqueue(&self, event: &Value) -> (String, oneshot::Receiver<Outcome>) {
        let n = self.shared.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let request_id = format!("{:08x}-0000-4000-8000-{n:012x}", std::process::id());
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiting
            .lock()
            .expect("waiting")
            .insert(request_id.clone(), tx);
        let deadline_ms = epoch_ms() + FUNCTION_TIMEOUT.as_millis() as u64;
        self.shared.queue.lock().expect("queue").push_back(Queued {
            request_id: request_id.clone(),
            deadline_ms,
            body: event.to_string(),
        });
        self.shared.queued.notify_one();
        (request_id, rx)
    }

    /// When the function first called `GET .../invocation/next` (its init was over).
    pub fn first_poll(&self) -> Option<Instant> {
        *self.shared.first_poll.lock().expect("first poll")
    }

    /// What the function posted to `/runtime/init/error`, if it did.
    pub fn init_error(&self) -> Option<String> {
        self.shared.init_error.lock().expect("init error").clone()
    }
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64
}

/// Long poll: answers when an event is queued, with the headers `lambda_runtime` reads.
async fn next(State(s): State<Arc<Shared>>) -> Response {
    s.first_poll
        .lock()
        .expect("first poll")
        .get_or_insert_with(Instant::now);
    let event = loop {
        let popped = { s.queue.lock().expect("queue").pop_front() };
        if let Some(e) = popped {
            break e;
        }
        s.queued.notified().await;
    };
    let arn = format!(
        "arn:aws:lambda:us-east-1:123456789012:function:{}",
        s.function_name
    );
    (
        StatusCode::OK,
        [
            ("content-type", "application/json".to_owned()),
            ("lambda-runtime-aws-request-id", event.request_id),
            ("lambda-runtime-deadline-ms", event.deadline_ms.to_string()),
            ("lambda-runtime-invoked-function-arn", arn),
            (
                "lambda-runtime-trace-id",
                "Root=1-6743a9c0-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"
                    .to_owned(),
            ),
        ],
        event.body,
    )
        .into_response()
}

fn finish(s: &Shared, id: &str, outcome: Outcome) -> Response {
    let waiter = s.waiting.lock().expect("waiting").remove(id);
    match waiter {
        Some(tx) => {
            let _ = tx.send(outcome);
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            r#"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#,
        )
            .into_response(),
    }
}

async fn response(State(s): State<Arc<Shared>>, Path(id): Path<String>, body: Bytes) -> Response {
    let body = String::from_utf8_lossy(&body).into_owned();
    finish(&s, &id, Outcome::Response(body))
}

async fn error(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = String::from_utf8_lossy(&body).into_owned();
    finish(&s, &id, Outcome::Error { error_type, body })
}

async fn init_error(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    *s.init_error.lock().expect("init error") = Some(String::from_utf8_lossy(&body).into_owned());
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}

// ---- raw events ------------------------------------------------------------------------------

/// The JSON of a real API Gateway v2 event (what Lambda hands the function) with the given
/// method, path (with an optional `?query`), claims (`None` = no authorizer context) and body;
/// [`crate::http_event`] parses it into a `lambda_http::Request`.
pub fn http_event_json(
    method: &str,
    path_and_query: &str,
    claims: Option<&Claims>,
    body: Option<&str>,
) -> Value {
    let mut v: Value = serde_json::from_str(HTTP_EVENT).expect("event fixture");
    let (path, query) = path_and_query
        .split_once('?')
        .unwrap_or((path_and_query, ""));
    v["rawPath"] = path.into();
    v["rawQueryString"] = query.into();
    v["requestContext"]["http"]["method"] = method.into();
    v["requestContext"]["http"]["path"] = path.into();
    match claims {
        Some(c) => {
            let claims = &mut v["requestContext"]["authorizer"]["jwt"]["claims"];
            claims["sub"] = c.sub.clone().into();
            claims["workspace_id"] = c.workspace_id.clone().into();
            claims["workspace_type"] = c.workspace_type.clone().into();
            claims["role"] = c.role.clone().into();
            if let Some(email) = &c.email {
                claims["email"] = email.clone().into();
            }
        }
        None => {
            v["requestContext"]
                .as_object_mut()
                .expect("object")
                .remove("authorizer");
        }
    }
    if let Some(b) = body {
        v["body"] = b.into();
    }
    v
}

/// The JSON of a real SQS → Lambda event for messages received from the queue
/// (the records of [`crate::sqs_event`]).
pub fn sqs_event_json(messages: &[aws_sdk_sqs::types::Message]) -> Value {
    serde_json::to_value(crate::sqs_event(messages)).expect("SQS event JSON")
}

/// An API Gateway v2 proxy answer (what lambda_http posts as the response).
#[derive(Debug, Clone)]
pub struct HttpAnswer {
    pub status: u16,
    pub headers: serde_json::Map<String, Value>,
    pub body: String,
}

impl HttpAnswer {
    pub fn from_outcome(outcome: &Outcome) -> Self {
        let v = outcome.json();
        Self {
            status: v["statusCode"]
                .as_u64()
                .unwrap_or_else(|| panic!("no statusCode in {v}")) as u16,
            headers: v["headers"].as_object().cloned().unwrap_or_default(),
            body: v["body"].as_str().unwrap_or_default().to_owned(),
        }
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(Value::as_str)
    }
}

// ---- the function processes ------------------------------------------------------------------

/// Where `cargo build --workspace --bins` put `name`: next to the running test's target dir
/// (`target/debug/deps/<test>` → `target/debug/`), else under `CARGO_TARGET_DIR`. Panics with
/// what to do when it is missing: a test that cannot run the binaries must not pass.
pub fn function_binary(name: &str) -> PathBuf {
    let mut candidates = Vec::new();
    if let Ok(exe) = std::env::current_exe() {
        let mut dir = exe.parent().map(FsPath::to_path_buf);
        if dir
            .as_ref()
            .is_some_and(|d| d.file_name().is_some_and(|n| n == "deps"))
        {
            dir = dir.and_then(|d| d.parent().map(FsPath::to_path_buf));
        }
        candidates.extend(dir.map(|d| d.join(name)));
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(t).join("debug").join(name));
    }
    candidates
        .iter()
        .find(|p| p.is_file())
        .cloned()
        .unwrap_or_else(|| {
            panic!(
                "the function binary `{name}` is missing (looked at {candidates:?}). Run the tests \
                 with `bash scripts/test.sh` — it builds them first with `cargo build --workspace \
                 --bins` — or build them yourself with that command"
            )
        })
}

/// The contract variables of `settings` (architecture.md, Configuration), for a child process.
pub fn contract_env(settings: &Settings) -> Vec<(String, String)> {
    let mut env = vec![
        ("PSA_TABLE", settings.psa_table.clone()),
        ("WORKSPACES_TABLE", settings.workspaces_table.clone()),
        ("GRADIENT_BASE_URL", settings.gradient_base_url.clone()),
        (
            "GRADIENT_VENDOR_KEY_SECRET_ID",
            settings.vendor_key_secret_id.clone(),
        ),
        ("TOKEN_SECRET_PREFIX", settings.token_secret_prefix.clone()),
        ("GRADIENT_MAX_RPS", settings.gradient_max_rps.to_string()),
        (
            "SYNC_COOLDOWN_SECONDS",
            settings.sync.cooldown.as_secs().to_string(),
        ),
        ("API_WORKSPACE_RPS", settings.api_workspace_rps.to_string()),
    ];
    if let Some(q) = &settings.sync_queue_url {
        env.push(("SYNC_QUEUE_URL", q.clone()));
    }
    if let Some(bus) = &settings.event_bus_name {
        env.push(("EVENT_BUS_NAME", bus.clone()));
    }
    if let Some(from) = &settings.notify_from {
        env.push(("NOTIFY_FROM", from.clone()));
    }
    if let Some(url) = &settings.console_url {
        env.push(("CONSOLE_URL", url.clone()));
    }
    env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

/// Everything one process wrote.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    pub function: String,
    pub stdout: String,
    pub stderr: String,
    /// `None` when it had to be killed (it was still polling for events, as a Lambda does).
    pub status: Option<ExitStatus>,
}

type Sink = Arc<Mutex<Vec<u8>>>;

fn pump(mut from: impl Read + Send + 'static, into: Sink) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => into.lock().expect("sink").extend_from_slice(&buf[..n]),
            }
        }
    })
}

/// One function binary running against its own [`RuntimeApi`], all output captured.
pub struct FunctionProcess {
    function: String,
    api: RuntimeApi,
    child: Option<Child>,
    stdout: Sink,
    stderr: Sink,
    pumps: Vec<std::thread::JoinHandle<()>>,
    dump_dir: PathBuf,
    started: Instant,
}

impl FunctionProcess {
    /// Starts `binary` with a clean environment: the Lambda variables lambda_runtime requires,
    /// `extra` (the contract, `RUST_LOG`), and the `AWS_*` variables of the local stack (endpoints,
    /// region, dummy credentials). Its output is also written to `dump_dir/<binary>.{stdout,stderr}`
    /// when it stops.
    pub async fn spawn(binary: &str, extra: &[(String, String)], dump_dir: &FsPath) -> Self {
        Self::spawn_program(binary, &function_binary(binary), &[], extra, dump_dir).await
    }

    /// [`FunctionProcess::spawn`] for any program speaking the Runtime API, named `function`
    /// (e.g. a release build of a function, or an interpreter with its script as `args`).
    pub async fn spawn_program(
        function: &str,
        path: &FsPath,
        args: &[String],
        extra: &[(String, String)],
        dump_dir: &FsPath,
    ) -> Self {
        let binary = function;
        let api = RuntimeApi::start(binary).await;
        let mut cmd = Command::new(path);
        cmd.args(args)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in std::env::vars() {
            let passed = (k.starts_with("AWS_") && !k.starts_with("AWS_LAMBDA_"))
                || k == "PATH"
                || k == "HOME";
            if passed {
                cmd.env(k, v);
            }
        }
        cmd.env("AWS_LAMBDA_RUNTIME_API", api.endpoint())
            .env("AWS_LAMBDA_FUNCTION_NAME", binary)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/24/[$LATEST]0123456789abcdef",
            )
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"));
        for (k, v) in extra {
            cmd.env(k, v);
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", path.display()));
        let (stdout, stderr) = (Sink::default(), Sink::default());
        let pumps = vec![
            pump(child.stdout.take().expect("stdout"), stdout.clone()),
            pump(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        std::fs::create_dir_all(dump_dir).expect("dump dir");
        Self {
            function: binary.to_owned(),
            api,
            child: Some(child),
            stdout,
            stderr,
            pumps,
            dump_dir: dump_dir.to_path_buf(),
            started,
        }
    }

    /// Process start → its first `GET .../invocation/next`, once it has asked; waits up to
    /// [`INVOKE_TIMEOUT`] for that, panicking if the process dies or reports an init error.
    pub async fn init_time(&mut self) -> Duration {
        let waited = Instant::now();
        loop {
            if let Some(at) = self.api.first_poll() {
                return at.duration_since(self.started);
            }
            if let Some(e) = self.api.init_error() {
                self.fail(&format!("reported an init error: {e}"));
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.fail(&format!("exited ({status}) during init"));
            }
            if waited.elapsed() > INVOKE_TIMEOUT {
                self.fail("did not finish its init");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// What the process wrote so far, stdout then stderr.
    pub fn captured(&self) -> String {
        let text = |s: &Sink| String::from_utf8_lossy(&s.lock().expect("sink")).into_owned();
        format!("{}{}", text(&self.stdout), text(&self.stderr))
    }

    /// The process's peak resident set so far (`VmHWM` of `/proc/PID/status`), in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let pid = self.child.as_ref()?.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    pub fn function(&self) -> &str {
        &self.function
    }

    /// Waits up to `limit` for the process to exit by itself (a start-up failure: it reports,
    /// then exits); whether it did. [`Self::stop`] then answers its own exit status, not a kill.
    pub async fn exits_within(&mut self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        loop {
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            if exited || Instant::now() >= until {
                return exited;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Invokes the function with `event` and waits for its answer. Panics if the process exits,
    /// reports an init error, or does not answer within [`INVOKE_TIMEOUT`].
    pub async fn invoke(&mut self, event: &Value) -> Outcome {
        let (request_id, mut rx) = self.api.enqueue(event);
        let started = Instant::now();
        loop {
            match tokio::time::timeout(Duration::from_millis(100), &mut rx).await {
                Ok(Ok(outcome)) => return outcome,
                Ok(Err(_)) => self.fail(&format!("the emulator dropped invocation {request_id}")),
                Err(_) => {}
            }
            if let Some(e) = self.api.init_error() {
                self.fail(&format!("reported an init error: {e}"));
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.fail(&format!("exited ({status}) before answering {request_id}"));
            }
            if started.elapsed() > INVOKE_TIMEOUT {
                self.fail(&format!(
                    "did not answer {request_id} within {INVOKE_TIMEOUT:?}"
                ));
            }
        }
    }

    fn fail(&mut self, why: &str) -> ! {
        let out = self.stop_inner();
        let tail: Vec<&str> = out.stderr.lines().rev().take(15).collect();
        panic!(
            "{}: {why}. Last stderr lines (newest first): {tail:#?}. Full output in {}",
            self.function,
            self.dump_dir.display()
        );
    }

    /// Stops the process (it is killed: like a Lambda it polls for events forever) and returns
    /// everything it wrote.
    pub fn stop(mut self) -> CapturedOutput {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> CapturedOutput {
        let mut status = None;
        if let Some(mut child) = self.child.take() {
            status = child.try_wait().ok().flatten();
            if status.is_none() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        for p in self.pumps.drain(..) {
            let _ = p.join();
        }
        let text = |s: &Sink| String::from_utf8_lossy(&s.lock().expect("sink")).into_owned();
        let out = CapturedOutput {
            function: self.function.clone(),
            stdout: text(&self.stdout),
            stderr: text(&self.stderr),
            status,
        };
        for (ext, body) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let _ = std::fs::write(self.dump_dir.join(format!("{}.{ext}", self.function)), body);
        }
        out
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.stop_inner();
        }
    }
}
