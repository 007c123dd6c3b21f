//! `openapi.yaml` and the router agree: every (method, path template) the router serves
//! (`psa_http::ROUTES`, which `route()` is unit-tested against) is an operation of
//! the spec, and every operation of the spec is served. Plus a few rules every operation keeps.

use psa_http::ROUTES;
use serde_norway::Value;
use std::collections::BTreeSet;

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

fn spec() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.yaml");
    let text = std::fs::read_to_string(path).expect("openapi.yaml at the repo root");
    serde_norway::from_str(&text).expect("openapi.yaml parses as YAML")
}

fn operations(spec: &Value) -> Vec<(String, String, &Value)> {
    let paths = spec["paths"].as_mapping().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        let path = path.as_str().expect("path key").to_owned();
        for (key, op) in item.as_mapping().expect("path item") {
            let key = key.as_str().expect("key");
            if METHODS.contains(&key) {
                out.push((key.to_ascii_uppercase(), path.clone(), op));
            }
        }
    }
    out
}

#[test]
fn every_served_route_is_in_the_spec_and_the_other_way_round() {
    let spec = spec();
    assert_eq!(spec["openapi"].as_str(), Some("3.1.0"));
    let documented: BTreeSet<(String, String)> = operations(&spec)
        .into_iter()
        .map(|(m, p, _)| (m, p))
        .collect();
    let served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}; in openapi.yaml but not served: {unserved:?}"
    );
}

#[test]
fn every_operation_declares_its_caller_errors_and_path_parameters() {
    let spec = spec();
    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&spec) {
        let id = op["operationId"].as_str().unwrap_or_default();
        assert!(!id.is_empty(), "{method} {path}: no operationId");
        assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        let responses = op["responses"].as_mapping().expect("responses");
        for status in ["401", "403", "500"] {
            assert!(
                responses.contains_key(Value::from(status)),
                "{method} {path}: no {status}"
            );
        }
        // Each {name} of the template is a declared path parameter (on the path item or the op).
        let item = &spec["paths"][path.as_str()];
        let declared: BTreeSet<String> = [&item["parameters"], &op["parameters"]]
            .into_iter()
            .filter_map(Value::as_sequence)
            .flatten()
            .filter_map(|p| {
                let name = p["$ref"]
                    .as_str()
                    .map(|r| r.rsplit('/').next().unwrap_or_default().to_owned())
                    .or_else(|| p["name"].as_str().map(str::to_owned))?;
                Some(name)
            })
            .collect();
        for part in path.split('/') {
            if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                assert!(
                    declared.contains(name),
                    "{method} {path}: path parameter {name} not declared"
                );
            }
        }
    }
}
