//! The functions' log set-up: JSON lines on stdout (one object per line, as CloudWatch wants them),
//! levels from `RUST_LOG` — with a ceiling for every crate that is not ours.
//!
//! Why the ceiling: at `trace`, crates below us print what passes through them. lambda_runtime
//! traces the raw invocation event (`raw JSON event received from Lambda`, the body of a connect
//! or re-token request with its `apiToken`); the AWS SDK's orchestrator (aws_smithy_runtime)
//! traces requests and deserialized responses (a Secrets Manager `SecretString`: the vendor key,
//! the partner keys) and SigV4 signing (aws_sigv4) its canonical request; HTTP crates (hyper_util,
//! h2) trace connection and header frames. None of that may reach a log line, whatever an operator
//! sets `RUST_LOG` to.
//!
//! How: the `RUST_LOG` [`EnvFilter`] is ANDed with [`DependencyCap`], which lets through events and
//! spans of our own crates ([`OWN_CRATES`]) at any level and those of every other target only up
//! to [`DEPENDENCY_MAX_LEVEL`] (`info`). It is deny-by-default on purpose: a crate added to the
//! tree later is capped without anyone having to remember it. Appending `lambda_runtime=info`-style
//! directives to the `EnvFilter` instead would not hold: `EnvFilter` picks the *most specific*
//! matching directive, so `RUST_LOG=lambda_runtime::layers=trace` or a span directive
//! (`[Lambda runtime invoke]=trace`) would still enable the trace (the unit tests show both).

use std::io;
use tracing::{Level, Metadata};
use tracing_subscriber::filter::{EnvFilter, FilterExt, LevelFilter};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, Filter, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The most verbose level any target outside [`OWN_CRATES`] may log at, whatever `RUST_LOG` says.
pub const DEPENDENCY_MAX_LEVEL: LevelFilter = LevelFilter::INFO;

/// Level used when `RUST_LOG` is unset or cannot be parsed.
pub const DEFAULT_DIRECTIVES: &str = "info";

/// Crates of this workspace (the targets `tracing` gives their events and spans: `crate::module`),
/// which keep whatever level `RUST_LOG` gives them. They log secrets only as redacted types.
pub const OWN_CRATES: &[&str] = &[
    "psa_domain",
    "psa_store",
    "psa_secrets",
    "psa_gradient",
    "psa_runtime",
    "psa_mail",
    "psa_http",
    "connectors_api",
    "sync_on_demand",
    "sync_scheduled",
    "sync_worker",
    "sync_notifier",
    "gradient_sim",
    "devkit",
    "harness",
];

/// Whether `target` belongs to one of [`OWN_CRATES`]: the crate name itself or a module of it
/// (`psa_domain::usecase`), never a look-alike (`psa_domainx`).
pub fn is_own_target(target: &str) -> bool {
    OWN_CRATES.iter().any(|krate| {
        target
            .strip_prefix(krate)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Whether an event or span at `level` from `target` may be logged at all (before `RUST_LOG`).
pub fn within_cap(target: &str, level: &Level) -> bool {
    *level <= DEPENDENCY_MAX_LEVEL || is_own_target(target)
}

/// The ceiling for targets outside [`OWN_CRATES`]; see the module doc. Decided per callsite from
/// static metadata only (target and level), so `tracing` caches the answer: no per-event cost.
#[derive(Debug, Clone, Copy, Default)]
pub struct DependencyCap;

impl<S> Filter<S> for DependencyCap {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        within_cap(meta.target(), meta.level())
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> tracing::subscriber::Interest {
        if within_cap(meta.target(), meta.level()) {
            tracing::subscriber::Interest::always()
        } else {
            tracing::subscriber::Interest::never()
        }
    }

    /// Our crates may log at any level, so the cap adds no hint; `RUST_LOG`'s hint stays in force
    /// (the `And` takes the lower of the two), which keeps `tracing`'s fast path at `info`.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(LevelFilter::TRACE)
    }
}

/// The `EnvFilter` for a `RUST_LOG` value (`None`: unset), falling back to
/// [`DEFAULT_DIRECTIVES`] when it is unset or does not parse. Second value: it did not parse.
fn env_filter(rust_log: Option<&str>) -> (EnvFilter, bool) {
    match rust_log.map(EnvFilter::try_new) {
        Some(Ok(filter)) => (filter, false),
        Some(Err(_)) => (EnvFilter::new(DEFAULT_DIRECTIVES), true),
        None => (EnvFilter::new(DEFAULT_DIRECTIVES), false),
    }
}

/// What the functions log: `RUST_LOG` (see [`env_filter`]) AND [`DependencyCap`].
pub fn filter<S>(rust_log: Option<&str>) -> impl Filter<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    env_filter(rust_log).0.and(DependencyCap)
}

/// The functions' JSON layer (no time: CloudWatch stamps lines; no target; no current span, the
/// span list carries it) writing to `writer`, filtered by [`filter`].
pub fn json_layer<S, W>(rust_log: Option<&str>, writer: W) -> impl Layer<S> + Send + Sync + 'static
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(false)
        .with_target(false)
        .with_ansi(false)
        .without_time()
        .with_writer(writer)
        .with_filter(filter(rust_log))
}

