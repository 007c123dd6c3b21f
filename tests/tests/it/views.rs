//! What the MSP can look at — a run's readings, the usage reconciliation and billing preview, the
//! audit trail — on the real local stack (DynamoDB Local, moto, the Gradient simulator), through
//! the real HTTP handler with real API Gateway v2 payloads. Expected values come from the fixture
//! (its own unit table), from the simulator's state, and from what the next sync really does —
//! never from the product's planning code.

use harness::fixture::*;
use harness::{ApiResponse, Claims, TestEnv, workspace};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

type Pair = (String, String);

const USAGE: &str = "/v1/psa/connectors/gradient/usage";
const AUDIT: &str = "/v1/psa/audit";
const SYNCS: &str = "/v1/psa/connectors/gradient/syncs";

fn readings_path(run_id: &str) -> String {
    format!("{SYNCS}/{run_id}/readings")
}

fn run_id(run: &Value) -> String {
    run["runId"].as_str().expect("runId").to_owned()
}

fn unit_of(service: &str) -> &'static str {
    if USER_UNIT.contains(&service) {
        "protected_users"
    } else {
        "protected_devices"
    }
}

fn pair_of(item: &Value) -> Pair {
    (
        item["accountId"].as_str().expect("accountId").to_owned(),
        item["service"].as_str().expect("service").to_owned(),
    )
}

async fn get(env: &TestEnv, claims: &Claims, path: &str) -> ApiResponse {
    env.call("GET", path, Some(claims), None).await
}

/// `path` with `extra` appended to its query string.
fn with_query(path: &str, extra: &str) -> String {
    if path.contains('?') {
        format!("{path}&{extra}")
    } else {
        format!("{path}?{extra}")
    }
}

/// Walks every page of a paged route with `limit`; answers all items and every page's body.
/// Checks the paging rules on the way: full pages carry `nextCursor`, the last page does not
/// carry the key at all, and no page is larger than `limit`.
async fn all_pages(
    env: &TestEnv,
    claims: &Claims,
    path: &str,
    limit: u32,
) -> (Vec<Value>, Vec<Value>) {
    let mut items = Vec::new();
    let mut bodies = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut p = with_query(path, &format!("limit={limit}"));
        if let Some(c) = &cursor {
            p = with_query(&p, &format!("cursor={c}"));
        }
        let r = get(env, claims, &p).await;
        assert_eq!(r.status, 200, "{p}: {}", r.body);
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/json")
        );
        let body = r.json();
        let page = body["items"].as_array().expect("items").clone();
        assert!(page.len() <= limit as usize, "{p}: page larger than limit");
        items.extend(page.iter().cloned());
        bodies.push(body.clone());
        match body.get("nextCursor") {
            None => return (items, bodies),
            Some(Value::String(c)) => {
                assert_eq!(
                    page.len(),
                    limit as usize,
                    "{p}: a short page with a cursor"
                );
                assert!(!c.is_empty());
                cursor = Some(c.clone());
            }
            Some(other) => panic!("{p}: nextCursor must be a string or absent, got {other}"),
        }
    }
    panic!("{path}: paging never ended");
}

/// A problem+json answer with `status` and `code` (RFC 9457 shape).
fn assert_problem(r: &ApiResponse, status: u16, code: &str, what: &str) {
    assert_eq!(
        (r.status, r.code().as_str()),
        (status, code),
        "{what}: {}",
        r.body
    );
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    let b = r.json();
    assert_eq!(b["status"], status, "{what}");
    for k in ["type", "title", "detail"] {
        assert!(b[k].as_str().is_some_and(|s| !s.is_empty()), "{what}: {k}");
    }
}

