//! `make startup`: init time and peak RSS of each function's release binary, beside a minimal
//! Python + boto3 function doing the same start-up, all against the Runtime API emulator
//! (`harness::runtime_api`) over the local stack (`scripts/stack.sh`).
//!
//! Per repetition each process starts fresh (a cold start): init = process start → its first
//! `GET /runtime/invocation/next`; then one invocation that does the function's real work on a
//! connected sample MSP (API: `GET /v1/psa/connectors/gradient`; on-demand: `POST .../sync`;
//! worker: the queued job, a real sync against the simulator; scheduler: the daily event, whose
//! job is then drained in-process); peak RSS = `VmHWM` of `/proc/PID/status` after it answered.
//! The Python function (`tools/devtools/startup/python_function.py`) builds boto3 clients for DynamoDB,
//! Secrets Manager and SQS and reads the vendor key secret during its init (what the worker does),
//! then answers each event after one DynamoDB read.
//!
//! Usage: `startup [--reps N] [--bins DIR] [--python PATH]` (defaults: 7, cargo-lambda's output
//! `target/lambda`, where each function is `<function>/bootstrap`; `.local/venv/bin/python`).
//! The binaries must be of this machine's architecture: `scripts/startup.sh` builds x86_64.

use harness::fixture::{CH, connected_msp};
use harness::runtime_api::{
    FunctionProcess, HttpAnswer, contract_env, http_event_json, sqs_event_json,
};
use harness::{Claims, TestEnv};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

const FUNCTIONS: [&str; 4] = [
    "connectors-api",
    "sync-on-demand",
    "sync-worker",
    "sync-scheduled",
];

#[derive(Default)]
struct Samples {
    init_ms: Vec<f64>,
    rss_kib: Vec<u64>,
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    }
}

fn range(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    (lo, v.iter().copied().fold(0.0, f64::max))
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

struct Run<'a> {
    env: &'a TestEnv,
    vars: Vec<(String, String)>,
    dump: PathBuf,
}

impl Run<'_> {
    async fn measure(
        &self,
        name: &str,
        program: &Path,
        args: &[String],
        event: &Value,
        check: impl Fn(&harness::runtime_api::Outcome),
        samples: &mut Samples,
    ) {
        let mut p =
            FunctionProcess::spawn_program(name, program, args, &self.vars, &self.dump).await;
        let init = p.init_time().await;
        let outcome = p.invoke(event).await;
        check(&outcome);
        let rss = p.peak_rss_kib().expect("VmHWM of the process");
        p.stop();
        samples.init_ms.push(init.as_secs_f64() * 1000.0);
        samples.rss_kib.push(rss);
    }

    async fn jobs(&self) -> Vec<aws_sdk_sqs::types::Message> {
        for _ in 0..50 {
            let batch = self.env.receive(120).await;
            if !batch.is_empty() {
                return batch;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no job reached the queue");
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let reps: usize = arg(&args, "--reps").map_or(7, |r| r.parse().expect("--reps N"));
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let bins = arg(&args, "--bins").map_or_else(|| root.join("target/lambda"), PathBuf::from);
    let python =
        arg(&args, "--python").map_or_else(|| root.join(".local/venv/bin/python"), PathBuf::from);
    let script = root.join("tools/devtools/startup/python_function.py");
    let bin = |f: &str| bins.join(f).join("bootstrap");
    for f in FUNCTIONS {
        assert!(
            bin(f).is_file(),
            "{} is missing: build the release binaries first (scripts/startup.sh does)",
            bin(f).display()
        );
    }

    let msp = connected_msp("startup", 20).await;
    let env = &msp.env;
    let mut vars = contract_env(&env.platform.settings);
    vars.push(("RUST_LOG".into(), "info".into()));
    let run = Run {
        env,
        vars,
        dump: std::env::temp_dir().join("psa-startup"),
    };
    let admin = Claims::admin(CH);
    let status = |want: u16| {
        move |o: &harness::runtime_api::Outcome| {
            let a = HttpAnswer::from_outcome(o);
            assert_eq!(a.status, want, "{}", a.body);
        }
    };
    let get = http_event_json("GET", "/v1/psa/connectors/gradient", Some(&admin), None);
    let post = http_event_json(
        "POST",
        "/v1/psa/connectors/gradient/sync",
        Some(&admin),
        None,
    );

    let mut results: Vec<(String, Samples)> = FUNCTIONS
        .iter()
        .map(|f| (f.to_string(), Samples::default()))
        .collect();
    let mut py = Samples::default();
    for rep in 0..reps {
        run.measure(
            "connectors-api",
            &bin("connectors-api"),
            &[],
            &get,
            status(200),
            &mut results[0].1,
        )
        .await;
        run.measure(
            "sync-on-demand",
            &bin("sync-on-demand"),
            &[],
            &post,
            status(202),
            &mut results[1].1,
        )
        .await;
        let jobs = run.jobs().await;
        let none_failed = |o: &harness::runtime_api::Outcome| {
            assert_eq!(o.json()["batchItemFailures"], json!([]), "{o:?}");
        };
        run.measure(
            "sync-worker",
            &bin("sync-worker"),
            &[],
            &sqs_event_json(&jobs),
            none_failed,
            &mut results[2].1,
        )
        .await;
        // A new scheduled time per repetition, so each one makes a run; drained in-process.
        let daily = json!({
            "version": "0", "id": format!("startup-{rep}"), "detail-type": "Scheduled Event",
            "source": "aws.events", "account": "123456789012",
            "time": format!("2026-11-{:02}T05:00:00Z", rep + 1), "region": "us-east-1",
            "resources": [], "detail": {}
        });
        let one_enqueued = |o: &harness::runtime_api::Outcome| {
            assert_eq!(o.json()["enqueued"], 1, "{o:?}");
        };
        run.measure(
            "sync-scheduled",
            &bin("sync-scheduled"),
            &[],
            &daily,
            one_enqueued,
            &mut results[3].1,
        )
        .await;
        assert!(env.drain().await >= 1, "the scheduled job ran");
        run.measure(
            "python+boto3",
            &python,
            &[script.display().to_string()],
            &get,
            status(200),
            &mut py,
        )
        .await;
        eprintln!("startup: repetition {}/{reps} done", rep + 1);
    }
    results.push(("python+boto3 (same start-up)".into(), py));

    println!(
        "\ninit = process start -> first GET /runtime/invocation/next; peak RSS = VmHWM after one invocation"
    );
    println!(
        "binaries: {}; {reps} cold starts each, median (min-max)\n",
        bins.display()
    );
    println!("| function | init ms | peak RSS MB |");
    println!("|---|---|---|");
    for (name, s) in &results {
        let rss: Vec<f64> = s.rss_kib.iter().map(|k| *k as f64 / 1024.0).collect();
        let ((lo, hi), (rlo, rhi)) = (range(&s.init_ms), range(&rss));
        println!(
            "| {name} | {:.1} ({lo:.1}-{hi:.1}) | {:.1} ({rlo:.1}-{rhi:.1}) |",
            median(&s.init_ms),
            median(&rss)
        );
    }
}
