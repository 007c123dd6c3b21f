//! The usage-sync store adapters (run slot, lease, cool-down, runs, last-sent values, job queue)
//! against DynamoDB Local and moto.

use psa_domain::ports::{
    JobQueue, LastSent, Lease, RunSlots, SentReading, SlotClaim, SyncJob, SyncRuns,
};
use psa_domain::{
    ConnectorType, Failure, RunCounts, RunId, RunStatus, SyncRun, Trigger, WorkspaceId,
};
use psa_store::{DynamoSync, SqsJobQueue, decode_cursor};
use psa_tests::TestEnv;
use std::collections::BTreeSet;
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

const MIN: Duration = Duration::from_secs(60);

fn ws(id: &str) -> WorkspaceId {
    WorkspaceId::parse(id).expect("workspace id")
}

fn run_id(suffix: &str) -> RunId {
    RunId::parse(&format!("20261124T040000.000Z-{suffix}")).expect("run id")
}

fn store(env: &TestEnv) -> DynamoSync {
    DynamoSync::new(env.local.dynamodb(), env.tables.psa.clone())
}

fn run(workspace: &str, at: OffsetDateTime, suffix: &str) -> SyncRun {
    SyncRun {
        run_id: RunId::new(at, suffix),
        connector_id: ConnectorType::Gradient,
        workspace_id: ws(workspace),
        trigger: Trigger::Scheduled,
        status: RunStatus::Queued,
        requested_by: None,
        queued_at: at,
        started_at: None,
        finished_at: None,
        counts: RunCounts::default(),
        failures: Vec::new(),
    }
}

#[tokio::test]
async fn run_slot_is_held_by_one_run_at_a_time() {
    let env = TestEnv::start("slot").await;
    let s = store(&env);
    let w = ws("ch_slot");
    let (a, b) = (run_id("a"), run_id("b"));

    assert_eq!(s.claim_slot(&w, &a, MIN).await.unwrap(), SlotClaim::Claimed);
    assert_eq!(
        s.claim_slot(&w, &b, MIN).await.unwrap(),
        SlotClaim::Busy(a.clone())
    );
    assert_eq!(s.claim_slot(&w, &a, MIN).await.unwrap(), SlotClaim::Claimed);
    // Releasing for a run that does not hold it changes nothing.
    s.release_slot(&w, &b).await.unwrap();
    assert_eq!(
        s.claim_slot(&w, &b, MIN).await.unwrap(),
        SlotClaim::Busy(a.clone())
    );
    s.release_slot(&w, &a).await.unwrap();
    assert_eq!(s.claim_slot(&w, &b, MIN).await.unwrap(), SlotClaim::Claimed);

    // An expired slot is free again.
    let o = ws("ch_slot_exp");
    assert_eq!(
        s.claim_slot(&o, &a, Duration::from_millis(200))
            .await
            .unwrap(),
        SlotClaim::Claimed
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(s.claim_slot(&o, &b, MIN).await.unwrap(), SlotClaim::Claimed);
}

#[tokio::test]
async fn concurrent_claims_have_one_winner() {
    let env = TestEnv::start("slotrace").await;
    let s = store(&env);
    let w = ws("ch_race");
    let runs: Vec<RunId> = (0..10).map(|i| run_id(&format!("r{i}"))).collect();
    let results = futures::future::join_all(runs.iter().map(|r| {
        let s = s.clone();
        let w = w.clone();
        let r = r.clone();
        tokio::spawn(async move { s.claim_slot(&w, &r, MIN).await.unwrap() })
    }))
    .await;
    let results: Vec<SlotClaim> = results.into_iter().map(|r| r.unwrap()).collect();
    let winners: Vec<&RunId> = runs
        .iter()
        .zip(&results)
        .filter(|(_, c)| **c == SlotClaim::Claimed)
        .map(|(r, _)| r)
        .collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for c in &results {
        if let SlotClaim::Busy(holder) = c {
            assert_eq!(holder, winners[0]);
        }
    }
}

#[tokio::test]
async fn worker_lease_excludes_duplicates_until_it_expires() {
    let env = TestEnv::start("lease").await;
    let s = store(&env);
    let w = ws("ch_lease");
    let (a, b) = (run_id("a"), run_id("b"));
    let ttl = Duration::from_millis(300);

    // No slot yet: the lease creates it for the run.
    assert_eq!(
        s.take_lease(&w, &a, "x", ttl).await.unwrap(),
        Lease::Acquired
    );
    assert_eq!(
        s.take_lease(&w, &a, "x", ttl).await.unwrap(),
        Lease::Acquired,
        "renewal"
    );
    assert_eq!(
        s.take_lease(&w, &a, "y", ttl).await.unwrap(),
        Lease::HeldByOther
    );
    assert_eq!(
        s.claim_slot(&w, &b, MIN).await.unwrap(),
        SlotClaim::Busy(a.clone()),
        "the lease created the slot"
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.take_lease(&w, &a, "y", ttl).await.unwrap(),
        Lease::Acquired
    );
    assert_eq!(
        s.take_lease(&w, &b, "z", ttl).await.unwrap(),
        Lease::OtherRun(a.clone())
    );
    // The lease pushed the slot past its own end: the slot outlives the lease.
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.claim_slot(&w, &b, MIN).await.unwrap(),
        SlotClaim::Busy(a.clone())
    );

    // Dropping the lease lets another worker of the same run in at once; a stranger's drop is a no-op.
    assert_eq!(
        s.take_lease(&w, &a, "y", MIN).await.unwrap(),
        Lease::Acquired
    );
    s.drop_lease(&w, &a, "x").await.unwrap();
    assert_eq!(
        s.take_lease(&w, &a, "x", MIN).await.unwrap(),
        Lease::HeldByOther
    );
    s.drop_lease(&w, &a, "y").await.unwrap();
    assert_eq!(
        s.take_lease(&w, &a, "x", MIN).await.unwrap(),
        Lease::Acquired
    );
}

