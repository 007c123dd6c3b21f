//! Guard the bill: connector settings, the billing guard (hold, hold again, release, recover), and
//! PSA alerts for unmapped services — on the real local stack through the real handlers.

use gradient_sim::{Faults, Pair};
use harness::fixture::*;
use harness::{Claims, TestEnv};
use serde_json::{Value, json};

async fn patch(env: &TestEnv, claims: &Claims, body: &str) -> harness::ApiResponse {
    env.call(
        "PATCH",
        "/v1/psa/connectors/gradient",
        Some(claims),
        Some(body),
    )
    .await
}

async fn audit_actions(env: &TestEnv) -> Vec<Value> {
    let r = env
        .call(
            "GET",
            "/v1/psa/audit?limit=100",
            Some(&Claims::admin(CH)),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().unwrap().clone()
}

fn held_sum(c: &std::collections::BTreeMap<String, u64>) -> u64 {
    c["posted"] + c["unchanged"] + c["unmapped"] + c["skippedDisabled"] + c["failed"] + c["held"]
}

#[tokio::test]
async fn settings_have_defaults_change_by_patch_and_refuse_everything_else() {
    let m = connected_msp("guard-settings", 3).await;
    let env = &m.env;
    assert_eq!(
        env.connector(CH).await["settings"],
        json!({"guardDropPercent": 50, "psaAlerts": false, "notify": {"emails": [], "on": "always"}})
    );
    let admin = Claims::admin(CH);
    for bad in [
        r#"{"settings": {"guardDropPercent": 0}}"#,
        r#"{"settings": {"guardDropPercent": 101}}"#,
        r#"{"settings": {"guardDropPercent": 12.5}}"#,
        r#"{"settings": {"guardDropPercent": "50"}}"#,
        r#"{"settings": {"guardDropPercent": -1}}"#,
        r#"{"settings": {"psaAlerts": "yes"}}"#,
        r#"{"settings": {"psaAlerts": null}}"#,
        r#"{"settings": {"colour": "blue"}}"#,
        r#"{"settings": {"psaAlerts": true, "extra": 1}}"#,
        r#"{"settings": []}"#,
        r#"{"settings": 5}"#,
        r#"{"settings": null}"#,
        r#"{}"#,
        r#"{"settings": {}, "apiToken": "x"}"#,
        r#"[]"#,
    ] {
        let r = patch(env, &admin, bad).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_settings"),
            "{bad}: {}",
            r.body
        );
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/problem+json")
        );
    }
    let r = patch(env, &admin, "{not json").await;
    assert_eq!((r.status, r.code().as_str()), (400, "invalid_body"));
    // Nothing changed by any of them.
    assert_eq!(
        env.connector(CH).await["settings"],
        json!({"guardDropPercent": 50, "psaAlerts": false, "notify": {"emails": [], "on": "always"}})
    );
    let r = patch(
        env,
        &Claims::viewer(CH),
        r#"{"settings": {"psaAlerts": true}}"#,
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (403, "admin_required"));
    let r = patch(
        env,
        &Claims::new(CH, "child", "admin"),
        r#"{"settings": {"psaAlerts": true}}"#,
    )
    .await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (403, "not_channel_workspace")
    );
    let r = patch(
        env,
        &Claims::admin("msp_other"),
        r#"{"settings": {"psaAlerts": true}}"#,
    )
    .await;
    assert_eq!((r.status, r.code().as_str()), (404, "connector_not_found"));

    // A PATCH changes only what it names.
    let r = patch(env, &admin, r#"{"settings": {"psaAlerts": true}}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["settings"],
        json!({"guardDropPercent": 50, "psaAlerts": true, "notify": {"emails": [], "on": "always"}})
    );
    let r = patch(env, &admin, r#"{"settings": {"guardDropPercent": 30}}"#).await;
    assert_eq!(
        r.json()["settings"],
        json!({"guardDropPercent": 30, "psaAlerts": true, "notify": {"emails": [], "on": "always"}})
    );
    let r = patch(env, &admin, r#"{"settings": {"guardDropPercent": null}}"#).await;
    assert_eq!(
        r.json()["settings"],
        json!({"guardDropPercent": null, "psaAlerts": true, "notify": {"emails": [], "on": "always"}})
    );
    // The same value again is no change, and is not audited.
    let r = patch(env, &admin, r#"{"settings": {"guardDropPercent": null}}"#).await;
    assert_eq!(r.status, 200);
    let changes: Vec<Value> = audit_actions(env)
        .await
        .into_iter()
        .filter(|e| e["action"] == "connector.settings_changed")
        .collect();
    assert_eq!(changes.len(), 3, "{changes:?}");
    assert_eq!(changes[0]["detail"], json!({"guardDropPercent": "off"}));
    assert_eq!(changes[1]["detail"], json!({"guardDropPercent": "30"}));
    assert_eq!(changes[2]["detail"], json!({"psaAlerts": "true"}));
    assert_eq!(changes[0]["actor"], admin.sub.as_str());
}

/// The fixture with most customers' counts broken to 0, as a bad upstream refresh would.
fn zeroed(children: &[Child]) -> Vec<Child> {
    children
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            if i % 5 != 0 {
                c.users = 0;
                c.devices = 0;
            }
            c
        })
        .collect()
}

