//! Billing you can trust: the paths that used to leave Gradient with wrong or missing counts, each
//! on the real local stack (DynamoDB Local, moto, the simulator) through the real handlers and the
//! real worker driven with SQS event payloads.

use gradient_sim::{Faults, Pair};
use harness::fixture::*;
use harness::{Claims, TestEnv, workspace};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// Every page of a run's readings (as the MSP sees them).
async fn readings(env: &TestEnv, run_id: &str, filter: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path =
            format!("/v1/psa/connectors/gradient/syncs/{run_id}/readings?limit=100{filter}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let r = env
            .call("GET", &path, Some(&Claims::viewer(CH)), None)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let body = r.json();
        out.extend(body["items"].as_array().unwrap().iter().cloned());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return out,
        }
    }
}

/// The (account, service id) pairs of every count POST the simulator answered, with its status
/// and whether it asked for a rebuild, in arrival order.
fn count_posts(env: &TestEnv) -> Vec<(String, u16, bool)> {
    env.sim
        .requests()
        .requests
        .into_iter()
        .filter(|r| r.method == "POST" && r.path.contains("/count"))
        .map(|r| (r.path.clone(), r.status, !r.path.contains("no_build=true")))
        .collect()
}

/// Mapped pairs of the fixture with their expected counts.
fn mapped(m: &Msp) -> BTreeMap<(String, String), u64> {
    expected_pairs(&m.children)
        .into_iter()
        .filter(|(k, _)| !m.unmapped.contains(k))
        .collect()
}

fn assert_gradient_holds(m: &Msp) {
    let org = m.env.sim.organization(&m.org).unwrap();
    for ((acc, key), want) in mapped(m) {
        assert_eq!(
            org.count(&acc, &m.ids[&key]).map(|c| c.unit_count),
            Some(want),
            "{acc}/{key}"
        );
    }
}

#[tokio::test]
async fn accounts_wiped_by_gradient_get_their_counts_again() {
    let m = connected_msp("bill-wipe", 12).await;
    let r1 = sync_and_wait(&m.env).await;
    assert_eq!(r1["status"], "succeeded", "{r1}");
    let r2 = sync_and_wait(&m.env).await;
    assert_eq!(
        counts(&r2)["posted"],
        0,
        "a delta run sends nothing unchanged"
    );
    let before = m.env.sim.organization(&m.org).unwrap();

    // The MSP disconnects the integration inside Synthesize: Gradient deletes every account and
    // its mappings. The next run creates them again and sends every reading (the old accepted
    // values were for accounts that no longer exist); they answer 404 until the MSP maps again.
    assert!(m.env.sim.wipe_accounts(&m.org));
    let r3 = sync_and_wait(&m.env).await;
    let c3 = counts(&r3);
    outcomes_add_up(&c3);
    let reported = m.children.iter().filter(|c| c.reported()).count() as u64;
    assert_eq!(c3["accountsCreated"], reported, "{r3}");
    assert_eq!(c3["unchanged"], 0, "{r3}");
    assert_eq!(c3["unmapped"], expected_pairs(&m.children).len() as u64);

    let except: Vec<Pair> = m
        .unmapped
        .iter()
        .map(|(a, s)| Pair::new(a.clone(), m.ids[s].clone()))
        .collect();
    assert!(m.env.sim.map_all(&m.org, &except));
    let r4 = sync_and_wait(&m.env).await;
    assert_eq!(r4["status"], "succeeded", "{r4}");
    assert_eq!(counts(&r4)["posted"], mapped(&m).len() as u64, "{r4}");
    assert_gradient_holds(&m);
    let after = m.env.sim.organization(&m.org).unwrap();
    for (acc, key) in mapped(&m).keys() {
        let n =
            |o: &gradient_sim::OrgState| o.count(acc, &m.ids[key]).map_or(0, |c| c.history.len());
        assert!(
            n(&after) > n(&before),
            "{acc}/{key} was sent again after the wipe"
        );
    }
}

