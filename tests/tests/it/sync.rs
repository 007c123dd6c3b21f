//! The usage sync end to end: on-demand requests and the daily schedule through their real
//! handlers, jobs on the (moto) SQS queue, the real worker driven with SQS event payloads,
//! DynamoDB Local, and the Gradient simulator. Expected counts are computed here, independently
//! of the product's planning code, from the fixture and a unit table written out in this file.

use gradient_sim::{Faults, Pair};
use harness::fixture::*;
use harness::{Claims, workspace};
use std::collections::BTreeSet;

#[tokio::test]
async fn a_sync_posts_exactly_the_expected_counts() {
    let m = connected_msp("sync-fixture", 24).await;
    let expected = expected_pairs(&m.children);
    let run = sync_and_wait(&m.env).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["trigger"], "on_demand");
    assert_eq!(run["requestedBy"], format!("user-of-{CH}"));
    let c = counts(&run);
    outcomes_add_up(&c);
    assert_eq!(c["readings"], expected.len() as u64);
    assert_eq!(c["unmapped"], m.unmapped.len() as u64);
    assert_eq!(c["posted"], (expected.len() - m.unmapped.len()) as u64);
    assert_eq!(
        (c["failed"], c["unchanged"], c["skippedDisabled"]),
        (0, 0, 0)
    );
    assert_eq!(
        c["accounts"],
        m.children.iter().filter(|c| c.reported()).count() as u64
    );

    let org = m.env.sim.organization(&m.org).unwrap();
    for ((acc, key), want) in &expected {
        let got = org.count(acc, &m.ids[key]).map(|r| r.unit_count);
        if m.unmapped.contains(&(acc.clone(), key.clone())) {
            assert_eq!(got, None, "{acc}/{key} is unmapped");
        } else {
            assert_eq!(got, Some(*want), "{acc}/{key}");
        }
    }
    // Nothing else: no count for a disabled service or an inactive workspace.
    assert_eq!(org.counts.len(), expected.len() - m.unmapped.len());
    // no_build on every count but the run's last one.
    let history: Vec<_> = org.counts.iter().flat_map(|c| c.history.iter()).collect();
    assert_eq!(history.iter().filter(|h| !h.no_build).count(), 1);
    // The connector shows the run as its lastSync.
    let conn = m.env.connector(CH).await;
    assert_eq!(conn["lastSync"]["runId"], run["runId"]);
    assert_eq!(conn["lastSync"]["counts"]["posted"], c["posted"]);

    // Between runs: one service disabled, one workspace's users change, one workspace renamed,
    // one added.
    let mut children = m.children.clone();
    let (di, disabled) = children
        .iter()
        .enumerate()
        .find_map(|(i, ch)| {
            let s = ch
                .services
                .iter()
                .find(|s| !m.unmapped.contains(&(ch.id.clone(), s.to_string())))?;
            ch.reported().then_some((i, s.to_string()))
        })
        .unwrap();
    children[di].services.retain(|s| *s != disabled);
    let ci = (di + 1..children.len())
        .find(|&i| {
            children[i].reported() && children[i].services.iter().any(|s| USER_UNIT.contains(s))
        })
        .unwrap();
    children[ci].users += 5;
    children[ci + 1 - 1].name = format!("{} Renamed", children[ci].name);
    children.push(Child {
        id: format!("{CH}_new"),
        parent: CH.into(),
        name: "Brand New".into(),
        status: "trial",
        services: vec!["EDR"],
        users: 1,
        devices: 7,
    });
    seed(&m.env, &children).await;
    let new_pair = Pair::new(format!("{CH}_new"), m.ids["EDR"].clone());
    let before = m.env.sim.organization(&m.org).unwrap();
    let run2 = sync_and_wait(&m.env).await;
    assert_eq!(run2["status"], "succeeded", "{run2}");
    let c2 = counts(&run2);
    outcomes_add_up(&c2);
    assert_eq!(c2["skippedDisabled"], 1);
    assert_eq!(c2["accountsCreated"], 1);
    assert_eq!(c2["accountsRenamed"], 1);
    let expected2 = expected_pairs(&children);
    let changed: Vec<_> = expected2
        .iter()
        .filter(|(k, v)| !m.unmapped.contains(k) && expected.get(*k) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    // The new account is not mapped yet: it is unmapped, then posted once mapped.
    assert_eq!(c2["posted"], changed.len() as u64 - 1, "{changed:?}");
    assert_eq!(c2["unmapped"], m.unmapped.len() as u64 + 1);
    assert_eq!(
        c2["unchanged"],
        (expected2.len() - changed.len() - m.unmapped.len()) as u64
    );
    let after = m.env.sim.organization(&m.org).unwrap();
    // The disabled service keeps its last value; no count (and no 0) was sent for it.
    let disabled_id = &m.ids[&disabled];
    let acc = &children[di].id;
    assert_eq!(
        after.count(acc, disabled_id),
        before.count(acc, disabled_id)
    );
    assert_eq!(after.count(acc, disabled_id).unwrap().history.len(), 1);
    for k in changed.iter().filter(|(a, _)| !a.ends_with("_new")) {
        assert_eq!(
            after.count(&k.0, &m.ids[&k.1]).unwrap().unit_count,
            expected2[k],
            "{k:?}"
        );
    }

    // Mapping the new account makes the next run post it.
    assert!(
        m.env
            .sim
            .set_mappings(&m.org, std::slice::from_ref(&new_pair), true)
    );
    let run3 = sync_and_wait(&m.env).await;
    assert_eq!(counts(&run3)["posted"], 1, "{run3}");
    assert_eq!(
        m.env
            .sim
            .organization(&m.org)
            .unwrap()
            .count(&new_pair.account_id, &new_pair.service_id)
            .unwrap()
            .unit_count,
        7
    );

    // History: newest first, paged with a cursor.
    let page = m
        .env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/syncs?limit=2",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await
        .json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["runId"], run3["runId"]);
    assert_eq!(items[1]["runId"], run2["runId"]);
    let cursor = page["nextCursor"].as_str().unwrap();
    let page2 = m
        .env
        .call(
            "GET",
            &format!("/v1/psa/connectors/gradient/syncs?limit=2&cursor={cursor}"),
            Some(&Claims::viewer(CH)),
            None,
        )
        .await
        .json();
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["items"][0]["runId"], run["runId"]);
    let bad = m
        .env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/syncs?limit=500",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_query".into()));
    let bad = m
        .env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/syncs?cursor=%21%21",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await;
    assert_eq!((bad.status, bad.code()), (400, "invalid_cursor".into()));
}