#[tokio::test]
async fn a_big_drop_is_held_until_released_or_recovered() {
    let m = connected_msp("guard-hold", 20).await;
    let env = &m.env;
    let first = sync_and_wait(env).await;
    assert_eq!(first["status"], "succeeded");
    assert!(
        first["guard"]["before"] == 0,
        "nothing was accepted before the first run: {first}"
    );
    let before_state = env.sim.organization(&m.org).unwrap();

    let broken = zeroed(&m.children);
    seed(env, &broken).await;
    let usage = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await
        .json();
    assert_eq!(
        usage["summary"]["guard"]["wouldHold"], true,
        "{}",
        usage["summary"]
    );

    let held = sync_and_wait(env).await;
    assert_eq!(held["status"], "held", "{held}");
    let c = counts(&held);
    assert_eq!(held_sum(&c), c["readings"], "{c:?}");
    assert_eq!(c["posted"], 0);
    assert!(c["held"] > 0);
    let g = &held["guard"];
    assert!(
        g["after"].as_u64().unwrap() < g["before"].as_u64().unwrap() / 2,
        "{g}"
    );
    let want = 100.0 * (g["before"].as_f64().unwrap() - g["after"].as_f64().unwrap())
        / g["before"].as_f64().unwrap();
    assert!(
        (g["dropPercent"].as_f64().unwrap() - want).abs() < 0.01,
        "{g}"
    );
    assert!(
        held["reason"].as_str().unwrap().contains("billing guard"),
        "{held}"
    );
    // Nothing reached Gradient; the held readings show what would have gone out.
    assert_eq!(
        env.sim.organization(&m.org).unwrap().counts,
        before_state.counts
    );
    let run_id = held["runId"].as_str().unwrap();
    let r = env
        .call(
            "GET",
            &format!("/v1/psa/connectors/gradient/syncs/{run_id}/readings?outcome=held&limit=100"),
            Some(&Claims::viewer(CH)),
            None,
        )
        .await
        .json();
    let items = r["items"].as_array().unwrap();
    assert_eq!(items.len() as u64, c["held"]);
    assert!(
        items
            .iter()
            .any(|i| i["value"] == 0 && i["previous"].as_u64().unwrap() > 0)
    );
    let actions: Vec<String> = audit_actions(env)
        .await
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_owned())
        .collect();
    assert!(actions.contains(&"sync.held".to_owned()), "{actions:?}");
    assert_eq!(env.connector(CH).await["lastSync"]["status"], "held");

    // Still broken: held again.
    let again = sync_and_wait(env).await;
    assert_eq!(again["status"], "held", "{again}");
    let again_id = again["runId"].as_str().unwrap();

    // Release: only an admin, only the latest run, only while held.
    let release = |id: &str, claims: Claims| {
        let path = format!("/v1/psa/connectors/gradient/syncs/{id}/release");
        async move { env.call("POST", &path, Some(&claims), None).await }
    };
    let r = release(again_id, Claims::viewer(CH)).await;
    assert_eq!((r.status, r.code().as_str()), (403, "admin_required"));
    let r = release(run_id, Claims::admin(CH)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "run_not_held"),
        "an older held run"
    );
    let r = release(first["runId"].as_str().unwrap(), Claims::admin(CH)).await;
    assert_eq!((r.status, r.code().as_str()), (409, "run_not_held"));
    let r = release("20261201T000000.000Z-nope", Claims::admin(CH)).await;
    assert_eq!((r.status, r.code().as_str()), (404, "run_not_found"));
    // The on-demand function serves it (as the template routes it).
    let resp = sync_on_demand::handle(
        &env.api,
        harness::http_event(
            "POST",
            &format!("/v1/psa/connectors/gradient/syncs/{again_id}/release"),
            Some(&Claims::admin(CH)),
            None,
        ),
    )
    .await;
    assert_eq!(resp.status(), 202);
    let r = release(again_id, Claims::admin(CH)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "sync_in_progress"),
        "{}",
        r.body
    );
    env.drain().await;
    let runs = env.syncs(CH).await;
    let released = &runs["items"][0];
    assert_eq!(released["trigger"], "release", "{released}");
    assert_eq!(released["releaseOf"], again_id);
    assert_eq!(released["status"], "succeeded", "{released}");
    assert!(counts(released)["posted"] > 0);
    let org = env.sim.organization(&m.org).unwrap();
    for ((acc, key), want) in expected_pairs(&broken) {
        if !m.unmapped.contains(&(acc.clone(), key.clone())) {
            assert_eq!(
                org.count(&acc, &m.ids[&key]).map(|c| c.unit_count),
                Some(want),
                "{acc}/{key}"
            );
        }
    }
    let released_audit: Vec<Value> = audit_actions(env)
        .await
        .into_iter()
        .filter(|e| e["action"] == "sync.released")
        .collect();
    assert_eq!(released_audit.len(), 1);
    assert_eq!(released_audit[0]["actor"], Claims::admin(CH).sub.as_str());
    let r = release(again_id, Claims::admin(CH)).await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (409, "run_not_held"),
        "released once"
    );

    // The numbers come back: a rise is never held, the next run posts them.
    seed(env, &m.children).await;
    let recovered = sync_and_wait(env).await;
    assert_eq!(recovered["status"], "succeeded", "{recovered}");
    assert!(counts(&recovered)["posted"] > 0, "{recovered}");
    // The zeros Gradient holds now count for nothing in the guard: no drop to judge.
    assert!(recovered["guard"]["dropPercent"].as_f64().unwrap() <= 0.0);
}