#[tokio::test]
async fn renames_are_sent_only_for_real_differences() {
    let env = TestEnv::start("bill-rename").await;
    let mut items = vec![workspace(
        CH,
        None,
        "channel",
        "Acme MSP",
        "subscription",
        &[],
        0,
        0,
    )];
    for (i, domain) in [None, Some("b.example.com"), Some("  c.example.com ")]
        .into_iter()
        .enumerate()
    {
        let mut w = workspace(
            &format!("{CH}_r{i}"),
            Some(CH),
            "child",
            &format!("Customer {i}"),
            "subscription",
            &["EDR"],
            2,
            3,
        );
        w.domain = domain.map(str::to_owned);
        items.push(w);
    }
    env.seed_workspaces(&items).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    let first = sync_and_wait(&env).await;
    assert_eq!(first["status"], "succeeded", "{first}");

    env.sim.clear_requests();
    let again = sync_and_wait(&env).await;
    assert_eq!(counts(&again)["accountsRenamed"], 0, "{again}");
    let patches = env
        .sim
        .requests()
        .requests
        .iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/accounts/"))
        .count();
    assert_eq!(
        patches, 0,
        "no rename for a workspace without a domain, nor for spaces"
    );

    // The domain of r1 is removed: Gradient's description must be cleared, once.
    items[2].domain = None;
    env.seed_workspaces(&items).await;
    let removed = sync_and_wait(&env).await;
    assert_eq!(counts(&removed)["accountsRenamed"], 1, "{removed}");
    let account = |id: &str| {
        env.sim
            .organization(&org.organization_id)
            .unwrap()
            .accounts
            .into_iter()
            .find(|a| a.id == id)
            .unwrap()
    };
    assert_eq!(
        account(&format!("{CH}_r1")).description.unwrap_or_default(),
        ""
    );
    assert_eq!(
        account(&format!("{CH}_r2")).description.as_deref(),
        Some("c.example.com")
    );
    let after = sync_and_wait(&env).await;
    assert_eq!(
        counts(&after)["accountsRenamed"],
        0,
        "the cleared description stuck: {after}"
    );
}

#[tokio::test]
async fn every_run_with_an_accepted_count_asks_gradient_to_rebuild() {
    let m = connected_msp("bill-build", 10).await;
    // Unmap the run's very last pair (the last account, its last service), so the count that
    // would carry no_build=false answers 404.
    let last = expected_pairs(&m.children).into_keys().next_back().unwrap();
    assert!(m.env.sim.set_mappings(
        &m.org,
        &[Pair::new(last.0.clone(), m.ids[&last.1].clone())],
        false
    ));
    let run = sync_and_wait(&m.env).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let posts = count_posts(&m.env);
    let accepted: Vec<_> = posts
        .iter()
        .filter(|(_, status, _)| *status == 201)
        .collect();
    assert!(!accepted.is_empty());
    assert!(
        accepted.last().unwrap().2,
        "the run's last accepted count lets Gradient rebuild: {posts:?}"
    );
    assert_eq!(
        accepted.iter().filter(|p| p.2).count(),
        1,
        "one rebuild per run"
    );

    // A delta run whose only count is unmapped has nothing accepted: no rebuild is needed.
    m.env.sim.clear_requests();
    let delta = sync_and_wait(&m.env).await;
    assert_eq!(counts(&delta)["posted"], 0);
    assert!(count_posts(&m.env).iter().all(|(_, s, _)| *s == 404));
}