#[tokio::test]
async fn faults_lose_nothing_and_the_next_run_posts_what_failed() {
    let m = connected_msp("sync-faults", 18).await;
    let expected = expected_pairs(&m.children);
    m.env.sim.set_faults(Faults {
        rate429: 0.2,
        rate5xx: 0.1,
        slow_rate: 0.05,
        slow_ms: 200,
        ..Default::default()
    });
    let run = sync_and_wait(&m.env).await;
    let c = counts(&run);
    outcomes_add_up(&c);
    assert!(
        matches!(
            run["status"].as_str(),
            Some("succeeded" | "partially_failed" | "failed")
        ),
        "{run}"
    );
    let failures: BTreeSet<(String, String)> = run["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["accountId"].as_str().unwrap().to_string(),
                f["service"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(failures.len() as u64, c["failed"].min(50));
    let org = m.env.sim.organization(&m.org).unwrap();
    for ((acc, key), want) in &expected {
        let k = (acc.clone(), key.clone());
        if m.unmapped.contains(&k) {
            continue;
        }
        let got = org.count(acc, &m.ids[key]).map(|r| r.unit_count);
        assert!(
            got == Some(*want) || failures.contains(&k),
            "{acc}/{key} neither posted nor recorded as failed"
        );
    }
    m.env.sim.clear_faults();
    let run2 = sync_and_wait(&m.env).await;
    assert_eq!(run2["status"], "succeeded", "{run2}");
    assert!(
        c["failed"] > 0,
        "the fixture's faults make some readings fail"
    );
    // The first run carried the connect's full resend and had failures: a full resend counts as
    // done only after a run without failures, so the next run sends every mapped reading again.
    let mapped = (expected.len() - m.unmapped.len()) as u64;
    assert_eq!(counts(&run2)["posted"], mapped, "{run2}");
    let run3 = sync_and_wait(&m.env).await;
    assert_eq!(run3["status"], "succeeded", "{run3}");
    assert_eq!(
        (counts(&run3)["posted"], counts(&run3)["unchanged"]),
        (0, mapped),
        "after the full resend is done, only changes go out"
    );
    let org = m.env.sim.organization(&m.org).unwrap();
    for ((acc, key), want) in &expected {
        if !m.unmapped.contains(&(acc.clone(), key.clone())) {
            assert_eq!(
                org.count(acc, &m.ids[key]).map(|r| r.unit_count),
                Some(*want),
                "{acc}/{key}"
            );
        }
    }
}

#[tokio::test]
async fn a_regenerated_token_disconnects_and_stops_the_run() {
    let m = connected_msp("sync-401", 18).await;
    m.env.sim.clear_requests();
    m.env.sim.set_faults(Faults {
        unauthorized_after: Some(12),
        ..Default::default()
    });
    let run = sync_and_wait(&m.env).await;
    assert_eq!(run["status"], "token_rejected", "{run}");
    let c = counts(&run);
    outcomes_add_up(&c);
    let conn = m.env.connector(CH).await;
    assert_eq!(conn["status"], "disconnected");
    assert_eq!(conn["statusReason"], "token_rejected");
    let log = m.env.sim.requests().requests;
    let first = log.iter().position(|r| r.status == 401).expect("a 401");
    let after = &log[first + 1..];
    // Only counts already in flight when the 401 arrived may follow it; nothing is sent later.
    assert!(after.iter().all(|r| r.status == 401), "{after:?}");
    assert!(
        after.len() < psa_domain::usecase::sync::SyncPolicy::default().in_flight,
        "{} calls after the 401",
        after.len()
    );
    let r = m.env.sync_now(CH).await;
    assert_eq!((r.status, r.code()), (409, "connector_disconnected".into()));
    // The admin pastes the new token: connected again, and a sync runs.
    m.env.sim.clear_faults();
    let new_key = m.env.sim.regenerate_key(&m.org).unwrap();
    assert_eq!(m.env.retoken(CH, &new_key).await.status, 200);
    let run2 = sync_and_wait(&m.env).await;
    assert_eq!(run2["status"], "succeeded", "{run2}");
    // Through the whole sync path — worker, 401, re-token — no token reached a log line or an item.
    let logs = harness::logs::captured();
    assert!(
        logs.contains("sync run finished"),
        "log capture is not working"
    );
    let items = format!("{:?}", m.env.psa_items().await);
    let vendor_key = m.env.sim.vendor_key();
    for secret in [new_key.as_str(), vendor_key.as_str()] {
        assert!(!logs.contains(secret), "a log line carried a key");
        assert!(!items.contains(secret), "a DynamoDB item carried a key");
    }
}

#[tokio::test]
async fn one_run_for_concurrent_requests_and_duplicate_deliveries() {
    let m = connected_msp("sync-race", 12).await;
    let results = futures::future::join_all((0..10).map(|_| m.env.sync_now(CH))).await;
    let mut statuses: Vec<u16> = results.iter().map(|r| r.status).collect();
    statuses.sort();
    assert_eq!(statuses, [vec![202], vec![409; 9]].concat());
    assert!(
        results
            .iter()
            .filter(|r| r.status == 409)
            .all(|r| r.code() == "sync_in_progress")
    );
    let jobs = m.env.queued_jobs().await;
    assert_eq!(jobs.len(), 1);

    // The same job delivered twice at once (SQS is at-least-once): one run, each count once.
    let batch = m.env.receive(30).await;
    assert_eq!(batch.len(), 1);
    let (w1, w2) = (m.env.worker(), m.env.worker());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let (r1, r2) = tokio::join!(
        sync_worker::handle(&w1, harness::sqs_event(&batch), "req-a", deadline),
        sync_worker::handle(&w2, harness::sqs_event(&batch), "req-b", deadline)
    );
    let failed = r1.batch_item_failures.len() + r2.batch_item_failures.len();
    assert!(
        failed <= 1,
        "at most the second delivery is told to come back"
    );
    // Deliver again whatever was told to come back: it finds the run finished.
    let third = sync_worker::handle(&w1, harness::sqs_event(&batch), "req-c", deadline).await;
    assert!(third.batch_item_failures.is_empty());
    let org = m.env.sim.organization(&m.org).unwrap();
    assert!(!org.counts.is_empty());
    assert!(
        org.counts.iter().all(|c| c.history.len() == 1),
        "a count was posted twice"
    );
    let runs = m.env.syncs(CH).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    assert_eq!(runs["items"][0]["status"], "succeeded");
}

#[tokio::test]
async fn a_worker_that_dies_mid_run_loses_nothing() {
    let m = connected_msp("sync-crash", 24).await;
    let expected = expected_pairs(&m.children);
    let r = m.env.sync_now(CH).await;
    let run_id = r.json()["runId"].as_str().unwrap().to_string();
    // The first worker dies after two checkpoints (its store fails where it would renew the
    // lease: taken once, renewed once, then gone), its lease left behind; the counts it had in
    // flight then are not recorded.
    let mut dying = m.env.worker();
    dying.core.slots = crate::faults::LeaseDiesAfter::wrap(dying.core.slots.clone(), 1 + 1);
    m.env.drain_with(&dying, 1, 1).await;
    let mid = m.env.run(CH, &run_id).await;
    assert_eq!(mid["status"], "running");
    let core = &m.env.platform.core;
    let ws = psa_domain::WorkspaceId::parse(CH).unwrap();
    let cref = core
        .connectors
        .get(&ws, psa_domain::ConnectorType::Gradient)
        .await
        .unwrap()
        .unwrap()
        .reference();
    let rid = psa_domain::RunId::parse(&run_id).unwrap();
    let recorded = core.readings.all_readings(&cref, &rid).await.unwrap();
    let every = harness::test_sync_policy().checkpoint_every;
    assert_eq!(recorded.len(), 2 * every, "two checkpoints were written");
    let org = m.env.sim.organization(&m.org).unwrap();
    let sent_before = org.counts.len() + org.not_found_counts.len();
    assert!(sent_before >= recorded.len(), "{sent_before}");
    // The next delivery waits for the lease to expire, then finishes the run.
    m.env.drain().await;
    let run = m.env.run(CH, &run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let c = counts(&run);
    outcomes_add_up(&c);
    assert_eq!(c["posted"], (expected.len() - m.unmapped.len()) as u64);
    let org = m.env.sim.organization(&m.org).unwrap();
    assert_eq!(org.counts.len(), expected.len() - m.unmapped.len());
    // Nothing recorded before the crash is sent again; a count that was accepted but not yet
    // recorded may be (a count is a set: the value stays right).
    let mut twice = 0;
    for count in &org.counts {
        assert!(count.history.len() <= 2, "{count:?}");
        if count.history.len() == 2 {
            twice += 1;
            assert_eq!(
                count.history[0].unit_count, count.history[1].unit_count,
                "{count:?}"
            );
        }
    }
    assert!(
        twice <= sent_before - recorded.len(),
        "only counts in flight at the crash went twice: {twice} of {}",
        sent_before - recorded.len()
    );
}

#[tokio::test]
async fn on_demand_cooldown_answers_429_with_retry_after() {
    let mut m = connected_msp("sync-cooldown", 6).await;
    m.env.api.policy.cooldown = std::time::Duration::from_secs(120);
    let run = sync_and_wait(&m.env).await;
    assert_eq!(run["status"], "succeeded");
    let r = m.env.sync_now(CH).await;
    assert_eq!(
        (r.status, r.code()),
        (429, "sync_too_soon".into()),
        "{}",
        r.body
    );
    let secs: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=120).contains(&secs));
    // Refused requests leave nothing queued and no run behind.
    assert!(m.env.queued_jobs().await.is_empty());
}

use harness::scheduled_event;

#[tokio::test]
async fn a_duplicate_schedule_event_makes_no_duplicate_runs() {
    let m = connected_msp("sync-schedule", 6).await;
    // A second MSP, and a third whose connector is disconnected (not scheduled).
    let b = m.env.sim.create_organization("MSP B");
    m.env
        .seed_workspaces(&[workspace(
            "msp_b",
            None,
            "channel",
            "B",
            "subscription",
            &[],
            0,
            0,
        )])
        .await;
    assert_eq!(m.env.connect("msp_b", &b.partner_key).await.status, 201);
    let c = m.env.sim.create_organization("MSP C");
    m.env
        .seed_workspaces(&[workspace(
            "msp_c",
            None,
            "channel",
            "C",
            "subscription",
            &[],
            0,
            0,
        )])
        .await;
    assert_eq!(m.env.connect("msp_c", &c.partner_key).await.status, 201);
    m.env.sim.regenerate_key(&c.organization_id).unwrap();
    let sched = sync_scheduled::Scheduler {
        page_size: 1,
        ..sync_scheduled::Scheduler::new(
            m.env.platform.queue_core(),
            m.env.platform.settings.sync.clone(),
            m.env.platform.settings.gradient_max_rps,
        )
    };
    let event = scheduled_event();
    let first = sync_scheduled::handle(&sched, serde_json::from_value(event.clone()).unwrap())
        .await
        .unwrap();
    let again = sync_scheduled::handle(&sched, serde_json::from_value(event.clone()).unwrap())
        .await
        .unwrap();
    assert_eq!((first.connectors, first.enqueued), (3, 3));
    assert_eq!((again.enqueued, again.duplicates), (0, 3));
    let jobs = m.env.queued_jobs().await;
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter()
            .all(|j| j.run_id.as_str() == "20261124T050000.000Z-scheduled")
    );
    m.env.drain().await;
    // MSP C's token was regenerated: its scheduled run found out and disconnected it.
    let c_conn = m.env.connector("msp_c").await;
    assert_eq!(c_conn["status"], "disconnected");
    // A late duplicate after the runs finished still creates nothing, and leaves no slot behind.
    let late = sync_scheduled::handle(&sched, serde_json::from_value(event).unwrap())
        .await
        .unwrap();
    assert_eq!((late.connectors, late.enqueued, late.duplicates), (2, 0, 2));
    assert!(m.env.queued_jobs().await.is_empty());
    let runs = m.env.syncs(CH).await;
    assert_eq!(runs["items"].as_array().unwrap().len(), 1);
    assert_eq!(runs["items"][0]["trigger"], "scheduled");
    assert_eq!(
        m.env.sync_now(CH).await.status,
        202,
        "the scheduled run released its slot"
    );
}

#[tokio::test]
async fn the_on_demand_function_serves_only_the_sync_route() {
    let m = connected_msp("sync-fn", 4).await;
    let admin = Claims::admin(CH);
    let ev = harness::http_event(
        "POST",
        "/v1/psa/connectors/gradient/sync",
        Some(&admin),
        None,
    );
    let r = sync_on_demand::handle(&m.env.api, ev).await;
    assert_eq!(r.status(), 202);
    let ev = harness::http_event("GET", "/v1/psa/connectors/gradient", Some(&admin), None);
    assert_eq!(sync_on_demand::handle(&m.env.api, ev).await.status(), 404);
    let ev = harness::http_event("POST", "/v1/psa/connectors/gradient/sync", None, None);
    assert_eq!(sync_on_demand::handle(&m.env.api, ev).await.status(), 401);
    let ev = harness::http_event(
        "POST",
        "/v1/psa/connectors/gradient/sync",
        Some(&Claims::viewer(CH)),
        None,
    );
    assert_eq!(sync_on_demand::handle(&m.env.api, ev).await.status(), 403);
    assert_eq!(m.env.queued_jobs().await.len(), 1);
}