#[tokio::test]
async fn on_demand_cooldown() {
    let env = TestEnv::start("cooldown").await;
    let s = store(&env);
    let w = ws("ch_cool");
    let cd = Duration::from_millis(500);

    assert_eq!(s.claim_cooldown(&w, cd).await.unwrap(), None);
    let left = s
        .claim_cooldown(&w, cd)
        .await
        .unwrap()
        .expect("cooling down");
    assert!(left > Duration::ZERO && left <= cd, "{left:?}");
    assert_eq!(
        s.claim_cooldown(&ws("ch_other"), cd).await.unwrap(),
        None,
        "per workspace"
    );
    tokio::time::sleep(cd + Duration::from_millis(100)).await;
    assert_eq!(s.claim_cooldown(&w, cd).await.unwrap(), None);
}

#[tokio::test]
async fn run_records_page_newest_first() {
    let env = TestEnv::start("runs").await;
    let s = store(&env);
    let w = ws("ch_runs");
    let t0 = datetime!(2026-11-24 04:00:00 UTC);

    let mut first = run("ch_runs", t0, "first");
    assert!(s.create_run(&first).await.unwrap());
    assert!(!s.create_run(&first).await.unwrap(), "same id again");
    first.status = RunStatus::PartiallyFailed;
    first.trigger = Trigger::OnDemand;
    first.requested_by = Some(psa_domain::UserId::parse("user-1").unwrap());
    first.started_at = Some(t0 + Duration::from_secs(2));
    first.finished_at = Some(t0 + Duration::from_millis(73_456));
    first.counts = RunCounts {
        accounts: 3,
        readings: 7,
        posted: 5,
        failed: 2,
        ..RunCounts::default()
    };
    first.failures = vec![Failure {
        account_id: "acme_c1".into(),
        service: "EDR".into(),
        reason: "500 from Gradient".into(),
    }];
    s.put_run(&first).await.unwrap();
    assert_eq!(
        s.get_run(&w, &first.run_id).await.unwrap().as_ref(),
        Some(&first)
    );
    assert_eq!(s.get_run(&w, &run_id("none")).await.unwrap(), None);

    let mut ids = vec![first.run_id.clone()];
    for i in 1..7 {
        let r = run(
            "ch_runs",
            t0 + Duration::from_secs(60 * i),
            &format!("n{i}"),
        );
        assert!(s.create_run(&r).await.unwrap());
        ids.push(r.run_id);
    }
    // Another workspace's runs never show up.
    s.create_run(&run("ch_elsewhere", t0, "x")).await.unwrap();

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let (page, next) = s.list_runs(&w, 3, cursor.as_deref()).await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.into_iter().map(|r| r.run_id));
        pages += 1;
        assert!(pages <= 4, "paging does not end");
        match next {
            Some(c) => {
                assert!(decode_cursor(&c).is_some(), "{c}");
                cursor = Some(c);
            }
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);

    let err = s.list_runs(&w, 3, Some("not a cursor")).await.unwrap_err();
    assert!(err.0.starts_with("invalid cursor"), "{err}");
}