fn tally(items: &[Value]) -> BTreeMap<String, u64> {
    let mut t = BTreeMap::new();
    for i in items {
        *t.entry(i["outcome"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    t
}

/// The readings tally equals the run's counts, outcome by outcome.
fn assert_tally_matches(items: &[Value], run: &Value) {
    let c = counts(run);
    outcomes_add_up(&c);
    let t = tally(items);
    assert_eq!(items.len() as u64, c["readings"], "readings of {run}");
    for (outcome, field) in [
        ("posted", "posted"),
        ("unchanged", "unchanged"),
        ("unmapped", "unmapped"),
        ("skipped_disabled", "skippedDisabled"),
        ("failed", "failed"),
    ] {
        assert_eq!(
            t.get(outcome).copied().unwrap_or(0),
            c[field],
            "{outcome} readings vs counts.{field}: {t:?} {c:?}"
        );
    }
    let known: BTreeSet<&str> = [
        "posted",
        "unchanged",
        "unmapped",
        "skipped_disabled",
        "failed",
    ]
    .into();
    assert!(t.keys().all(|k| known.contains(k.as_str())), "{t:?}");
}

/// Items are in strictly increasing (accountId, service) order.
fn assert_ordered(items: &[Value], what: &str) {
    let keys: Vec<Pair> = items.iter().map(pair_of).collect();
    for w in keys.windows(2) {
        assert!(w[0] < w[1], "{what}: {:?} before {:?}", w[0], w[1]);
    }
}

fn by_pair(items: &[Value]) -> BTreeMap<Pair, Value> {
    let map: BTreeMap<Pair, Value> = items.iter().map(|i| (pair_of(i), i.clone())).collect();
    assert_eq!(map.len(), items.len(), "a pair appears twice");
    map
}

async fn usage(env: &TestEnv, claims: &Claims) -> (Value, Vec<Value>) {
    let (items, bodies) = all_pages(env, claims, USAGE, 100).await;
    let summary = bodies[0]["summary"].clone();
    for b in &bodies {
        assert_eq!(
            b["summary"], summary,
            "the summary is the same on every page"
        );
    }
    (summary, items)
}

fn num(v: &Value, k: &str) -> u64 {
    v[k].as_u64()
        .unwrap_or_else(|| panic!("{k} is not a number: {v}"))
}

/// The summary's state counts match the lines and add up to `lines`.
fn assert_summary_adds_up(summary: &Value, lines: &[Value]) {
    let states: BTreeMap<&str, &str> = [
        ("in_sync", "inSync"),
        ("pending", "pending"),
        ("new", "new"),
        ("unmapped", "unmapped"),
        ("failed", "failed"),
        ("disabled", "disabled"),
    ]
    .into();
    assert_eq!(num(summary, "lines"), lines.len() as u64, "{summary}");
    let mut sum = 0;
    for (state, field) in &states {
        let n = lines.iter().filter(|l| l["state"] == *state).count() as u64;
        assert_eq!(num(summary, field), n, "summary.{field}: {summary}");
        sum += n;
    }
    assert_eq!(sum, lines.len() as u64, "every line has a known state");
    assert!(summary["fullResendDue"].is_boolean());
    num(summary, "wouldPost");
    num(summary, "accounts");
}

fn reported_accounts(children: &[Child]) -> u64 {
    children.iter().filter(|c| c.reported()).count() as u64
}

/// After a successful run, Gradient holds `current` for every mapped, enabled line.
fn assert_gradient_holds_current(m: &Msp, lines: &[Value]) {
    let org = m.env.sim.organization(&m.org).unwrap();
    let mut checked = 0;
    for l in lines {
        let key = pair_of(l);
        if m.unmapped.contains(&key) || l["current"].is_null() {
            continue;
        }
        let got = org.count(&key.0, &m.ids[&key.1]).map(|r| r.unit_count);
        assert_eq!(got, l["current"].as_u64(), "{key:?}: Gradient vs usage");
        checked += 1;
    }
    assert!(checked > 0);
}

fn rfc3339(raw: &Value) -> OffsetDateTime {
    OffsetDateTime::parse(raw.as_str().expect("a timestamp string"), &Rfc3339)
        .unwrap_or_else(|e| panic!("{raw} is not RFC 3339: {e}"))
}

/// A reported child with a user-unit service whose pairs are all mapped, other than `not`.
fn mapped_child_with_users(m: &Msp, children: &[Child], not: &[usize]) -> usize {
    (0..children.len())
        .find(|&i| {
            let c = &children[i];
            !not.contains(&i)
                && c.reported()
                && c.services.iter().any(|s| USER_UNIT.contains(s))
                && c.services
                    .iter()
                    .all(|s| !m.unmapped.contains(&(c.id.clone(), s.to_string())))
        })
        .expect("the fixture has such a child")
}

fn user_pairs(c: &Child) -> BTreeSet<Pair> {
    c.services
        .iter()
        .filter(|s| USER_UNIT.contains(s))
        .map(|s| (c.id.clone(), s.to_string()))
        .collect()
}

// ---- readings -------------------------------------------------------------------------------

#[tokio::test]
async fn readings_page_through_every_outcome_of_a_run() {
    let m = connected_msp("views-readings", 24).await;
    let viewer = Claims::viewer(CH);
    let expected = expected_pairs(&m.children);
    let run1 = sync_and_wait(&m.env).await;
    assert_eq!(run1["status"], "succeeded", "{run1}");
    let id1 = run_id(&run1);

    let (items, pages) = all_pages(&m.env, &viewer, &readings_path(&id1), 7).await;
    assert!(pages.len() >= 3, "paging with limit 7 takes several pages");
    assert_tally_matches(&items, &run1);
    assert_ordered(&items, "run 1 readings");
    let got = by_pair(&items);
    assert_eq!(
        got.keys().cloned().collect::<BTreeSet<_>>(),
        expected.keys().cloned().collect::<BTreeSet<_>>(),
        "one reading per enabled pair of a reported child"
    );
    let names: BTreeMap<&str, &str> = m
        .children
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    for (key, r) in &got {
        assert_eq!(r["value"], expected[key], "{key:?} value");
        assert_eq!(r["unit"], unit_of(&key.1), "{key:?} unit");
        assert_eq!(r["accountName"], names[key.0.as_str()], "{key:?}");
        assert!(r.get("previous").is_none(), "first run: no previous {r}");
        assert!(r.get("reason").is_none(), "{r}");
        let want = if m.unmapped.contains(key) {
            "unmapped"
        } else {
            "posted"
        };
        assert_eq!(r["outcome"], want, "{key:?}");
    }

    // outcome= filters: only and all of that outcome, also across pages.
    let path = with_query(&readings_path(&id1), "outcome=unmapped");
    let (unmapped, _) = all_pages(&m.env, &viewer, &path, 5).await;
    assert!(unmapped.iter().all(|r| r["outcome"] == "unmapped"));
    assert_eq!(
        unmapped.iter().map(pair_of).collect::<BTreeSet<_>>(),
        m.unmapped
    );
    assert_ordered(&unmapped, "unmapped readings");
    let path = with_query(&readings_path(&id1), "outcome=posted");
    let (posted, _) = all_pages(&m.env, &viewer, &path, 100).await;
    assert_eq!(posted.len() as u64, counts(&run1)["posted"]);
    let path = with_query(&readings_path(&id1), "outcome=failed");
    let (failed, bodies) = all_pages(&m.env, &viewer, &path, 20).await;
    assert!(failed.is_empty() && bodies.len() == 1);

    // Between runs: one mapped child's users change, another child loses a mapped service.
    let mut children = m.children.clone();
    let grow = mapped_child_with_users(&m, &children, &[]);
    let old_users = children[grow].users;
    children[grow].users += 4;
    let dis = mapped_child_with_users(&m, &children, &[grow]);
    let disabled = children[dis].services[0];
    let old_disabled = children[dis].expected(disabled);
    children[dis].services.retain(|s| *s != disabled);
    let disabled_pair = (children[dis].id.clone(), disabled.to_string());
    seed(&m.env, &children).await;
    let changed = user_pairs(&children[grow]);
    assert!(!changed.is_empty());

    let run2 = sync_and_wait(&m.env).await;
    assert_eq!(run2["status"], "succeeded", "{run2}");
    let id2 = run_id(&run2);
    let (items2, _) = all_pages(&m.env, &viewer, &readings_path(&id2), 7).await;
    assert_tally_matches(&items2, &run2);
    assert_ordered(&items2, "run 2 readings");
    let got2 = by_pair(&items2);
    let expected2 = expected_pairs(&children);
    assert_eq!(items2.len(), expected2.len() + 1, "plus the disabled pair");
    for (key, r) in &got2 {
        if *key == disabled_pair {
            assert_eq!(r["outcome"], "skipped_disabled", "{r}");
            assert_eq!(r["value"], old_disabled, "the last accepted value {r}");
            assert_eq!(r["previous"], old_disabled, "{r}");
            assert_eq!(r["unit"], unit_of(disabled));
            continue;
        }
        assert_eq!(r["value"], expected2[key], "{key:?}");
        assert_eq!(r["unit"], unit_of(&key.1), "{key:?}");
        if m.unmapped.contains(key) {
            assert_eq!(r["outcome"], "unmapped", "{r}");
            assert!(r.get("previous").is_none(), "never accepted: {r}");
        } else if changed.contains(key) {
            assert_eq!(r["outcome"], "posted", "{r}");
            assert_eq!(r["previous"], old_users, "the value accepted before {r}");
            assert_eq!(r["value"], old_users + 4);
        } else {
            assert_eq!(r["outcome"], "unchanged", "{r}");
            assert_eq!(r["previous"], r["value"], "{r}");
        }
    }
    let c2 = counts(&run2);
    assert_eq!(c2["posted"], changed.len() as u64);
    assert_eq!(c2["skippedDisabled"], 1);
    let path = with_query(&readings_path(&id2), "outcome=skipped_disabled");
    let (skipped, _) = all_pages(&m.env, &viewer, &path, 1).await;
    assert_eq!(
        skipped.iter().map(pair_of).collect::<Vec<_>>(),
        vec![disabled_pair]
    );
    let path = with_query(&readings_path(&id2), "outcome=unchanged");
    let (unchanged, _) = all_pages(&m.env, &viewer, &path, 9).await;
    assert_eq!(unchanged.len() as u64, c2["unchanged"]);
    assert!(unchanged.iter().all(|r| r["outcome"] == "unchanged"));

    // Run 1's readings are what they were (run 2 wrote its own).
    let (again, _) = all_pages(&m.env, &viewer, &readings_path(&id1), 100).await;
    assert_eq!(again, items);

    // Sync history: newest queuedAt first, no nextCursor on the last page.
    let (runs, _) = all_pages(&m.env, &viewer, SYNCS, 1).await;
    assert_eq!(
        runs.iter().map(run_id).collect::<Vec<_>>(),
        vec![id2.clone(), id1.clone()]
    );
    assert!(rfc3339(&runs[0]["queuedAt"]) >= rfc3339(&runs[1]["queuedAt"]));
}

#[tokio::test]
async fn reading_pages_refuse_foreign_cursors_and_bad_queries() {
    let m = connected_msp("views-readings-bad", 12).await;
    let viewer = Claims::viewer(CH);
    let run1 = sync_and_wait(&m.env).await;
    let run2 = sync_and_wait(&m.env).await;
    let (id1, id2) = (run_id(&run1), run_id(&run2));
    assert!(counts(&run1)["readings"] > 2);

    let first = get(&m.env, &viewer, &format!("{}?limit=2", readings_path(&id1))).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let cursor = first.json()["nextCursor"].as_str().unwrap().to_owned();
    // The cursor works for its own run …
    let next = get(
        &m.env,
        &viewer,
        &format!("{}?limit=2&cursor={cursor}", readings_path(&id1)),
    )
    .await;
    assert_eq!(next.status, 200, "{}", next.body);
    assert_ne!(next.json()["items"], first.json()["items"]);
    // … and for no other list.
    let other_run = get(
        &m.env,
        &viewer,
        &format!("{}?cursor={cursor}", readings_path(&id2)),
    )
    .await;
    assert_problem(&other_run, 400, "invalid_cursor", "a cursor of another run");
    let on_audit = get(
        &m.env,
        &Claims::admin(CH),
        &format!("{AUDIT}?cursor={cursor}"),
    )
    .await;
    assert_problem(
        &on_audit,
        400,
        "invalid_cursor",
        "a readings cursor on audit",
    );
    let on_syncs = get(&m.env, &viewer, &format!("{SYNCS}?cursor={cursor}")).await;
    assert_problem(
        &on_syncs,
        400,
        "invalid_cursor",
        "a readings cursor on syncs",
    );
    let on_usage = get(&m.env, &viewer, &format!("{USAGE}?cursor={cursor}")).await;
    assert_problem(
        &on_usage,
        400,
        "invalid_cursor",
        "a readings cursor on usage",
    );
    let usage_page = get(&m.env, &viewer, &format!("{USAGE}?limit=2")).await;
    let usage_cursor = usage_page.json()["nextCursor"].as_str().unwrap().to_owned();
    let r = get(
        &m.env,
        &viewer,
        &format!("{}?cursor={usage_cursor}", readings_path(&id1)),
    )
    .await;
    assert_problem(&r, 400, "invalid_cursor", "a usage cursor on readings");

    // Garbage cursors.
    for bad in [
        "%21%21",
        "abc",
        "e30",
        "eyJwayI6IldTI21zcCJ9",
        &"A".repeat(700),
    ] {
        let r = get(
            &m.env,
            &viewer,
            &format!("{}?cursor={bad}", readings_path(&id1)),
        )
        .await;
        assert_problem(&r, 400, "invalid_cursor", &format!("cursor {bad}"));
    }
    // Bad limits and outcomes.
    for q in [
        "limit=0",
        "limit=101",
        "limit=x",
        "limit=-1",
        "outcome=bogus",
        "outcome=POSTED",
    ] {
        let r = get(&m.env, &viewer, &format!("{}?{q}", readings_path(&id1))).await;
        assert_problem(&r, 400, "invalid_query", q);
    }
    // Limits at the edges are fine; 20 is the default.
    for (q, n) in [("limit=1", 1), ("limit=100", 100), ("", 20)] {
        let r = get(&m.env, &viewer, &format!("{}?{q}", readings_path(&id1))).await;
        assert_eq!(r.status, 200, "{q}: {}", r.body);
        let want = n.min(counts(&run1)["readings"] as usize);
        assert_eq!(r.json()["items"].as_array().unwrap().len(), want, "{q}");
    }
    // Unknown runs: well-formed but unknown, and a run id that cannot exist.
    let r = get(
        &m.env,
        &viewer,
        &readings_path("20261124T050000.000Z-nosuchrun"),
    )
    .await;
    assert_problem(&r, 404, "run_not_found", "unknown run");
    let r = get(&m.env, &viewer, &readings_path(&format!("{id1}x"))).await;
    assert_problem(&r, 404, "run_not_found", "unknown run");
}

// ---- usage ----------------------------------------------------------------------------------

#[tokio::test]
async fn usage_reconciles_with_gradient_and_predicts_the_next_sync() {
    let m = connected_msp("views-usage", 24).await;
    let viewer = Claims::viewer(CH);
    let expected = expected_pairs(&m.children);
    let accounts = reported_accounts(&m.children);

    // Right after connect: services and accounts exist, nothing accepted yet.
    let (s0, lines0) = usage(&m.env, &viewer).await;
    assert_summary_adds_up(&s0, &lines0);
    assert_ordered(&lines0, "usage before any sync");
    assert_eq!(num(&s0, "accounts"), accounts);
    assert_eq!(num(&s0, "lines"), expected.len() as u64);
    assert_eq!(num(&s0, "new"), expected.len() as u64);
    assert_eq!(num(&s0, "wouldPost"), expected.len() as u64);
    assert_eq!(s0["fullResendDue"], true);
    assert!(s0.get("lastSync").is_none(), "{s0}");
    for l in &lines0 {
        let key = pair_of(l);
        assert_eq!(l["state"], "new", "{l}");
        assert_eq!(l["current"], expected[&key], "{l}");
        assert_eq!(l["unit"], unit_of(&key.1), "{l}");
        assert!(l.get("lastAccepted").is_none(), "{l}");
    }

    let run1 = sync_and_wait(&m.env).await;
    assert_eq!(run1["status"], "succeeded", "{run1}");
    let c1 = counts(&run1);
    assert_eq!(
        c1["posted"] + c1["unmapped"],
        num(&s0, "wouldPost"),
        "wouldPost before run 1 = what run 1 sent"
    );

    // After a sync: mapped pairs in sync, unmapped ones unmapped (and sent every run).
    let (s1, lines1) = usage(&m.env, &viewer).await;
    assert_summary_adds_up(&s1, &lines1);
    assert_eq!(num(&s1, "accounts"), accounts);
    assert_eq!(
        num(&s1, "inSync"),
        (expected.len() - m.unmapped.len()) as u64
    );
    assert_eq!(num(&s1, "unmapped"), m.unmapped.len() as u64);
    assert_eq!(num(&s1, "wouldPost"), m.unmapped.len() as u64);
    assert_eq!(s1["fullResendDue"], false);
    assert_eq!(s1["lastSync"]["runId"], run1["runId"]);
    assert_eq!(s1["lastSync"]["status"], "succeeded");
    assert_eq!(
        rfc3339(&s1["lastSync"]["finishedAt"]),
        rfc3339(&run1["finishedAt"])
    );
    let sent_at = rfc3339(&run1["finishedAt"]);
    for l in &lines1 {
        let key = pair_of(l);
        assert_eq!(l["current"], expected[&key], "{l}");
        if m.unmapped.contains(&key) {
            assert_eq!(l["state"], "unmapped", "{l}");
            assert!(l.get("lastAccepted").is_none(), "{l}");
        } else {
            assert_eq!(l["state"], "in_sync", "{l}");
            let a = &l["lastAccepted"];
            assert_eq!(a["value"], expected[&key], "{l}");
            assert_eq!(a["runId"], run1["runId"], "{l}");
            let at = rfc3339(&a["at"]);
            assert!(at >= rfc3339(&run1["startedAt"]) && at <= sent_at, "{l}");
        }
    }
    assert_gradient_holds_current(&m, &lines1);

    // One workspace's users change: its user-unit pairs are pending.
    let mut children = m.children.clone();
    let grow = mapped_child_with_users(&m, &children, &[]);
    let old = children[grow].users;
    children[grow].users += 3;
    seed(&m.env, &children).await;
    let pend = user_pairs(&children[grow]);
    let (s2, lines2) = usage(&m.env, &viewer).await;
    assert_summary_adds_up(&s2, &lines2);
    assert_eq!(num(&s2, "pending"), pend.len() as u64);
    assert_eq!(
        num(&s2, "wouldPost"),
        num(&s1, "wouldPost") + pend.len() as u64
    );
    let path = format!("{USAGE}?state=pending");
    let (pending, bodies) = all_pages(&m.env, &viewer, &path, 1).await;
    assert_eq!(bodies[0]["summary"], s2, "the summary ignores the filter");
    assert_eq!(pending.iter().map(pair_of).collect::<BTreeSet<_>>(), pend);
    for l in &pending {
        assert_eq!(l["current"], old + 3, "{l}");
        assert_eq!(l["lastAccepted"]["value"], old, "{l}");
        assert_eq!(l["lastAccepted"]["runId"], run1["runId"], "{l}");
        assert_eq!(l["unit"], "protected_users");
    }

    // Another workspace loses a mapped service: a disabled line, nothing more to send.
    let dis = mapped_child_with_users(&m, &children, &[grow]);
    let gone = children[dis].services[0];
    let gone_value = children[dis].expected(gone);
    children[dis].services.retain(|s| *s != gone);
    seed(&m.env, &children).await;
    let (s3, lines3) = usage(&m.env, &viewer).await;
    assert_summary_adds_up(&s3, &lines3);
    assert_eq!(num(&s3, "disabled"), 1);
    assert_eq!(num(&s3, "lines"), num(&s2, "lines"), "the line stays");
    assert_eq!(num(&s3, "wouldPost"), num(&s2, "wouldPost"));
    let (disabled, _) = all_pages(&m.env, &viewer, &format!("{USAGE}?state=disabled"), 5).await;
    assert_eq!(disabled.len(), 1);
    let d = &disabled[0];
    assert_eq!(pair_of(d), (children[dis].id.clone(), gone.to_string()));
    assert!(
        d.get("current").is_some_and(Value::is_null),
        "current is null: {d}"
    );
    assert_eq!(d["lastAccepted"]["value"], gone_value, "{d}");
    assert_eq!(d["unit"], unit_of(gone));
    assert_eq!(d["accountName"], children[dis].name);

    // Every state filter answers exactly the lines of that state, in order.
    for (state, field) in [
        ("in_sync", "inSync"),
        ("pending", "pending"),
        ("new", "new"),
        ("unmapped", "unmapped"),
        ("failed", "failed"),
        ("disabled", "disabled"),
    ] {
        let (lines, _) = all_pages(&m.env, &viewer, &format!("{USAGE}?state={state}"), 6).await;
        assert_eq!(lines.len() as u64, num(&s3, field), "state={state}");
        assert!(lines.iter().all(|l| l["state"] == state), "state={state}");
        assert_ordered(&lines, state);
    }

    // The next sync sends exactly what the preview said.
    let run2 = sync_and_wait(&m.env).await;
    assert_eq!(run2["status"], "succeeded", "{run2}");
    let c2 = counts(&run2);
    assert_eq!(
        c2["posted"] + c2["unmapped"],
        num(&s3, "wouldPost"),
        "{c2:?}"
    );
    assert_eq!(c2["posted"], pend.len() as u64);
    assert_eq!(c2["skippedDisabled"], 1);
    let (s4, lines4) = usage(&m.env, &viewer).await;
    assert_summary_adds_up(&s4, &lines4);
    assert_eq!((num(&s4, "pending"), num(&s4, "disabled")), (0, 1));
    assert_eq!(num(&s4, "wouldPost"), m.unmapped.len() as u64);
    assert_eq!(s4["lastSync"]["runId"], run2["runId"]);
    for l in lines4.iter().filter(|l| pend.contains(&pair_of(l))) {
        assert_eq!(l["state"], "in_sync", "{l}");
        assert_eq!(l["lastAccepted"]["runId"], run2["runId"], "{l}");
    }
    assert_gradient_holds_current(&m, &lines4);

    // A run with nothing changed agrees too.
    let run3 = sync_and_wait(&m.env).await;
    assert_eq!(run3["status"], "succeeded", "{run3}");
    let c3 = counts(&run3);
    assert_eq!(
        c3["posted"] + c3["unmapped"],
        num(&s4, "wouldPost"),
        "{c3:?}"
    );
    assert_eq!(c3["posted"], 0);
    let (s5, lines5) = usage(&m.env, &viewer).await;
    assert_eq!(s5["lastSync"]["runId"], run3["runId"]);
    assert_eq!(num(&s5, "inSync"), num(&s4, "inSync"));
    assert_gradient_holds_current(&m, &lines5);
}

#[tokio::test]
async fn usage_pages_and_refuses_bad_queries() {
    let m = connected_msp("views-usage-paging", 24).await;
    let viewer = Claims::viewer(CH);
    sync_and_wait(&m.env).await;
    let (summary, all) = usage(&m.env, &viewer).await;
    assert!(all.len() > 30, "enough lines to page");
    for limit in [1, 7, 30] {
        let (paged, bodies) = all_pages(&m.env, &viewer, USAGE, limit).await;
        assert_eq!(
            paged, all,
            "limit {limit}: the pages make up the whole list"
        );
        assert_eq!(bodies.len(), all.len().div_ceil(limit as usize));
        assert!(bodies.iter().all(|b| b["summary"] == summary));
    }
    let default = get(&m.env, &viewer, USAGE).await.json();
    assert_eq!(default["items"].as_array().unwrap().len(), 20);
    assert!(default["nextCursor"].is_string());
    // A filter with a cursor pages within the filter.
    let (unmapped, _) = all_pages(&m.env, &viewer, &format!("{USAGE}?state=unmapped"), 2).await;
    assert_eq!(
        unmapped.iter().map(pair_of).collect::<BTreeSet<_>>(),
        m.unmapped
    );

    for q in [
        "state=bogus",
        "state=IN_SYNC",
        "state=inSync",
        "limit=0",
        "limit=101",
        "limit=x",
    ] {
        let r = get(&m.env, &viewer, &format!("{USAGE}?{q}")).await;
        assert_problem(&r, 400, "invalid_query", q);
    }
    for bad in ["%21%21", "abc", "zz", "e30", &"0".repeat(700)] {
        let r = get(&m.env, &viewer, &format!("{USAGE}?cursor={bad}")).await;
        assert_problem(&r, 400, "invalid_cursor", bad);
    }
}

/// A reading that failed in the last run is `failed` in the usage view, whatever the reason the
/// run recorded — here Gradient refused the account (400), so its readings ended `failed`.
#[tokio::test]
async fn usage_shows_failed_for_readings_that_failed_in_the_last_run() {
    let m = connected_msp("views-usage-failed", 12).await;
    let viewer = Claims::viewer(CH);
    let run1 = sync_and_wait(&m.env).await;
    assert_eq!(run1["status"], "succeeded", "{run1}");
    // A new workspace that Gradient refuses as an account.
    let mut children = m.children.clone();
    children.push(Child {
        id: format!("{CH}_refused"),
        parent: CH.into(),
        name: "Refused Ltd".into(),
        status: "subscription",
        services: vec!["EDR", "EMAIL_SECURITY"],
        users: 4,
        devices: 6,
    });
    seed(&m.env, &children).await;
    assert!(
        m.env
            .sim
            .refuse_account(&m.org, &format!("{CH}_refused"), "name not allowed", true)
    );
    let run2 = sync_and_wait(&m.env).await;
    assert_eq!(run2["status"], "partially_failed", "{run2}");
    let c2 = counts(&run2);
    assert_eq!(c2["failed"], 2, "{c2:?}");
    let (failed, _) = all_pages(
        &m.env,
        &viewer,
        &format!("{}?outcome=failed", readings_path(&run_id(&run2))),
        10,
    )
    .await;
    assert_eq!(failed.len(), 2);
    for r in &failed {
        assert_eq!(r["accountId"], format!("{CH}_refused"));
        let reason = r["reason"].as_str().expect("a failed reading has a reason");
        assert!(!reason.is_empty() && reason.chars().count() <= 200, "{r}");
    }
    let failures = run2["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 2, "{run2}");

    let (summary, lines) = usage(&m.env, &viewer).await;
    assert_summary_adds_up(&summary, &lines);
    let refused: Vec<&Value> = lines
        .iter()
        .filter(|l| l["accountId"] == format!("{CH}_refused"))
        .collect();
    assert_eq!(refused.len(), 2);
    for l in refused {
        assert_eq!(
            l["state"], "failed",
            "the last attempt of this pair failed (run {}), contract UsageLine.state: {l}",
            run2["runId"]
        );
    }
    assert_eq!(num(&summary, "failed"), 2, "{summary}");
}

// ---- audit ----------------------------------------------------------------------------------

/// Audit entries newest first; within one millisecond the order is not defined, so the check
/// compares the multiset of actions per millisecond with the expected sequence.
fn assert_audit_order(items: &[Value], expected: &[&str]) {
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions.len(), expected.len(), "{actions:?} vs {expected:?}");
    let ms: Vec<i128> = items
        .iter()
        .map(|e| rfc3339(&e["at"]).unix_timestamp_nanos() / 1_000_000)
        .collect();
    for w in ms.windows(2) {
        assert!(w[0] >= w[1], "newest first: {actions:?}");
    }
    let mut i = 0;
    while i < items.len() {
        let j = (i..items.len())
            .find(|&j| ms[j] != ms[i])
            .unwrap_or(items.len());
        let mut got = actions[i..j].to_vec();
        let mut want = expected[i..j].to_vec();
        got.sort();
        want.sort();
        assert_eq!(got, want, "audit trail {actions:?} vs {expected:?}");
        i = j;
    }
}

#[tokio::test]
async fn the_audit_trail_says_who_did_what_newest_first() {
    let m = connected_msp("views-audit", 6).await;
    let admin = Claims::admin(CH);
    let org = m.env.sim.organization(&m.org).unwrap();
    let first_key = org.partner_key.clone();
    let mut hints = vec![
        m.env.connector(CH).await["tokenHint"]
            .as_str()
            .unwrap()
            .to_owned(),
    ];

    // Re-token with the same key (changes nothing: no entry), a sync, a regenerated key (the
    // next run is rejected), the new key, the delete.
    let r = m.env.retoken(CH, &first_key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ok_run = sync_and_wait(&m.env).await;
    assert_eq!(ok_run["status"], "succeeded");
    let new_key = m.env.sim.regenerate_key(&m.org).unwrap();
    let rejected = sync_and_wait(&m.env).await;
    assert_eq!(rejected["status"], "token_rejected", "{rejected}");
    let r = m.env.retoken(CH, &new_key).await;
    assert_eq!(r.status, 200, "{}", r.body);
    hints.push(r.json()["tokenHint"].as_str().unwrap().to_owned());
    let del = m
        .env
        .call("DELETE", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    assert_eq!(del.status, 204, "{}", del.body);

    // The trail outlives the connector.
    let (items, _) = all_pages(&m.env, &admin, AUDIT, 100).await;
    assert_audit_order(
        &items,
        &[
            "connector.deleted",
            "connector.token_replaced",
            "sync.finished",
            "connector.disconnected",
            "sync.requested",
            "sync.finished",
            "sync.requested",
            "connector.created",
        ],
    );
    let user = admin.sub.as_str();
    let (ok_id, rej_id) = (run_id(&ok_run), run_id(&rejected));
    for e in &items {
        assert_eq!(e["connectorId"], "gradient", "{e}");
        let action = e["action"].as_str().unwrap();
        let want_actor = match action {
            "connector.created"
            | "connector.token_replaced"
            | "connector.deleted"
            | "sync.requested" => user,
            _ => "system",
        };
        assert_eq!(e["actor"], want_actor, "{e}");
        match action {
            "sync.requested" | "sync.finished" => {
                let id = e["runId"].as_str().expect("a run's entry has its runId");
                assert!(id == ok_id || id == rej_id, "{e}");
            }
            "connector.disconnected" => {
                assert_eq!(e["runId"].as_str(), Some(rej_id.as_str()), "{e}");
            }
            _ => assert!(e.get("runId").is_none(), "{e}"),
        }
    }
    let finished: BTreeMap<&str, &str> = items
        .iter()
        .filter(|e| e["action"] == "sync.finished")
        .map(|e| {
            (
                e["runId"].as_str().unwrap(),
                e["detail"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        finished,
        BTreeMap::from([
            (ok_id.as_str(), "succeeded"),
            (rej_id.as_str(), "token_rejected")
        ])
    );
    let requested: BTreeSet<&str> = items
        .iter()
        .filter(|e| e["action"] == "sync.requested")
        .map(|e| e["runId"].as_str().unwrap())
        .collect();
    assert_eq!(requested, BTreeSet::from([ok_id.as_str(), rej_id.as_str()]));

    // Paging: the pages make up the whole trail; no nextCursor on the last one.
    let (paged, bodies) = all_pages(&m.env, &admin, AUDIT, 2).await;
    assert_eq!(paged, items);
    assert_eq!(bodies.len(), items.len().div_ceil(2));
    for q in ["limit=0", "limit=101", "limit=x"] {
        let r = get(&m.env, &admin, &format!("{AUDIT}?{q}")).await;
        assert_problem(&r, 400, "invalid_query", q);
    }
    for bad in ["%21%21", "abc", "e30"] {
        let r = get(&m.env, &admin, &format!("{AUDIT}?cursor={bad}")).await;
        assert_problem(&r, 400, "invalid_cursor", bad);
    }

    // No token and no token hint in any audit body.
    let vendor_key = m.env.sim.vendor_key();
    let mut bodies_text: Vec<String> = bodies.iter().map(Value::to_string).collect();
    bodies_text.push(get(&m.env, &admin, AUDIT).await.body);
    for body in &bodies_text {
        for secret in [first_key.as_str(), new_key.as_str(), vendor_key.as_str()] {
            assert!(!body.contains(secret), "an audit body carries a key");
        }
        for hint in &hints {
            assert!(
                !body.contains(hint.as_str()),
                "an audit body carries a token hint"
            );
        }
    }
    for e in &items {
        for v in e["detail"].as_object().into_iter().flatten() {
            let v = v.1.as_str().unwrap_or_default();
            for hint in &hints {
                let tail = hint.trim_start_matches('…');
                assert!(
                    tail.is_empty() || !v.contains(tail),
                    "detail {v} holds a hint"
                );
            }
        }
    }

    // Who may read it: admins of the channel only, each workspace its own.
    let r = get(&m.env, &Claims::viewer(CH), AUDIT).await;
    assert_problem(&r, 403, "admin_required", "viewer");
    for claims in [
        Claims::new(&format!("{CH}_w01"), "child", "admin"),
        Claims::new("direct_customer", "regular", "admin"),
    ] {
        let r = get(&m.env, &claims, AUDIT).await;
        assert_problem(&r, 403, "not_channel_workspace", &claims.workspace_type);
    }
    let r = m.env.call("GET", AUDIT, None, None).await;
    assert_problem(&r, 401, "unauthenticated", "no claims");
    let other = get(&m.env, &Claims::admin("other_channel"), AUDIT).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert_eq!(other.json()["items"], serde_json::json!([]));
    assert!(other.json().get("nextCursor").is_none());
    // Another workspace's cursor is not one of this list's.
    let mine = get(&m.env, &admin, &format!("{AUDIT}?limit=1"))
        .await
        .json();
    let cursor = mine["nextCursor"].as_str().unwrap();
    let r = get(
        &m.env,
        &Claims::admin("other_channel"),
        &format!("{AUDIT}?cursor={cursor}"),
    )
    .await;
    assert_problem(
        &r,
        400,
        "invalid_cursor",
        "another workspace's audit cursor",
    );
}

// ---- who may see what -----------------------------------------------------------------------

#[tokio::test]
async fn the_views_answer_only_the_connectors_own_channel() {
    let m = connected_msp("views-authz", 6).await;
    let run = sync_and_wait(&m.env).await;
    let id = run_id(&run);
    // A second MSP with its own connector and run, and a third channel without a connector.
    let b = m.env.sim.create_organization("MSP B");
    m.env
        .seed_workspaces(&[
            workspace("msp_b", None, "channel", "B", "subscription", &[], 0, 0),
            workspace(
                "msp_b_c1",
                Some("msp_b"),
                "child",
                "B's customer",
                "subscription",
                &["EDR"],
                2,
                3,
            ),
        ])
        .await;
    assert_eq!(m.env.connect("msp_b", &b.partner_key).await.status, 201);
    assert!(m.env.sim.map_all(&b.organization_id, &[]));
    let rb = m.env.sync_now("msp_b").await;
    assert_eq!(rb.status, 202);
    let id_b = rb.json()["runId"].as_str().unwrap().to_owned();
    m.env.drain().await;

    let readings = readings_path(&id);
    let routes = [("readings", readings.as_str()), ("usage", USAGE)];
    for (name, path) in routes {
        for claims in [Claims::admin(CH), Claims::viewer(CH)] {
            let r = get(&m.env, &claims, path).await;
            assert_eq!(r.status, 200, "{name} as {}: {}", claims.role, r.body);
        }
        for claims in [
            Claims::new(&format!("{CH}_w01"), "child", "admin"),
            Claims::new(&format!("{CH}_w01"), "child", "viewer"),
            Claims::new("direct_customer", "regular", "admin"),
        ] {
            let r = get(&m.env, &claims, path).await;
            let what = format!("{name} as {} {}", claims.workspace_type, claims.role);
            assert_problem(&r, 403, "not_channel_workspace", &what);
        }
        let r = m.env.call("GET", path, None, None).await;
        assert_problem(&r, 401, "unauthenticated", name);
        // A channel without a connector: not found (never "forbidden").
        for claims in [
            Claims::admin("no_connector"),
            Claims::viewer("no_connector"),
        ] {
            let r = get(&m.env, &claims, path).await;
            assert_problem(&r, 404, "connector_not_found", name);
        }
        // Another connector id, or the other workspace's id as one: not found.
        for other in ["msp_b", "other", CH] {
            let p = path.replace("/connectors/gradient/", &format!("/connectors/{other}/"));
            let r = get(&m.env, &Claims::admin(CH), &p).await;
            assert_problem(&r, 404, "connector_not_found", &p);
        }
        let r = m
            .env
            .call("POST", path, Some(&Claims::admin(CH)), None)
            .await;
        assert_problem(&r, 405, "method_not_allowed", name);
    }
    let r = m
        .env
        .call("DELETE", AUDIT, Some(&Claims::admin(CH)), None)
        .await;
    assert_problem(&r, 405, "method_not_allowed", "audit");

    // The other MSP, with a connector of its own, reaches none of this connector's data: its
    // `gradient` connector is its own, this run is not one of its runs, and its usage and audit
    // show only its own accounts and actions.
    let b_admin = Claims::admin("msp_b");
    let r = get(&m.env, &b_admin, &readings).await;
    assert_problem(&r, 404, "run_not_found", "msp_b reading msp's run");
    let r = get(&m.env, &Claims::admin(CH), &readings_path(&id_b)).await;
    assert_problem(&r, 404, "run_not_found", "msp reading msp_b's run");
    let r = get(&m.env, &b_admin, &format!("{SYNCS}/{id}")).await;
    assert_problem(&r, 404, "run_not_found", "msp_b getting msp's run");
    let (bs, blines) = usage(&m.env, &b_admin).await;
    assert_eq!(num(&bs, "accounts"), 1);
    assert_eq!(
        blines.iter().map(pair_of).collect::<Vec<_>>(),
        vec![("msp_b_c1".to_string(), "EDR".to_string())]
    );
    assert_eq!(blines[0]["state"], "in_sync");
    assert_eq!(bs["lastSync"]["runId"], id_b.as_str());
    let (b_readings, _) = all_pages(&m.env, &b_admin, &readings_path(&id_b), 10).await;
    assert_eq!(b_readings.len(), 1);
    let (b_audit, _) = all_pages(&m.env, &b_admin, AUDIT, 10).await;
    assert!(
        b_audit
            .iter()
            .all(|e| e["actor"] == "user-of-msp_b" || e["actor"] == "system")
    );
    assert!(
        b_audit
            .iter()
            .filter_map(|e| e["runId"].as_str())
            .all(|r| r == id_b),
        "{b_audit:?}"
    );
    let (a_audit, _) = all_pages(&m.env, &Claims::admin(CH), AUDIT, 10).await;
    assert!(a_audit.iter().all(|e| e["actor"] != "user-of-msp_b"));
    assert!(a_audit.iter().all(|e| e["runId"] != id_b.as_str()));
}

// ---- a connector deleted and created again ---------------------------------------------------

#[tokio::test]
async fn a_recreated_connector_starts_empty_and_resends_everything() {
    let m = connected_msp("views-recreate", 12).await;
    let admin = Claims::admin(CH);
    let viewer = Claims::viewer(CH);
    let expected = expected_pairs(&m.children);
    let mapped = (expected.len() - m.unmapped.len()) as u64;
    let run1 = sync_and_wait(&m.env).await;
    assert_eq!(counts(&run1)["posted"], mapped);
    let run2 = sync_and_wait(&m.env).await;
    assert_eq!(
        (counts(&run2)["posted"], counts(&run2)["unchanged"]),
        (0, mapped)
    );

    let r = m
        .env
        .call("DELETE", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    // Between delete and create there is nothing to look at.
    for path in [USAGE.to_string(), readings_path(&run_id(&run1))] {
        let r = get(&m.env, &viewer, &path).await;
        assert_problem(&r, 404, "connector_not_found", &path);
    }
    let key = m.env.sim.organization(&m.org).unwrap().partner_key;
    assert_eq!(m.env.connect(CH, &key).await.status, 201);

    // Empty history, old runs unknown, usage all `new`, a full resend due.
    let (runs, _) = all_pages(&m.env, &viewer, SYNCS, 20).await;
    assert!(runs.is_empty(), "{runs:?}");
    for old in [&run1, &run2] {
        let r = get(&m.env, &viewer, &readings_path(&run_id(old))).await;
        assert_problem(&r, 404, "run_not_found", "an old incarnation's run");
        let r = get(&m.env, &viewer, &format!("{SYNCS}/{}", run_id(old))).await;
        assert_problem(&r, 404, "run_not_found", "an old incarnation's run");
    }
    let (s, lines) = usage(&m.env, &viewer).await;
    assert_summary_adds_up(&s, &lines);
    assert_eq!(num(&s, "new"), expected.len() as u64, "{s}");
    assert_eq!(num(&s, "lines"), expected.len() as u64);
    assert_eq!(num(&s, "wouldPost"), expected.len() as u64);
    assert_eq!(s["fullResendDue"], true);
    assert!(s.get("lastSync").is_none(), "{s}");
    assert!(lines.iter().all(|l| l.get("lastAccepted").is_none()));
    assert!(m.env.connector(CH).await.get("lastSync").is_none());

    // Its first sync posts every mapped pair again (a full resend), with no previous values.
    let run3 = sync_and_wait(&m.env).await;
    assert_eq!(run3["status"], "succeeded", "{run3}");
    let c3 = counts(&run3);
    assert_eq!(
        (c3["posted"], c3["unmapped"], c3["unchanged"]),
        (mapped, m.unmapped.len() as u64, 0)
    );
    let (items, _) = all_pages(&m.env, &viewer, &readings_path(&run_id(&run3)), 100).await;
    assert_tally_matches(&items, &run3);
    assert!(
        items.iter().all(|r| r.get("previous").is_none()),
        "{items:?}"
    );
    let org = m.env.sim.organization(&m.org).unwrap();
    for (acc, svc) in expected.keys().filter(|k| !m.unmapped.contains(*k)) {
        let rec = org.count(acc, &m.ids[svc]).unwrap();
        assert_eq!(rec.history.len(), 2, "{acc}/{svc}: sent by run 1 and run 3");
    }
    let (runs, _) = all_pages(&m.env, &viewer, SYNCS, 20).await;
    assert_eq!(
        runs.iter().map(run_id).collect::<Vec<_>>(),
        vec![run_id(&run3)]
    );
    let (s, _) = usage(&m.env, &viewer).await;
    assert_eq!(s["fullResendDue"], false);
    assert_eq!(num(&s, "inSync"), mapped);

    // A re-token cannot force a second full resend on the day one went out (nor does the same
    // token change anything): the preview says so...
    assert_eq!(m.env.retoken(CH, &key).await.status, 200);
    let (s, _) = usage(&m.env, &viewer).await;
    assert_eq!(s["fullResendDue"], false);
    // ...while a re-token a day after the last full resend makes the next run one again.
    m.env
        .age_last_full_resend(CH, time::Duration::days(2))
        .await;
    let key = m.env.sim.regenerate_key(&m.org).unwrap();
    assert_eq!(m.env.retoken(CH, &key).await.status, 200);
    let (s, _) = usage(&m.env, &viewer).await;
    assert_eq!(s["fullResendDue"], true);
    assert_eq!(num(&s, "wouldPost"), expected.len() as u64);
    let run4 = sync_and_wait(&m.env).await;
    let c4 = counts(&run4);
    assert_eq!(
        c4["posted"] + c4["unmapped"],
        expected.len() as u64,
        "{c4:?}"
    );

    // The trail holds both incarnations.
    let (audit, _) = all_pages(&m.env, &admin, AUDIT, 100).await;
    let actions: Vec<&str> = audit
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "connector.created")
            .count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "connector.deleted")
            .count(),
        1
    );
    assert_eq!(actions.iter().filter(|a| **a == "sync.finished").count(), 4);
}

/// The records of a CSV export (header first), as a spreadsheet would read them.
fn csv_records(r: &ApiResponse) -> Vec<Vec<String>> {
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("text/csv; charset=utf-8")
    );
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(r.body.as_bytes())
        .records()
        .map(|rec| rec.unwrap().iter().map(str::to_owned).collect())
        .collect()
}

/// `GET …/readings?format=csv` and `GET …/usage?format=csv`: every line (not paged), the same
/// filters, the contract's columns, RFC 4180, a named attachment, formulas defused.
#[tokio::test]
async fn exports_hold_every_line_in_csv_with_formulas_defused() {
    let m = connected_msp("views-csv", 12).await;
    let viewer = Claims::viewer(CH);
    // A customer whose name a spreadsheet would run as a formula, with a comma and quotes.
    let mut children = m.children.clone();
    children[0].name = "=HYPERLINK(\"http://x\", \"Bakery, Ltd\")".into();
    seed(&m.env, &children).await;
    let run = sync_and_wait(&m.env).await;
    let id = run_id(&run);

    let r = get(
        &m.env,
        &viewer,
        &format!("{}?format=csv", readings_path(&id)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some(format!("attachment; filename=\"gradient-{id}-readings.csv\"").as_str())
    );
    assert!(r.body.contains("\r\n"), "RFC 4180 line ends");
    let rows = csv_records(&r);
    assert_eq!(
        rows[0],
        [
            "accountId",
            "accountName",
            "service",
            "unit",
            "value",
            "previous",
            "outcome",
            "reason"
        ]
    );
    let (json, _) = all_pages(&m.env, &viewer, &readings_path(&id), 100).await;
    assert_eq!(rows.len() - 1, json.len(), "every reading, one header");
    assert_eq!(rows.len() as u64 - 1, counts(&run)["readings"]);
    for (row, item) in rows[1..].iter().zip(&json) {
        assert_eq!(row[0], item["accountId"].as_str().unwrap());
        assert_eq!(row[2], item["service"].as_str().unwrap());
        assert_eq!(row[4], item["value"].to_string());
        assert_eq!(row[6], item["outcome"].as_str().unwrap());
        let name = item["accountName"].as_str().unwrap();
        if name.starts_with('=') {
            assert_eq!(row[1], format!("'{name}"), "a formula is defused");
        } else {
            assert_eq!(row[1], name);
        }
    }
    assert!(rows.iter().any(|r| r[1].starts_with("'=HYPERLINK")));
    // The filter applies; an export is not paged.
    let r = get(
        &m.env,
        &viewer,
        &format!("{}?format=csv&outcome=unmapped", readings_path(&id)),
    )
    .await;
    let unmapped = csv_records(&r);
    assert_eq!(unmapped.len() - 1, m.unmapped.len());
    assert!(unmapped[1..].iter().all(|r| r[6] == "unmapped"));
    for q in ["format=csv&limit=5", "format=csv&cursor=abc", "format=xml"] {
        let r = get(&m.env, &viewer, &format!("{}?{q}", readings_path(&id))).await;
        assert_problem(&r, 400, "invalid_query", q);
    }

    let r = get(
        &m.env,
        &viewer,
        "/v1/psa/connectors/gradient/usage?format=csv",
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let today = OffsetDateTime::now_utc().date();
    assert_eq!(
        r.header("content-disposition").as_deref(),
        Some(format!("attachment; filename=\"gradient-usage-{today}.csv\"").as_str())
    );
    let rows = csv_records(&r);
    assert_eq!(
        rows[0],
        [
            "accountId",
            "accountName",
            "service",
            "unit",
            "current",
            "lastAcceptedValue",
            "lastAcceptedAt",
            "state"
        ]
    );
    let (summary, lines) = usage(&m.env, &viewer).await;
    assert_eq!(rows.len() as u64 - 1, num(&summary, "lines"));
    for (row, l) in rows[1..].iter().zip(&lines) {
        assert_eq!(row[0], l["accountId"].as_str().unwrap());
        assert_eq!(row[7], l["state"].as_str().unwrap());
        assert_eq!(
            row[5],
            l["lastAccepted"]["value"]
                .as_u64()
                .map(|v| v.to_string())
                .unwrap_or_default()
        );
    }
    let r = get(
        &m.env,
        &viewer,
        "/v1/psa/connectors/gradient/usage?format=csv&state=unmapped",
    )
    .await;
    assert_eq!(csv_records(&r).len() - 1, m.unmapped.len());
    let r = get(
        &m.env,
        &viewer,
        "/v1/psa/connectors/gradient/usage?format=csv&limit=100",
    )
    .await;
    assert_problem(&r, 400, "invalid_query", "usage csv with limit");
}

/// What a 300-account MSP's usage export weighs against Lambda's 6 MB response limit.
#[tokio::test]
async fn a_300_account_usage_export_is_far_below_the_response_limit() {
    let m = connected_msp("views-csv-300", 300).await;
    sync_and_wait(&m.env).await;
    let r = get(
        &m.env,
        &Claims::viewer(CH),
        "/v1/psa/connectors/gradient/usage?format=csv",
    )
    .await;
    assert_eq!(r.status, 200);
    let lines = csv_records(&r).len() - 1;
    let bytes = r.body.len();
    println!("usage export of 300 accounts: {lines} lines, {bytes} bytes");
    assert!(lines > 300, "{lines}");
    assert!(bytes < 1 << 20, "{bytes} bytes: far below 6 MB");
}