#[tokio::test]
async fn the_guard_recovers_by_itself_and_small_drops_or_guard_off_post_at_once() {
    let m = connected_msp("guard-small", 20).await;
    let env = &m.env;
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    // Held, then the upstream refresh is fixed before anyone releases: the next run posts.
    seed(env, &zeroed(&m.children)).await;
    assert_eq!(sync_and_wait(env).await["status"], "held");
    seed(env, &m.children).await;
    let fixed = sync_and_wait(env).await;
    assert_eq!(fixed["status"], "succeeded", "{fixed}");
    assert_eq!(
        counts(&fixed)["posted"],
        0,
        "nothing changed against what Gradient holds"
    );

    // A small drop (one customer offboards a few users) is not held.
    let mut small = m.children.clone();
    small[1].users -= 1;
    seed(env, &small).await;
    let r = sync_and_wait(env).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert!(counts(&r)["posted"] > 0);

    // Guard off: even a big drop posts at once.
    let r = patch(
        env,
        &Claims::admin(CH),
        r#"{"settings": {"guardDropPercent": null}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    seed(env, &zeroed(&small)).await;
    let usage = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await
        .json();
    assert_eq!(usage["summary"]["guard"]["wouldHold"], false);
    assert!(usage["summary"]["guard"]["dropPercent"].as_f64().unwrap() > 50.0);
    let r = sync_and_wait(env).await;
    assert_eq!(r["status"], "succeeded", "{r}");
    assert!(
        r["guard"]["before"].as_u64().unwrap() > 0,
        "the figures are recorded even with the guard off"
    );
}

/// Unmaps one service of `n` mapped accounts (partially mapped accounts).
fn partially_unmap(m: &Msp, n: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (acc, key) in expected_pairs(&m.children).into_keys() {
        if out.len() == n {
            break;
        }
        if m.unmapped.iter().any(|(a, _)| *a == acc)
            || out.iter().any(|(a, _): &(String, String)| *a == acc)
        {
            continue;
        }
        if expected_pairs(&m.children)
            .keys()
            .filter(|(a, _)| *a == acc)
            .count()
            < 2
        {
            continue; // keep one service mapped
        }
        assert!(m.env.sim.set_mappings(
            &m.org,
            &[Pair::new(acc.clone(), m.ids[&key].clone())],
            false
        ));
        out.push((acc, key));
    }
    out
}

#[tokio::test]
async fn psa_alerts_raise_one_ticket_per_partially_mapped_account() {
    let m = connected_msp("guard-alerts", 24).await;
    let env = &m.env;
    // Some accounts are mapped only in part (an unmapped pair answers 404 on every run).
    let partial = partially_unmap(&m, 3);
    assert_eq!(partial.len(), 3);
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    assert!(
        env.sim.organization(&m.org).unwrap().alerts.is_empty(),
        "alerts are off by default"
    );
    let r = patch(
        env,
        &Claims::admin(CH),
        r#"{"settings": {"psaAlerts": true}}"#,
    )
    .await;
    assert_eq!(r.status, 200);

    let run = sync_and_wait(env).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let alerts = env.sim.organization(&m.org).unwrap().alerts;
    // One per partially mapped account; none for the fully unmapped ones (ending in 2 or 8).
    let mut alerted: Vec<String> = alerts.iter().map(|a| a.account_id.clone()).collect();
    alerted.sort();
    let mut want: Vec<String> = partial.iter().map(|(a, _)| a.clone()).collect();
    want.sort();
    assert_eq!(alerted, want, "{alerts:?}");
    for a in &alerts {
        let (_, key) = partial
            .iter()
            .find(|(acc, _)| *acc == a.account_id)
            .unwrap();
        assert_eq!((a.priority, a.status), (2, 1));
        assert!(a.title.contains("1 service"), "{}", a.title);
        assert!(a.description.contains("Synthesize"), "{}", a.description);
        assert_eq!(
            a.service_id.as_deref(),
            Some(m.ids[key].as_str()),
            "about one service"
        );
        assert!(!a.alert_id.is_empty());
    }
    let ids: std::collections::BTreeSet<&str> =
        alerts.iter().map(|a| a.alert_id.as_str()).collect();
    assert_eq!(ids.len(), alerts.len(), "unique alert ids");
    let sent: Vec<Value> = audit_actions(env)
        .await
        .into_iter()
        .filter(|e| e["action"] == "psa.alert_sent")
        .collect();
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0]["detail"]["kind"], "unmapped_services");
    // Each was asked at once whether it became a ticket (#11): yes, with Gradient's id.
    for e in &sent {
        assert_eq!(e["detail"]["ticket"], "created", "{e}");
        assert!(
            e["detail"]["ticketId"]
                .as_str()
                .is_some_and(|t| t.starts_with("T-"))
        );
    }

    // Within the interval: no repeat.
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    assert_eq!(env.sim.organization(&m.org).unwrap().alerts.len(), 3);

    // No token in any alert.
    let partner = env.sim.organization(&m.org).unwrap().partner_key;
    let text = format!("{:?}", env.sim.organization(&m.org).unwrap().alerts);
    assert!(!text.contains(&partner) && !text.contains(&env.sim.vendor_key()));
}

