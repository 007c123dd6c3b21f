//! The views an MSP looks at, read through the real handler page by page and checked against
//! each other: a run's readings and the usage reconciliation.

use crate::msp::CHANNEL;
use crate::print::{cell, table};
use crate::worker::counts;
use crate::{Failed, Step, expect};
use harness::{Claims, TestEnv};
use serde_json::Value;
use std::collections::BTreeMap;

/// Every item of a paged route (`limit` per page), following `nextCursor` until it is absent.
pub async fn pages(env: &TestEnv, claims: &Claims, path: &str, limit: u32) -> Step<Vec<Value>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut p = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        let r = env.call("GET", &p, Some(claims), None).await;
        expect(&format!("GET {p}"), &r, 200)?;
        let body = r.json();
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(items),
        }
    }
    Err(Failed(format!("{path}: paging never ended")))
}

pub fn pair(item: &Value) -> (String, String) {
    (
        item["accountId"].as_str().unwrap_or_default().to_string(),
        item["service"].as_str().unwrap_or_default().to_string(),
    )
}

/// The readings of `run` as a viewer sees them: every page (checked against the run's counts),
/// then one table per query in `shown` (a first page; with `Some(n)`, the filter must match
/// exactly `n` readings in all).
pub async fn readings_view(env: &TestEnv, run: &Value, shown: &[(&str, Option<u64>)]) -> Step {
    let viewer = Claims::viewer(CHANNEL);
    let id = run["runId"].as_str().unwrap_or_default();
    let base = format!("/v1/psa/connectors/gradient/syncs/{id}/readings");
    let all = pages(env, &viewer, &base, 50).await?;
    let c = counts(run);
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    for r in &all {
        *tally
            .entry(r["outcome"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    println!(
        "all pages: {} readings = {}",
        all.len(),
        tally
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    );
    fn field(outcome: &str) -> &str {
        match outcome {
            "skipped_disabled" => "skippedDisabled",
            other => other,
        }
    }
    if all.len() as u64 != c.get("readings").copied().unwrap_or(0)
        || tally
            .iter()
            .any(|(o, n)| c.get(field(o)).copied() != Some(*n))
    {
        return Err(Failed(format!(
            "the readings of {id} ({tally:?}) do not add up to the run's counts {c:?}"
        )));
    }
    for (query, total) in shown {
        let r = env
            .call("GET", &format!("{base}?{query}"), Some(&viewer), None)
            .await;
        expect(&format!("readings {query}"), &r, 200)?;
        let page = r.json()["items"].as_array().cloned().unwrap_or_default();
        println!("GET …/readings?{query} → {}", r.status);
        table(
            &["account", "service", "unit", "value", "previous", "outcome"],
            page.iter().map(|r| {
                vec![
                    r["accountId"].as_str().unwrap_or("?").to_string(),
                    r["service"].as_str().unwrap_or("?").to_string(),
                    r["unit"].as_str().unwrap_or("?").to_string(),
                    cell(&r["value"]),
                    cell(&r["previous"]),
                    r["outcome"].as_str().unwrap_or("?").to_string(),
                ]
            }),
        );
        if let Some(n) = total {
            let filter = query.split('&').find(|q| q.starts_with("outcome="));
            let path = match filter {
                Some(f) => format!("{base}?{f}"),
                None => base.clone(),
            };
            let every = pages(env, &viewer, &path, 100).await?;
            let outcome = filter.map(|f| f.trim_start_matches("outcome="));
            if every.len() as u64 != *n
                || outcome.is_some_and(|o| every.iter().any(|r| r["outcome"] != o))
            {
                return Err(Failed(format!(
                    "readings {query}: {} in all, expected {n}",
                    every.len()
                )));
            }
        }
    }
    Ok(())
}

/// The usage view as a viewer sees it: the summary (printed) and every line.
pub async fn usage_view(env: &TestEnv) -> Step<(Value, Vec<Value>)> {
    let viewer = Claims::viewer(CHANNEL);
    let first = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage",
            Some(&viewer),
            None,
        )
        .await;
    expect("usage", &first, 200)?;
    let summary = first.json()["summary"].clone();
    let lines = pages(env, &viewer, "/v1/psa/connectors/gradient/usage", 100).await?;
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    println!(
        "GET …/usage → {}  accounts {} · lines {} · in_sync {} · pending {} · new {} · unmapped {} \
         · failed {} · disabled {} · wouldPost {} · fullResendDue {}",
        first.status,
        n("accounts"),
        n("lines"),
        n("inSync"),
        n("pending"),
        n("new"),
        n("unmapped"),
        n("failed"),
        n("disabled"),
        n("wouldPost"),
        summary["fullResendDue"]
    );
    let states = [
        "in_sync", "pending", "new", "unmapped", "failed", "disabled",
    ];
    let by_state = |s: &str| lines.iter().filter(|l| l["state"] == s).count() as u64;
    let fields = ["inSync", "pending", "new", "unmapped", "failed", "disabled"];
    if lines.len() as u64 != n("lines")
        || states.iter().zip(fields).any(|(s, f)| by_state(s) != n(f))
    {
        return Err(Failed(format!(
            "the usage summary does not match its {} lines: {summary}",
            lines.len()
        )));
    }
    Ok((summary, lines))
}

pub fn check_summary(step: &str, s: &Value, want: &[(&str, u64)], full_resend_due: bool) -> Step {
    for (k, v) in want {
        if s[*k].as_u64() != Some(*v) {
            return Err(Failed(format!(
                "{step}: summary.{k} is {}, expected {v} ({s})",
                s[*k]
            )));
        }
    }
    if s["fullResendDue"] != full_resend_due {
        return Err(Failed(format!(
            "{step}: fullResendDue is {}, expected {full_resend_due}",
            s["fullResendDue"]
        )));
    }
    Ok(())
}
