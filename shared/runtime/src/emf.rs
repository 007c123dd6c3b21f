//! Metrics as CloudWatch Embedded Metric Format records: one JSON object per line on stdout,
//! written directly (not through the tracing formatter), which CloudWatch Logs turns into metrics
//! of namespace [`NAMESPACE`] (contract "Metrics").
//!
//! Why not `metrics_cloudwatch_embedded` (a backend for the `metrics` facade): it keeps one
//! process-wide registry whose counters and properties are flushed together per invocation, with
//! dimensions fixed per metric key. The contract wants one record per finished run, with that
//! run's status as dimension and its ids as properties; a process can finish several runs at once
//! (tests, `make serve`), and the record is built in the core from the run itself. A record is
//! a few lines of `serde_json`, so that is what this is.

use psa_domain::ports::Metrics;
use psa_domain::telemetry::Measurement;
use serde_json::{Map, Number, Value, json};
use std::io::Write;

/// Namespace of every metric of this project.
pub const NAMESPACE: &str = "Coro/PSA";

/// The EMF document of `m` stamped `timestamp_ms` (epoch milliseconds).
pub fn render(m: &Measurement, timestamp_ms: i64) -> Value {
    let dimension_keys: Vec<&str> = m.dimensions.iter().map(|d| d.0).collect();
    let metrics: Vec<Value> = m
        .values
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [dimension_keys],
                "Metrics": metrics,
            }],
        }),
    );
    for (k, v) in &m.dimensions {
        doc.insert((*k).into(), Value::String(v.clone()));
    }
    for (k, v) in &m.properties {
        doc.insert((*k).into(), Value::String(v.clone()));
    }
    for (name, value, _) in &m.values {
        let number = if value.fract() == 0.0 && *value >= 0.0 && *value < u64::MAX as f64 {
            Number::from(*value as u64)
        } else {
            Number::from_f64(*value).unwrap_or_else(|| Number::from(0))
        };
        doc.insert((*name).into(), Value::Number(number));
    }
    Value::Object(doc)
}

type Sink = Box<dyn Fn(&str) + Send + Sync>;

/// Writes each measurement as one EMF line.
pub struct EmfMetrics {
    sink: Sink,
}

impl EmfMetrics {
    /// To stdout, each record one `write` of one line (as the tracing layer writes its lines, so
    /// the two never interleave within a line).
    pub fn stdout() -> Self {
        Self::to(|line| {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(format!("{line}\n").as_bytes());
            let _ = out.flush();
        })
    }

    /// To `sink`, one call per record (tests capture them).
    pub fn to(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            sink: Box::new(sink),
        }
    }
}

impl Metrics for EmfMetrics {
    fn record(&self, m: &Measurement) {
        let now_ms = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64;
        (self.sink)(&render(m, now_ms).to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psa_domain::telemetry::Unit;

    #[test]
    fn a_record_names_its_metrics_dimensions_and_properties() {
        let m = Measurement {
            values: vec![
                ("Posted", 4.0, Unit::Count),
                ("DurationMs", 1234.0, Unit::Milliseconds),
            ],
            dimensions: vec![("Status", "succeeded".into())],
            properties: vec![("workspaceId", "msp_1".into())],
        };
        let doc = render(&m, 1_700_000_000_000);
        assert_eq!(
            doc,
            json!({
                "_aws": {
                    "Timestamp": 1_700_000_000_000i64,
                    "CloudWatchMetrics": [{
                        "Namespace": "Coro/PSA",
                        "Dimensions": [["Status"]],
                        "Metrics": [
                            {"Name": "Posted", "Unit": "Count"},
                            {"Name": "DurationMs", "Unit": "Milliseconds"}
                        ]
                    }]
                },
                "Status": "succeeded",
                "workspaceId": "msp_1",
                "Posted": 4,
                "DurationMs": 1234
            })
        );
        // No dimension at all is one empty dimension set (a metric of the namespace alone).
        let plain = Measurement {
            values: vec![("VendorKeyFault", 1.0, Unit::Count)],
            dimensions: vec![],
            properties: vec![],
        };
        let doc = render(&plain, 0);
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
        assert_eq!(doc["VendorKeyFault"], 1);
    }
}