#[tokio::test]
async fn a_failing_alert_endpoint_does_not_fail_the_run_and_alerts_off_sends_none() {
    let m = connected_msp("guard-alerts-fail", 24).await;
    let env = &m.env;
    partially_unmap(&m, 2);
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    // Off: none.
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    assert!(env.sim.organization(&m.org).unwrap().alerts.is_empty());
    // On, but the alerting endpoint fails: the run still succeeds, nothing is audited, and the
    // next run (endpoint healthy) raises them.
    patch(
        env,
        &Claims::admin(CH),
        r#"{"settings": {"psaAlerts": true}}"#,
    )
    .await;
    env.sim.set_faults(Faults {
        alert_status: Some(503),
        ..Default::default()
    });
    let run = sync_and_wait(env).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert!(env.sim.organization(&m.org).unwrap().alerts.is_empty());
    assert!(
        !audit_actions(env)
            .await
            .iter()
            .any(|e| e["action"] == "psa.alert_sent")
    );
    env.sim.clear_faults();
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    assert_eq!(env.sim.organization(&m.org).unwrap().alerts.len(), 2);
}

/// Health the MSP sees in Synthesize: after `SYNC_ERROR_AFTER` (3) runs in a row end `failed` or
/// `partially_failed`, the integration status is `error`; the first run that succeeds sets it back
/// to `active`. One PATCH per change, each audited with from/to.
#[tokio::test]
async fn repeated_failures_show_in_synthesize_and_a_success_clears_them() {
    let m = connected_msp("guard-health", 3).await;
    let env = &m.env;
    assert!(env.sim.map_all(&m.org, &[]));
    let first = sync_and_wait(env).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    let status = |env: &harness::TestEnv| env.sim.organization(&m.org).unwrap().status;
    assert_eq!(
        status(env),
        "active",
        "Gradient sets active on the first usage"
    );
    // One account Gradient refuses: every run from now on is partially failed.
    let refused = format!("{CH}_refused");
    let mut children = m.children.clone();
    children.push(Child {
        id: refused.clone(),
        parent: CH.into(),
        name: "Refused Ltd".into(),
        status: "subscription",
        services: vec!["EDR"],
        users: 4,
        devices: 6,
    });
    seed(env, &children).await;
    assert!(
        env.sim
            .refuse_account(&m.org, &refused, "name not allowed", true)
    );
    let patches = |env: &harness::TestEnv| {
        env.sim
            .requests()
            .requests
            .iter()
            .filter(|r| r.method == "PATCH" && r.path.contains("/organization/status/"))
            .map(|r| r.path.rsplit('/').next().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    env.sim.clear_requests();
    for n in 1..=4 {
        let run = sync_and_wait(env).await;
        assert_eq!(run["status"], "partially_failed", "run {n}: {run}");
        let want = if n < 3 { "active" } else { "error" };
        assert_eq!(status(env), want, "after {n} failed runs");
    }
    assert_eq!(
        patches(env),
        vec!["error"],
        "one PATCH for the change, none after"
    );

    assert!(env.sim.refuse_account(&m.org, &refused, "", false));
    env.sim.clear_requests();
    let run = sync_and_wait(env).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(status(env), "active");
    assert_eq!(patches(env), vec!["active"]);
    let set: Vec<(String, String)> = audit_actions(env)
        .await
        .iter()
        .filter(|e| e["action"] == "psa.status_set")
        .map(|e| {
            (
                e["detail"]["from"].as_str().unwrap_or_default().to_owned(),
                e["detail"]["to"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        set,
        vec![
            ("error".to_owned(), "active".to_owned()),
            ("active".to_owned(), "error".to_owned()),
        ],
        "newest first"
    );
}

/// `settings.notify` (contract): a new connector starts with the creator's `email` claim and
/// `on: always`; a PATCH sets it as a whole object; at most 10 plain addresses; anything else is
/// 400 `invalid_settings` and changes nothing.
#[tokio::test]
async fn notify_settings_start_with_the_creators_address_and_change_only_when_valid() {
    let env = TestEnv::start("guard-notify").await;
    seed(&env, &fixture(3)).await;
    let org = env.sim.create_organization("Acme MSP");
    let mut admin = Claims::admin(CH);
    admin.email = Some("it@acme-msp.example".into());
    let body = json!({"type": "gradient", "apiToken": org.partner_key}).to_string();
    let r = env
        .call("POST", "/v1/psa/connectors", Some(&admin), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json()["settings"]["notify"],
        json!({"emails": ["it@acme-msp.example"], "on": "always"})
    );
    let good = json!({"settings": {"notify": {
        "emails": ["ops@acme-msp.example", "billing@acme-msp.example", "OPS@acme-msp.example"],
        "on": "problems"
    }}});
    let r = patch(&env, &admin, &good.to_string()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let want =
        json!({"emails": ["ops@acme-msp.example", "billing@acme-msp.example"], "on": "problems"});
    assert_eq!(r.json()["settings"]["notify"], want, "duplicates dropped");
    let eleven: Vec<String> = (0..11).map(|i| format!("u{i}@acme-msp.example")).collect();
    for bad in [
        json!({"emails": eleven, "on": "always"}),
        json!({"emails": ["not an address"], "on": "always"}),
        json!({"emails": ["Jane <jane@acme-msp.example>"], "on": "always"}),
        json!({"emails": ["root@[127.0.0.1]"], "on": "always"}),
        json!({"emails": ["x@localhost"], "on": "always"}),
        json!({"emails": [], "on": "sometimes"}),
        json!({"emails": []}),
        json!({"emails": [], "on": "never", "cc": []}),
        json!({"emails": "ops@acme-msp.example", "on": "never"}),
        json!({"emails": [7], "on": "never"}),
    ] {
        let r = patch(
            &env,
            &admin,
            &json!({"settings": {"notify": bad}}).to_string(),
        )
        .await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (400, "invalid_settings"),
            "{bad}"
        );
    }
    assert_eq!(
        env.connector(CH).await["settings"]["notify"],
        want,
        "nothing changed"
    );
    let changes: Vec<Value> = audit_actions(&env)
        .await
        .into_iter()
        .filter(|e| e["action"] == "connector.settings_changed")
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0]["detail"]["notify"], "on problems, 2 address(es)");
    assert!(
        !changes[0].to_string().contains("acme-msp.example"),
        "the audit names no address"
    );
}

/// Confirmed tickets (#11): a ticket still pending is asked again on the next run and its audit
/// entry says what it became; a failed ticket is raised again on the next run, whatever the
/// alert interval says.
#[tokio::test]
async fn psa_tickets_are_confirmed_and_a_failed_one_is_raised_again() {
    let m = connected_msp("guard-tickets", 24).await;
    let env = &m.env;
    let partial = partially_unmap(&m, 1);
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    let r = patch(
        env,
        &Claims::admin(CH),
        r#"{"settings": {"psaAlerts": true}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let sent = |items: Vec<Value>| -> Vec<Value> {
        items
            .into_iter()
            .filter(|e| e["action"] == "psa.alert_sent")
            .collect()
    };

    // Pending at once; created when the next run asks again. One entry, updated.
    env.sim.set_faults(Faults {
        alert_ticket: Some(gradient_sim::AlertTicket {
            status: "pending".into(),
            errors: vec![],
        }),
        ..Default::default()
    });
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    let first = sent(audit_actions(env).await);
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["detail"]["ticket"], "pending");
    assert_eq!(first[0]["detail"]["accountId"], partial[0].0.as_str());
    env.sim.clear_faults();
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    let after = sent(audit_actions(env).await);
    assert_eq!(after.len(), 1, "the same entry, not a new alert: {after:?}");
    assert_eq!(after[0]["detail"]["ticket"], "created", "{after:?}");
    assert!(after[0]["detail"]["ticketId"].is_string());
    assert_eq!(env.sim.organization(&m.org).unwrap().alerts.len(), 1);

    // A failed ticket: recorded with Gradient's first error, and raised again next run although
    // the 7-day interval has not passed.
    // A second account mapped only in part (the first call's account comes first again).
    let more = partially_unmap(&m, 2);
    assert_eq!(more[0], partial[0]);
    let other = more[1].0.clone();
    // Its counts change, so this run posts them (and meets the 404 of the unmapped pair).
    let mut children = m.children.clone();
    for c in children.iter_mut().filter(|c| c.id == other) {
        c.users += 1;
        c.devices += 1;
    }
    seed(env, &children).await;
    env.sim.set_faults(Faults {
        alert_ticket: Some(gradient_sim::AlertTicket {
            status: "failed".into(),
            // Gradient's words may carry the partner key: they are scrubbed before the audit.
            errors: vec![format!(
                "no PSA company mapped for this account (key {})",
                env.sim.organization(&m.org).unwrap().partner_key
            )],
        }),
        ..Default::default()
    });
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    let failed: Vec<Value> = sent(audit_actions(env).await)
        .into_iter()
        .filter(|e| e["detail"]["accountId"] == other.as_str())
        .collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["detail"]["ticket"], "failed");
    let error = failed[0]["detail"]["ticketError"].as_str().unwrap();
    assert!(
        error.starts_with("no PSA company mapped for this account (key [REDACTED]"),
        "{error}"
    );
    assert!(!error.contains(&env.sim.organization(&m.org).unwrap().partner_key));
    let raised = |env: &TestEnv| {
        env.sim
            .organization(&m.org)
            .unwrap()
            .alerts
            .iter()
            .filter(|a| a.account_id == other)
            .count()
    };
    assert_eq!(raised(env), 1);
    env.sim.clear_faults();
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    assert_eq!(raised(env), 2, "raised again the next run");
    assert_eq!(sync_and_wait(env).await["status"], "succeeded");
    assert_eq!(
        raised(env),
        2,
        "created this time: the interval holds again"
    );
}