#[tokio::test]
async fn an_account_gradient_refuses_does_not_stop_the_others() {
    let env = TestEnv::start("bill-refuse").await;
    let children = fixture(8);
    seed(&env, &children).await;
    let org = env.sim.create_organization("Acme MSP");
    let bad = children.iter().find(|c| c.reported()).unwrap().id.clone();
    assert!(env.sim.refuse_account(
        &org.organization_id,
        &bad,
        "Account name contains invalid characters",
        true
    ));
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    let run = sync_and_wait(&env).await;
    assert_eq!(run["status"], "partially_failed", "{run}");
    let c = counts(&run);
    outcomes_add_up(&c);
    let expected = expected_pairs(&children);
    let bad_pairs = expected.keys().filter(|(a, _)| *a == bad).count() as u64;
    assert!(bad_pairs > 0);
    assert_eq!(c["failed"], bad_pairs);
    assert_eq!(c["posted"], expected.len() as u64 - bad_pairs, "{run}");
    let failed = readings(&env, run["runId"].as_str().unwrap(), "&outcome=failed").await;
    assert_eq!(failed.len() as u64, bad_pairs);
    for f in &failed {
        assert_eq!(f["accountId"], bad.as_str());
        let reason = f["reason"].as_str().unwrap();
        assert!(
            reason.contains("invalid characters") && reason.chars().count() <= 200,
            "{reason}"
        );
    }

    // Gradient accepts it again: the next run creates it and sends its readings.
    assert!(
        env.sim
            .refuse_account(&org.organization_id, &bad, "", false)
    );
    let next = sync_and_wait(&env).await;
    assert_eq!(next["status"], "succeeded", "{next}");
    assert_eq!(counts(&next)["accountsCreated"], 1);
    assert_eq!(
        counts(&next)["unmapped"],
        bad_pairs,
        "created, sent, not mapped yet"
    );

    // A refused rename fails that account's readings only.
    let other = children
        .iter()
        .filter(|c| c.reported())
        .nth(1)
        .unwrap()
        .clone();
    assert!(
        env.sim
            .refuse_account(&org.organization_id, &other.id, "Name too long", true)
    );
    let mut renamed = children.clone();
    renamed.iter_mut().find(|c| c.id == other.id).unwrap().name = "Renamed".into();
    renamed.iter_mut().find(|c| c.id == other.id).unwrap().users += 1;
    seed(&env, &renamed).await;
    let run = sync_and_wait(&env).await;
    assert_eq!(run["status"], "partially_failed", "{run}");
    let failed = readings(&env, run["runId"].as_str().unwrap(), "&outcome=failed").await;
    assert!(!failed.is_empty() && failed.iter().all(|f| f["accountId"] == other.id.as_str()));
}