/// Installs the process-wide subscriber: [`json_layer`] on stdout with the process's `RUST_LOG`.
/// Call once, first thing in `main`. Panics if a subscriber is already installed.
pub fn init_tracing() {
    let rust_log = std::env::var("RUST_LOG").ok();
    tracing_subscriber::registry()
        .with(json_layer(rust_log.as_deref(), io::stdout))
        .init();
    announce(rust_log.as_deref());
}

/// One line at start-up that says how logging is set up (debug: only seen when asked for).
fn announce(rust_log: Option<&str>) {
    if env_filter(rust_log).1 {
        tracing::warn!(
            rust_log,
            fallback = DEFAULT_DIRECTIVES,
            "RUST_LOG does not parse; logging at the default level"
        );
    }
    tracing::debug!(
        rust_log,
        dependency_max_level = %DEPENDENCY_MAX_LEVEL,
        "logging ready; crates outside this workspace are capped"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::Registry;

    /// Targets of crates compiled into the functions (see Cargo.lock) that trace requests,
    /// responses, headers or bodies, plus some that do not (yet): all capped.
    const CAPPED: &[&str] = &[
        "lambda_runtime",
        "lambda_runtime::layers::api_response",
        "lambda_runtime_api_client",
        "lambda_http",
        "hyper",
        "hyper_util::client::legacy::pool",
        "h2::codec::framed_write",
        "reqwest::connect",
        "rustls::client::hs",
        "tower::buffer::worker",
        "tower_http::trace",
        "aws_smithy_runtime::client::orchestrator",
        "aws_smithy_runtime_api::client::interceptors",
        "aws_smithy_http_client::hyper_1_0",
        "aws_smithy_http",
        "aws_smithy_observability",
        "aws_smithy_types",
        "aws_sdk_secretsmanager::operation::get_secret_value",
        "aws_sdk_dynamodb",
        "aws_sdk_sqs",
        "aws_sdk_sesv2",
        "aws_sdk_sts",
        "aws_config::default_provider",
        "aws_sigv4::http_request::sign",
        "aws_runtime::auth::sigv4",
        "aws_types",
        "aws_credential_types",
        "tokio",
        "log",
        "psa_domainx",
    ];

    const OURS: &[&str] = &[
        "psa_domain::usecase::connectors",
        "psa_store",
        "psa_secrets",
        "psa_gradient",
        "psa_runtime::logging",
        "psa_http::routes",
        "sync_on_demand",
        "sync_scheduled",
        "sync_worker",
        "sync_notifier",
        "psa_mail",
    ];

    /// Emits one event per level for each literal target (an event's target must be a constant);
    /// field `probe` carries the target, as the JSON layer prints no target.
    macro_rules! probe {
        ($($target:literal),* $(,)?) => {{
            $(
                tracing::event!(target: $target, Level::TRACE, probe = $target, "probe");
                tracing::event!(target: $target, Level::DEBUG, probe = $target, "probe");
                tracing::event!(target: $target, Level::INFO, probe = $target, "probe");
                tracing::event!(target: $target, Level::WARN, probe = $target, "probe");
                tracing::event!(target: $target, Level::ERROR, probe = $target, "probe");
            )*
        }};
    }

    fn emit_all() {
        probe!(
            "lambda_runtime",
            "lambda_runtime::layers::api_response",
            "lambda_runtime_api_client",
            "lambda_http",
            "hyper",
            "hyper_util::client::legacy::pool",
            "h2::codec::framed_write",
            "reqwest::connect",
            "rustls::client::hs",
            "tower::buffer::worker",
            "tower_http::trace",
            "aws_smithy_runtime::client::orchestrator",
            "aws_smithy_runtime_api::client::interceptors",
            "aws_smithy_http_client::hyper_1_0",
            "aws_smithy_http",
            "aws_smithy_observability",
            "aws_smithy_types",
            "aws_sdk_secretsmanager::operation::get_secret_value",
            "aws_sdk_dynamodb",
            "aws_sdk_sqs",
            "aws_sdk_sesv2",
            "aws_sdk_sts",
            "aws_config::default_provider",
            "aws_sigv4::http_request::sign",
            "aws_runtime::auth::sigv4",
            "aws_types",
            "aws_credential_types",
            "tokio",
            "log",
            "psa_domainx",
            "psa_domain::usecase::connectors",
            "psa_store",
            "psa_secrets",
            "psa_gradient",
            "psa_runtime::logging",
            "psa_http::routes",
            "sync_on_demand",
            "sync_scheduled",
            "sync_worker",
            "sync_notifier",
            "psa_mail",
        );
    }

    /// `tracing`'s callsite interest cache and max-level hint are process-wide: scenarios with
    /// their own subscribers run one at a time so none sees another's answer.
    static SERIAL: Mutex<()> = Mutex::new(());

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            String::from_utf8(self.0.lock().unwrap().clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect()
        }
    }

    /// `"key":"value"` of a JSON line (values here hold no quotes).
    fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
        let start = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
        let len = line[start..].find('"')?;
        Some(&line[start..start + len])
    }

    fn level_of(name: &str) -> LevelFilter {
        name.parse().unwrap_or_else(|_| panic!("level {name}"))
    }

    /// Runs `body` under the production JSON layer built for `rust_log`; the lines it printed.
    fn with_production_layer(rust_log: Option<&str>, body: impl FnOnce()) -> Vec<String> {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = Registry::default().with(json_layer(rust_log, move || writer.clone()));
        tracing::subscriber::with_default(subscriber, body);
        out.lines()
    }

    /// Most verbose level each probed target got through the production layer.
    fn max_levels(rust_log: Option<&str>) -> BTreeMap<String, LevelFilter> {
        let mut max = BTreeMap::new();
        for line in with_production_layer(rust_log, emit_all) {
            let (Some(target), Some(level)) = (field(&line, "probe"), field(&line, "level")) else {
                continue;
            };
            let level = level_of(level);
            let entry = max.entry(target.to_owned()).or_insert(LevelFilter::OFF);
            *entry = (*entry).max(level);
        }
        max
    }

    fn assert_levels(rust_log: Option<&str>, capped: LevelFilter, ours: LevelFilter) {
        let got = max_levels(rust_log);
        let at = |t: &str| got.get(t).copied().unwrap_or(LevelFilter::OFF);
        for t in CAPPED {
            assert_eq!(at(t), capped, "RUST_LOG={rust_log:?}: target {t}");
        }
        for t in OURS {
            assert_eq!(at(t), ours, "RUST_LOG={rust_log:?}: target {t}");
        }
    }

    #[test]
    fn trace_everywhere_still_caps_dependencies_at_info() {
        assert_levels(Some("trace"), LevelFilter::INFO, LevelFilter::TRACE);
        assert_levels(Some("TRACE"), LevelFilter::INFO, LevelFilter::TRACE);
    }

    #[test]
    fn naming_a_dependency_at_trace_does_not_lift_the_cap() {
        let named = "trace,lambda_runtime=trace,lambda_runtime_api_client=trace,lambda_http=trace,\
                     hyper=trace,hyper_util=trace,h2=trace,reqwest=trace,rustls=trace,tower=trace,\
                     aws_smithy_runtime=trace,aws_smithy_runtime_api=trace,aws_smithy_http=trace,\
                     aws_smithy_http_client=trace,aws_sdk_secretsmanager=trace,aws_config=trace,\
                     aws_sigv4=trace,aws_runtime=trace";
        assert_levels(Some(named), LevelFilter::INFO, LevelFilter::TRACE);
        // More specific (longer) targets than the crate name, which EnvFilter prefers.
        let specific = "info,lambda_runtime::layers::api_response=trace,\
                        aws_smithy_runtime::client::orchestrator=trace,aws_sigv4::http_request=trace";
        let got = max_levels(Some(specific));
        for t in [
            "lambda_runtime::layers::api_response",
            "aws_smithy_runtime::client::orchestrator",
            "aws_sigv4::http_request::sign",
        ] {
            assert_eq!(got[t], LevelFilter::INFO, "{t}");
        }
    }

    #[test]
    fn the_cap_is_a_ceiling_not_a_floor() {
        assert_levels(Some("warn"), LevelFilter::WARN, LevelFilter::WARN);
        assert_levels(
            Some("error,lambda_runtime=error"),
            LevelFilter::ERROR,
            LevelFilter::ERROR,
        );
        assert_levels(Some("off"), LevelFilter::OFF, LevelFilter::OFF);
    }

    #[test]
    fn our_crates_keep_the_level_rust_log_gives_them() {
        let got = max_levels(Some("info,psa_domain=trace,sync_worker=debug"));
        assert_eq!(got["psa_domain::usecase::connectors"], LevelFilter::TRACE);
        assert_eq!(got["sync_worker"], LevelFilter::DEBUG);
        assert_eq!(got["psa_store"], LevelFilter::INFO);
        assert_eq!(got["lambda_runtime"], LevelFilter::INFO);
        // A look-alike of our crate names is not ours.
        assert!(!is_own_target("psa_domainx"));
        assert!(is_own_target("psa_domain"));
        assert!(is_own_target("psa_domain::usecase"));
    }

    #[test]
    fn unset_or_malformed_rust_log_means_info() {
        assert_levels(None, LevelFilter::INFO, LevelFilter::INFO);
        assert_levels(
            Some("trace,lambda_runtime=[bad"),
            LevelFilter::INFO,
            LevelFilter::INFO,
        );
    }

    #[test]
    fn a_span_directive_does_not_lift_the_cap() {
        // EnvFilter enables everything inside a span named in `[...]`, whatever its target.
        let lines = with_production_layer(Some("info,[Lambda runtime invoke]=trace"), || {
            let span = tracing::info_span!(target: "lambda_runtime", "Lambda runtime invoke");
            let _in = span.enter();
            tracing::trace!(target: "lambda_runtime::layers::api_response", probe = "dependency", "raw JSON event received from Lambda");
            tracing::trace!(target: "psa_domain", probe = "ours", "ours");
        });
        assert_eq!(probes(&lines), ["ours"], "{lines:#?}");
    }

    #[test]
    fn dependency_spans_above_info_are_dropped_too() {
        // Span fields are printed in every event's span list: a debug span of the SDK would carry
        // its fields into our lines.
        let lines = with_production_layer(Some("trace"), || {
            let sdk = tracing::debug_span!(target: "aws_smithy_runtime::client::orchestrator", "invoke", secret = "s3cr3t");
            let _in = sdk.enter();
            tracing::info!(target: "psa_secrets", probe = "ours", "inside");
        });
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(!lines[0].contains("s3cr3t"), "{}", lines[0]);
    }

    /// Runs `body` under a plain JSON layer filtered by `filter` alone; the lines it printed.
    fn with_filter_alone(
        filter: impl Filter<Registry> + Send + Sync + 'static,
        body: impl FnOnce(),
    ) -> Vec<String> {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let out = Captured::default();
        let writer = out.clone();
        let subscriber = Registry::default().with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || writer.clone())
                .with_filter(filter),
        );
        tracing::subscriber::with_default(subscriber, body);
        out.lines()
    }

    fn probes(lines: &[String]) -> Vec<&str> {
        lines.iter().filter_map(|l| field(l, "probe")).collect()
    }

    /// What the cap guards against: EnvFilter alone cannot be made to hold a ceiling by appending
    /// directives, because the most specific matching directive wins; for the same target the
    /// last directive wins.
    #[test]
    fn env_filter_alone_prefers_the_most_specific_directive() {
        let emit = || {
            tracing::trace!(target: "lambda_runtime::layers::api_response", probe = "specific", "x");
            tracing::trace!(target: "lambda_runtime", probe = "crate", "x");
            tracing::info!(target: "lambda_runtime", probe = "crate-info", "x");
        };
        let env = EnvFilter::new("trace,lambda_runtime=info,lambda_runtime::layers=trace");
        let lines = with_filter_alone(env, emit);
        assert_eq!(probes(&lines), ["specific", "crate-info"], "{lines:#?}");

        let env = EnvFilter::new("lambda_runtime=trace,lambda_runtime=info");
        let lines = with_filter_alone(env, emit);
        assert_eq!(probes(&lines), ["crate-info"], "{lines:#?}");

        // The same appended ceiling, now ANDed with the cap: nothing above info gets through.
        let env = EnvFilter::new("trace,lambda_runtime=info,lambda_runtime::layers=trace");
        let lines = with_filter_alone(env.and(DependencyCap), emit);
        assert_eq!(probes(&lines), ["crate-info"], "{lines:#?}");
    }

    #[test]
    fn the_start_up_line_is_debug_and_names_the_cap() {
        let lines = with_production_layer(Some("debug"), || announce(Some("debug")));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert_eq!(field(&lines[0], "level"), Some("DEBUG"));
        assert_eq!(field(&lines[0], "dependency_max_level"), Some("info"));
        let lines = with_production_layer(Some("info"), || announce(Some("info")));
        assert!(lines.is_empty(), "{lines:#?}");
        let lines = with_production_layer(Some("trace,x=[bad"), || announce(Some("trace,x=[bad")));
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert_eq!(field(&lines[0], "level"), Some("WARN"));
    }
}