fn reading(i: usize) -> SentReading {
    SentReading {
        account_id: format!("acct_{}", i / 4),
        service_key: format!("SVC_{}", i % 4),
        service_id: format!("gs-{i}"),
        count: i as u64 * 3,
        run_id: run_id("sent"),
    }
}

#[tokio::test]
async fn last_sent_values_round_trip() {
    let env = TestEnv::start("lastsent").await;
    let s = store(&env);
    let w = ws("ch_last");
    let readings: Vec<SentReading> = (0..60).map(reading).collect();

    s.record_sent(&w, &readings).await.unwrap();
    let got = s.last_sent(&w).await.unwrap();
    assert_eq!(got.len(), 60);
    for r in &readings {
        assert_eq!(
            got.get(&(r.account_id.clone(), r.service_key.clone())),
            Some(r)
        );
    }

    let forget: Vec<(String, String)> = readings[..10]
        .iter()
        .map(|r| (r.account_id.clone(), r.service_key.clone()))
        .collect();
    s.forget_sent(&w, &forget).await.unwrap();
    let got = s.last_sent(&w).await.unwrap();
    assert_eq!(got.len(), 50);
    assert!(forget.iter().all(|k| !got.contains_key(k)));

    // Overwrite: the newest value wins.
    let mut newer = readings[20].clone();
    newer.count = 999;
    s.record_sent(&w, std::slice::from_ref(&newer))
        .await
        .unwrap();
    let got = s.last_sent(&w).await.unwrap();
    assert_eq!(
        got[&(newer.account_id.clone(), newer.service_key.clone())],
        newer
    );
    assert!(s.last_sent(&ws("ch_empty")).await.unwrap().is_empty());
}

#[tokio::test]
async fn job_queue_sends_every_job() {
    let env = TestEnv::start("queue").await;
    let url = env
        .local
        .create_queue(&format!("{}-sync-jobs", env.prefix))
        .await;
    let q = SqsJobQueue::new(env.local.sqs(), url.clone());
    let jobs: Vec<SyncJob> = (0..23)
        .map(|i| SyncJob {
            workspace_id: ws(&format!("ch_q{i}")),
            run_id: run_id(&format!("q{i}")),
        })
        .collect();
    q.enqueue(&jobs).await.unwrap();
    q.enqueue(&[]).await.unwrap();

    let sqs = env.local.sqs();
    let mut got = Vec::new();
    for _ in 0..20 {
        let out = sqs
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        for m in out.messages() {
            let job: SyncJob =
                serde_json::from_str(m.body().expect("body")).expect("a SyncJob body");
            got.push(job);
            sqs.delete_message()
                .queue_url(&url)
                .receipt_handle(m.receipt_handle().expect("handle"))
                .send()
                .await
                .expect("delete");
        }
        if got.len() >= jobs.len() {
            break;
        }
    }
    assert_eq!(got.len(), 23, "{got:?}");
    let want: BTreeSet<String> = jobs.iter().map(|j| j.run_id.to_string()).collect();
    let have: BTreeSet<String> = got.iter().map(|j| j.run_id.to_string()).collect();
    assert_eq!(have, want);
    for j in &got {
        assert!(jobs.contains(j));
    }
}