/// A first sync of 75 accounts, mostly unmapped, with a deadline that allows only a few dozen
/// counts per invocation.
async fn slow_first_sync(label: &str, max_continuations: u32) -> (Msp, Value, usize) {
    let env = TestEnv::start(label).await;
    let children = fixture(75);
    seed(&env, &children).await;
    let org = env.sim.create_organization("Acme MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    let ids = service_ids(&env).await;
    let all = expected_pairs(&children);
    let unmapped: BTreeSet<(String, String)> = all
        .keys()
        .filter(|(a, _)| !a.ends_with('0'))
        .cloned()
        .collect();
    let except: Vec<Pair> = unmapped
        .iter()
        .map(|(a, s)| Pair::new(a.clone(), ids[s].clone()))
        .collect();
    assert!(env.sim.map_all(&org.organization_id, &except));
    env.sim.set_faults(Faults {
        latency_ms: 20,
        ..Default::default()
    });
    let mut worker = env.worker();
    worker.policy.deadline_margin = Duration::from_millis(400);
    worker.policy.max_continuations = max_continuations;
    let r = env.sync_now(CH).await;
    assert_eq!(r.status, 202);
    let run_id = r.json()["runId"].as_str().unwrap().to_owned();
    let invocations = env
        .drain_with_deadline(&worker, 60, 1, Duration::from_millis(1200))
        .await;
    let run = env.run(CH, &run_id).await;
    let m = Msp {
        env,
        org: org.organization_id,
        children,
        ids,
        unmapped,
    };
    (m, run, invocations)
}

/// Within the run, how often each pair was posted (accepted or answered 404).
fn attempts_per_pair(m: &Msp) -> BTreeMap<(String, String), usize> {
    let org = m.env.sim.organization(&m.org).unwrap();
    let by_id: BTreeMap<&String, &String> = m.ids.iter().map(|(k, v)| (v, k)).collect();
    let mut n = BTreeMap::new();
    for c in &org.counts {
        *n.entry((c.account_id.clone(), by_id[&c.service_id].clone()))
            .or_default() += c.history.len();
    }
    for p in &org.not_found_counts {
        *n.entry((p.account_id.clone(), by_id[&p.service_id].clone()))
            .or_default() += 1;
    }
    n
}

#[tokio::test]
async fn continuations_attempt_each_reading_once_and_end() {
    // A count still on its way at an invocation's deadline is cut and goes to the continuation
    // (sent again): "once" holds only while no 20 ms count is slowed past the deadline's 200 ms of
    // slack, so this test has the machine to itself.
    let _alone = harness::quiet::alone().await;
    let (m, run, invocations) = slow_first_sync("bill-cont", 20).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let c = counts(&run);
    outcomes_add_up(&c);
    let expected = expected_pairs(&m.children);
    assert_eq!(c["readings"], expected.len() as u64);
    assert!(invocations > 1, "the deadline forced continuations");
    let attempts = attempts_per_pair(&m);
    assert_eq!(attempts.len(), expected.len());
    // Each pair once; one accepted count may go out a second time to ask Gradient to rebuild.
    let extra: usize = attempts.values().map(|n| n - 1).sum();
    assert!(
        attempts.values().all(|n| *n >= 1) && extra <= 1,
        "{attempts:?}"
    );
    assert_gradient_holds(&m);
}

#[tokio::test]
async fn a_run_has_a_bounded_number_of_continuations() {
    let (m, run, invocations) = slow_first_sync("bill-cont-bound", 2).await;
    assert_eq!(run["status"], "partially_failed", "{run}");
    assert!(
        invocations <= 3 + 1,
        "{invocations} invocations for at most 2 continuations"
    );
    let c = counts(&run);
    outcomes_add_up(&c);
    assert_eq!(c["readings"], expected_pairs(&m.children).len() as u64);
    assert!(c["failed"] > 0, "{run}");
    assert!(
        run["reason"].as_str().unwrap().contains("continuations"),
        "{run}"
    );
    let failed = readings(&m.env, run["runId"].as_str().unwrap(), "&outcome=failed").await;
    assert_eq!(failed.len() as u64, c["failed"]);
    assert!(attempts_per_pair(&m).values().all(|n| *n <= 2));
    // The slot is free again, and what failed goes out next run.
    let next = sync_and_wait(&m.env).await;
    assert_ne!(next["status"], "running");
}

/// Number of count POSTs the simulator has received so far.
fn posts_so_far(env: &TestEnv) -> usize {
    count_posts(env).len()
}

#[tokio::test]
async fn deleting_the_connector_mid_run_stops_the_run_and_leaves_the_new_one_alone() {
    let m = connected_msp("bill-delete", 40).await;
    let old = m
        .env
        .platform
        .core
        .connectors
        .get(
            &psa_domain::WorkspaceId::parse(CH).unwrap(),
            psa_domain::ConnectorType::Gradient,
        )
        .await
        .unwrap()
        .unwrap();
    m.env.sim.set_faults(Faults {
        count_latency_ms: 30,
        ..Default::default()
    });
    let r = m.env.sync_now(CH).await;
    let run_id = psa_domain::RunId::parse(r.json()["runId"].as_str().unwrap()).unwrap();
    let mut worker = m.env.worker();
    worker.policy.in_flight = 4;
    let delete = async {
        while posts_so_far(&m.env) < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let r = m
            .env
            .call(
                "DELETE",
                "/v1/psa/connectors/gradient",
                Some(&Claims::admin(CH)),
                None,
            )
            .await;
        assert_eq!(r.status, 204);
        posts_so_far(&m.env)
    };
    let (_, at_delete) = tokio::join!(m.env.drain_with(&worker, 50, 1), delete);
    let after = posts_so_far(&m.env) - at_delete;
    assert!(
        after <= 4 + 8,
        "{after} counts reached Gradient after the DELETE returned"
    );
    let run = m
        .env
        .platform
        .core
        .runs
        .get_run(&old.reference(), &run_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(run.status, psa_domain::RunStatus::Cancelled, "{run:?}");
    assert!(
        run.reason.as_deref().unwrap().contains("deleted"),
        "{run:?}"
    );

    // Connected again: a new incarnation with an empty history and a full first sync.
    m.env.sim.clear_faults();
    let partner = m.env.sim.organization(&m.org).unwrap().partner_key;
    assert_eq!(m.env.connect(CH, &partner).await.status, 201);
    assert!(
        m.env.syncs(CH).await["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let usage = m
        .env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage?limit=100",
            Some(&Claims::viewer(CH)),
            None,
        )
        .await
        .json();
    assert_eq!(usage["summary"]["inSync"], 0, "{usage}");
    let first = sync_and_wait(&m.env).await;
    assert_eq!(first["status"], "succeeded", "{first}");
    assert_eq!(counts(&first)["posted"], mapped(&m).len() as u64, "{first}");
    assert_gradient_holds(&m);
}

#[tokio::test]
async fn a_retoken_mid_run_cancels_it_and_the_next_run_resends_everything() {
    let m = connected_msp("bill-retoken", 40).await;
    let first = sync_and_wait(&m.env).await;
    assert_eq!(first["status"], "succeeded");
    // Every value changes, so the second run has a lot to post.
    let mut children = m.children.clone();
    for c in &mut children {
        c.users += 1;
        c.devices += 1;
    }
    seed(&m.env, &children).await;
    m.env.sim.set_faults(Faults {
        count_latency_ms: 30,
        ..Default::default()
    });
    m.env.sim.clear_requests();
    let r = m.env.sync_now(CH).await;
    let run_id = r.json()["runId"].as_str().unwrap().to_owned();
    let mut worker = m.env.worker();
    worker.policy.in_flight = 4;
    let retoken = async {
        while posts_so_far(&m.env) < 20 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The admin pastes another key of the same organization (the old one still works, so
        // the run is cancelled by the re-token, not rejected): a new token version. A full
        // resend went out with the first run today; as if that was two days ago, the re-token
        // makes the next run one again.
        m.env
            .age_last_full_resend(CH, time::Duration::days(2))
            .await;
        let key = m.env.sim.add_key(&m.org).unwrap();
        let r = m.env.retoken(CH, &key).await;
        assert_eq!(r.status, 200, "{}", r.body);
        posts_so_far(&m.env)
    };
    let (_, at_retoken) = tokio::join!(m.env.drain_with(&worker, 50, 1), retoken);
    assert!(posts_so_far(&m.env) - at_retoken <= 4 + 8);
    let run = m.env.run(CH, &run_id).await;
    assert_eq!(run["status"], "cancelled", "{run}");
    let conn = m.env.connector(CH).await;
    assert_eq!(
        conn["status"], "connected",
        "the old token's 401s did not disconnect the new token: {conn}"
    );
    m.env.sim.clear_faults();
    let next = sync_and_wait(&m.env).await;
    assert_eq!(next["status"], "succeeded", "{next}");
    let m2 = Msp { children, ..m };
    assert_eq!(
        counts(&next)["posted"],
        mapped(&m2).len() as u64,
        "a re-token resends everything"
    );
    assert_gradient_holds(&m2);
}

#[tokio::test]
async fn a_bad_vendor_key_disconnects_no_one() {
    let env = TestEnv::start("bill-vendor").await;
    let channels = ["msp_a", "msp_b", "msp_c"];
    let mut items = Vec::new();
    let mut orgs = Vec::new();
    for ch in channels {
        items.push(workspace(
            ch,
            None,
            "channel",
            ch,
            "subscription",
            &[],
            0,
            0,
        ));
        items.push(workspace(
            &format!("{ch}_c1"),
            Some(ch),
            "child",
            "C1",
            "subscription",
            &["EDR"],
            1,
            2,
        ));
    }
    env.seed_workspaces(&items).await;
    for ch in channels {
        let org = env.sim.create_organization(ch);
        assert_eq!(env.connect(ch, &org.partner_key).await.status, 201);
        orgs.push(org);
    }
    let sync = |ch: &'static str| {
        let env = &env;
        async move {
            let r = env
                .call(
                    "POST",
                    "/v1/psa/connectors/gradient/sync",
                    Some(&Claims::admin(ch)),
                    None,
                )
                .await;
            assert_eq!(r.status, 202, "{}", r.body);
            env.drain().await;
            let id = r.json()["runId"].as_str().unwrap().to_owned();
            env.call(
                "GET",
                &format!("/v1/psa/connectors/gradient/syncs/{id}"),
                Some(&Claims::admin(ch)),
                None,
            )
            .await
            .json()
        }
    };
    let status = |ch: &'static str| {
        let env = &env;
        async move {
            env.call(
                "GET",
                "/v1/psa/connectors/gradient",
                Some(&Claims::viewer(ch)),
                None,
            )
            .await
            .json()["status"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };

    // Coro's vendor key is revoked in Gradient (the secret still holds the old one).
    env.sim.set_vendor_key("vk-new-0123456789");
    let a = sync("msp_a").await;
    assert_eq!(a["status"], "token_rejected", "{a}");
    assert_eq!(status("msp_a").await, "disconnected");
    let b = sync("msp_b").await;
    assert_eq!(b["status"], "token_rejected", "{b}");
    // The third rejection in a row with no accepted call in between: the vendor key is at fault.
    let c = sync("msp_c").await;
    assert_eq!(c["status"], "failed", "{c}");
    assert!(c["reason"].as_str().unwrap().contains("vendor key"), "{c}");
    for ch in channels {
        assert_eq!(
            status(ch).await,
            "connected",
            "{ch} is restored or was never disconnected"
        );
    }
    let audit = env
        .call("GET", "/v1/psa/audit", Some(&Claims::admin("msp_a")), None)
        .await
        .json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        &actions[..2],
        ["connector.restored", "sync.finished"],
        "{audit}"
    );
    assert!(actions.contains(&"connector.disconnected"));
    assert!(harness::logs::captured_here().contains("vendor_key_fault"));

    // The secret is rotated to the new key: the warm client re-reads it on the next 401 and the
    // run succeeds without anyone noticing.
    env.local
        .secrets()
        .put_secret_value()
        .secret_id(&env.platform.settings.vendor_key_secret_id)
        .secret_string("vk-new-0123456789")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = sync("msp_a").await;
    assert_eq!(again["status"], "succeeded", "{again}");
    assert!(env.platform.gradient.key_refreshes() >= 1);
}

#[tokio::test]
async fn history_is_newest_queued_first() {
    let m = connected_msp("bill-order", 4).await;
    let on_demand = sync_and_wait(&m.env).await;
    // A scheduled run for a minute before the on-demand run, queued after it (e.g. a retried
    // EventBridge delivery): its id sorts first, its queuedAt last.
    let at = time::OffsetDateTime::parse(
        on_demand["queuedAt"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap()
        - Duration::from_secs(120);
    let mut event: Value = serde_json::from_str(harness::SCHEDULED_EVENT).unwrap();
    event["time"] = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
        .into();
    let sched = sync_scheduled::Scheduler::new(
        m.env.platform.queue_core(),
        m.env.platform.settings.sync.clone(),
        m.env.platform.settings.gradient_max_rps,
    );
    let report = sync_scheduled::handle(&sched, serde_json::from_value(event).unwrap())
        .await
        .unwrap();
    assert_eq!(report.enqueued, 1);
    m.env.drain().await;
    let items = m.env.syncs(CH).await["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["trigger"], "scheduled", "{items:?}");
    assert_eq!(items[1]["runId"], on_demand["runId"]);
    assert!(items[0]["runId"].as_str().unwrap() < items[1]["runId"].as_str().unwrap());
}

#[tokio::test]
async fn failure_records_stay_bounded() {
    let env = TestEnv::start("bill-bounded").await;
    let children = fixture(30);
    seed(&env, &children).await;
    let org = env.sim.create_organization("Acme MSP");
    env.sim.set_faults(Faults {
        error_body_bytes: Some(64 * 1024),
        ..Default::default()
    });
    let refused: Vec<String> = children
        .iter()
        .filter(|c| c.reported())
        .take(20)
        .map(|c| c.id.clone())
        .collect();
    for id in &refused {
        assert!(
            env.sim
                .refuse_account(&org.organization_id, id, "refused", true)
        );
    }
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    let run = sync_and_wait(&env).await;
    let c = counts(&run);
    outcomes_add_up(&c);
    assert!(c["failed"] > 50, "{c:?}");
    assert_eq!(
        run["failures"].as_array().unwrap().len(),
        50,
        "the run keeps 50, the readings all"
    );
    let failed = readings(&env, run["runId"].as_str().unwrap(), "&outcome=failed").await;
    assert_eq!(failed.len() as u64, c["failed"]);
    for f in failed.iter().chain(run["failures"].as_array().unwrap()) {
        assert!(f["reason"].as_str().unwrap().chars().count() <= 200, "{f}");
    }
    // The run item stays small whatever the error bodies were.
    let item_bytes: usize = env
        .workspace_items()
        .await
        .iter()
        .filter(|i| {
            i.get("sk")
                .and_then(|v| v.as_s().ok())
                .is_some_and(|s| s.starts_with("RUN#"))
        })
        .map(|i| format!("{i:?}").len())
        .max()
        .unwrap();
    assert!(item_bytes < 40_000, "{item_bytes} bytes");
}
