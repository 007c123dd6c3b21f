//! The usage-sync store adapters (run slot, lease, cool-down, runs, last-sent values, job queue)
//! against DynamoDB Local and moto.

use harness::TestEnv;
use psa_domain::ports::{
    AcceptedBy, AuditLog, JobQueue, KeyHealth, Lease, NoticeClaim, NoticeLog, PageError,
    PairStates, Rejected, Rejection, RunReadings, RunSlots, SlotClaim, SyncJob, SyncRuns,
};
use psa_domain::{
    Accepted, Actor, AttemptOutcome, AuditAction, AuditEvent, ConnectorRef, ConnectorType, Failure,
    Outcome, PairState, RunCounts, RunId, RunReading, RunStatus, SyncRun, Trigger, Unit,
    WorkspaceId,
};
use psa_store::{DynamoSync, SqsJobQueue};
use std::collections::BTreeSet;
use std::time::Duration;
use time::OffsetDateTime;
use time::macros::datetime;

const MIN: Duration = Duration::from_secs(60);

/// The first incarnation of `id`'s Gradient connector.
fn ws(id: &str) -> ConnectorRef {
    incarnation(id, "inc1")
}

fn incarnation(id: &str, inc: &str) -> ConnectorRef {
    ConnectorRef {
        workspace: WorkspaceId::parse(id).expect("workspace id"),
        kind: ConnectorType::Gradient,
        incarnation: inc.into(),
    }
}

/// The holder a claim found, if the slot was busy.
fn busy(claim: SlotClaim) -> Option<RunId> {
    match claim {
        SlotClaim::Busy(holder, _) => Some(holder),
        _ => None,
    }
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
        workspace_id: ws(workspace).workspace,
        incarnation: "inc1".into(),
        trigger: Trigger::Scheduled,
        status: RunStatus::Queued,
        requested_by: None,
        queued_at: at,
        started_at: None,
        finished_at: None,
        counts: RunCounts::default(),
        failures: Vec::new(),
        reason: None,
        token_version: 1,
        continuations: 0,
        full: false,
        guard: None,
        release_of: None,
        calls: Default::default(),
        tickets: Vec::new(),
    }
}

#[tokio::test]
async fn run_slot_is_held_by_one_run_at_a_time() {
    let env = TestEnv::start("slot").await;
    let s = store(&env);
    let w = ws("ch_slot");
    let (a, b) = (run_id("a"), run_id("b"));

    assert_eq!(s.claim_slot(&w, &a, MIN).await.unwrap(), SlotClaim::Claimed);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let claim = s.claim_slot(&w, &b, MIN).await.unwrap();
    assert!(
        matches!(&claim, SlotClaim::Busy(h, held) if *h == a && *held >= Duration::from_millis(200)),
        "the holder and how long it has held the slot: {claim:?}"
    );
    assert_eq!(s.claim_slot(&w, &a, MIN).await.unwrap(), SlotClaim::Claimed);
    // Releasing for a run that does not hold it changes nothing.
    s.release_slot(&w, &b).await.unwrap();
    assert_eq!(
        busy(s.claim_slot(&w, &b, MIN).await.unwrap()),
        Some(a.clone())
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
    assert_eq!(
        s.claim_slot(&o, &b, MIN).await.unwrap(),
        SlotClaim::TookOver(a.clone()),
        "the expired holder is named: it will not end by itself"
    );
}

/// The claim on a run's email: one holder at a time, taken over once a dead holder's lease has
/// ended, final once sent; a late release by a former holder frees nothing.
#[tokio::test]
async fn a_runs_email_is_claimed_once_and_a_dead_senders_claim_is_taken_over() {
    let env = TestEnv::start("notices").await;
    let s = store(&env);
    let (w, r) = (ws("ch_notice"), run_id("n"));
    let short = Duration::from_millis(300);
    assert_eq!(
        s.claim_notice(&w, &r, "a", short).await.unwrap(),
        NoticeClaim::Claimed
    );
    assert_eq!(
        s.claim_notice(&w, &r, "b", MIN).await.unwrap(),
        NoticeClaim::Sending
    );
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        s.claim_notice(&w, &r, "b", MIN).await.unwrap(),
        NoticeClaim::Claimed,
        "a's lease ended: a died mid-send"
    );
    s.release_notice(&w, &r, "a").await.unwrap();
    assert_eq!(
        s.claim_notice(&w, &r, "c", MIN).await.unwrap(),
        NoticeClaim::Sending,
        "a's late release did not free b's claim"
    );
    s.notice_sent(&w, &r, "b").await.unwrap();
    assert_eq!(
        s.claim_notice(&w, &r, "c", MIN).await.unwrap(),
        NoticeClaim::Sent
    );
    s.release_notice(&w, &r, "c").await.unwrap();
    assert_eq!(
        s.claim_notice(&w, &r, "d", MIN).await.unwrap(),
        NoticeClaim::Sent
    );
    assert_eq!(
        s.claim_notice(&w, &run_id("m"), "a", MIN).await.unwrap(),
        NoticeClaim::Claimed,
        "another run's email is its own"
    );
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
        if let SlotClaim::Busy(holder, _) = c {
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
        busy(s.claim_slot(&w, &b, MIN).await.unwrap()),
        Some(a.clone()),
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
        busy(s.claim_slot(&w, &b, MIN).await.unwrap()),
        Some(a.clone())
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

/// A deleted incarnation's slot stays while a job holds its lease (that job ends the run), and
/// the new incarnation sees the lease until it lapses or is dropped.
#[tokio::test]
async fn a_live_lease_outlives_the_delete_and_fences_the_next_incarnation() {
    let env = TestEnv::start("fence").await;
    let s = store(&env);
    let (old, new) = (
        incarnation("ch_fence", "inc1"),
        incarnation("ch_fence", "inc2"),
    );
    let other = incarnation("ch_fence_other", "inc1");
    let (a, b) = (run_id("a"), run_id("b"));

    assert_eq!(s.lease_of_other_incarnation(&new).await.unwrap(), None);
    assert_eq!(
        s.take_lease(&old, &a, "x", MIN).await.unwrap(),
        Lease::Acquired
    );
    s.take_lease(&other, &a, "x", MIN).await.unwrap();
    let wait = s.lease_of_other_incarnation(&new).await.unwrap();
    assert!(
        wait.is_some_and(|w| w > Duration::from_secs(50) && w <= MIN),
        "the old incarnation's lease: {wait:?}"
    );
    assert_eq!(
        s.lease_of_other_incarnation(&old).await.unwrap(),
        None,
        "its own lease is not another's; another workspace's neither"
    );

    // The delete's clean-up leaves the leased slot: the job still holds its run.
    s.clear(&old).await.unwrap();
    assert_eq!(
        s.take_lease(&old, &a, "y", MIN).await.unwrap(),
        Lease::HeldByOther,
        "the slot and its lease survived the clear"
    );
    s.drop_lease(&old, &a, "x").await.unwrap();
    assert_eq!(s.lease_of_other_incarnation(&new).await.unwrap(), None);

    // Without a live lease, the clear removes the slot.
    s.clear(&old).await.unwrap();
    assert_eq!(
        s.claim_slot(&old, &b, MIN).await.unwrap(),
        SlotClaim::Claimed,
        "the slot of run a is gone"
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

    // Another workspace's runs, and another incarnation's, never show up.
    s.create_run(&run("ch_elsewhere", t0, "x")).await.unwrap();
    let mut other = run("ch_runs", t0, "other-inc");
    other.incarnation = "inc2".into();
    s.create_run(&other).await.unwrap();
    // Listed by queuedAt, not by run id: a scheduled run's id is its scheduled minute, and one
    // queued late sorts after on-demand runs queued before it.
    let mut late = run("ch_runs", t0, "late");
    late.queued_at = t0 + Duration::from_secs(60 * 10);
    assert!(s.create_run(&late).await.unwrap());
    ids.push(late.run_id.clone());

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = s.list_runs(&w, 3, cursor.as_deref()).await.unwrap();
        assert!(page.items.len() <= 3);
        seen.extend(page.items.into_iter().map(|r| r.run_id));
        pages += 1;
        assert!(pages <= 3, "paging does not end");
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3, "8 runs in pages of 3, no empty last page");
    assert!(
        s.list_runs(&incarnation("ch_runs", "inc2"), 10, None)
            .await
            .unwrap()
            .items
            .len()
            == 1
    );

    for bad in ["not a cursor", "e30", "AAAA"] {
        let err = s.list_runs(&w, 3, Some(bad)).await.unwrap_err();
        assert!(matches!(err, PageError::InvalidCursor), "{bad}: {err}");
    }
    // A cursor of another connector's list is refused too.
    let theirs = s
        .list_runs(&ws("ch_runs"), 1, None)
        .await
        .unwrap()
        .next
        .unwrap();
    let err = s
        .list_runs(&ws("ch_elsewhere"), 1, Some(&theirs))
        .await
        .unwrap_err();
    assert!(matches!(err, PageError::InvalidCursor));
}

fn reading(i: usize, outcome: Outcome) -> RunReading {
    RunReading {
        account_id: format!("acct_{:02}", i / 4),
        account_name: format!("Account {}", i / 4),
        service: format!("SVC_{}", i % 4),
        unit: Unit::ProtectedDevices,
        value: i as u64 * 3,
        previous: i.is_multiple_of(2).then_some(7),
        outcome,
        reason: (outcome == Outcome::Failed).then(|| "503".to_owned()),
    }
}

#[tokio::test]
async fn readings_are_ordered_filtered_and_paged() {
    let env = TestEnv::start("readings").await;
    let s = store(&env);
    let w = ws("ch_read");
    let r = run_id("r");
    let readings: Vec<RunReading> = (0..60)
        .map(|i| {
            reading(
                i,
                if i % 3 == 0 {
                    Outcome::Failed
                } else {
                    Outcome::Posted
                },
            )
        })
        .collect();
    // Written out of order and in two calls; a reading recorded again replaces the first record.
    s.put_readings(&w, &r, &readings[30..]).await.unwrap();
    s.put_readings(&w, &r, &readings[..30]).await.unwrap();
    let mut again = readings[5].clone();
    again.outcome = Outcome::Unmapped;
    s.put_readings(&w, &r, std::slice::from_ref(&again))
        .await
        .unwrap();
    let all = s.all_readings(&w, &r).await.unwrap();
    assert_eq!(all.len(), 60);
    let keys: Vec<_> = all
        .iter()
        .map(|x| (x.account_id.clone(), x.service.clone()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "ordered by account id then service key");
    assert_eq!(
        all.iter()
            .find(|x| x.account_id == again.account_id && x.service == again.service),
        Some(&again)
    );

    for (filter, expected) in [
        (None, 60),
        (Some(Outcome::Failed), 20),
        (Some(Outcome::Unmapped), 1),
        (Some(Outcome::SkippedDisabled), 0),
    ] {
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let page = s
                .readings_page(&w, &r, filter, 7, cursor.as_deref())
                .await
                .unwrap();
            assert!(page.items.len() <= 7);
            assert!(
                page.items
                    .iter()
                    .all(|x| filter.is_none_or(|o| x.outcome == o))
            );
            got.extend(page.items);
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(got.len(), expected, "{filter:?}");
    }
    // Another run, or another incarnation, has its own readings.
    assert!(
        s.all_readings(&w, &run_id("other"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.all_readings(&incarnation("ch_read", "inc2"), &r)
            .await
            .unwrap()
            .is_empty()
    );
    let err = s
        .readings_page(&w, &run_id("other"), None, 5, Some("garbage"))
        .await
        .unwrap_err();
    assert!(matches!(err, PageError::InvalidCursor));
}

/// A quiet night: most readings `unchanged`. They are packed (a run of 1,003 readings, 960 of
/// them unchanged, costs a few dozen write units), and every listing still shows each reading
/// once, in order, with the same page sizes and filters, for a constant number of requests.
#[tokio::test]
async fn unchanged_readings_are_packed_and_listed_as_if_they_were_items() {
    let env = TestEnv::start("readings-packed").await;
    let meter = harness::meter::Meter::default();
    let s = DynamoSync::new(meter.client(&env.local.sdk), env.tables.psa.clone());
    let w = ws("ch_packed");
    let r = run_id("p");
    let readings: Vec<RunReading> = (0..1003)
        .map(|i| {
            let outcome = match i % 47 {
                0 => Outcome::Unmapped,
                1 => Outcome::Posted,
                _ if i % 97 == 5 => Outcome::Failed,
                _ => Outcome::Unchanged,
            };
            let mut r = reading(i, outcome);
            r.previous = Some(r.value);
            r
        })
        .collect();
    let unchanged = readings
        .iter()
        .filter(|x| x.outcome == Outcome::Unchanged)
        .count();
    let before = meter.bill();
    // Decided readings in one call (as a job records them), the rest in two more.
    let (decided, sent): (Vec<RunReading>, Vec<RunReading>) = readings
        .iter()
        .cloned()
        .partition(|x| x.outcome == Outcome::Unchanged);
    s.put_readings(&w, &r, &decided).await.unwrap();
    s.put_readings(&w, &r, &sent[..20]).await.unwrap();
    s.put_readings(&w, &r, &sent[20..]).await.unwrap();
    let write = meter.bill().since(&before);
    eprintln!(
        "recording {} readings ({unchanged} unchanged): {write}",
        readings.len()
    );
    // A posted reading costs 1 unit, another item 2 (the table and `byOutcome`); 948 packed
    // readings cost 12.
    let posted = readings
        .iter()
        .filter(|x| x.outcome == Outcome::Posted)
        .count() as f64;
    let items = (readings.len() - unchanged) as f64 - posted;
    assert!(
        write.write_units <= posted + 2.0 * items + 0.02 * unchanged as f64,
        "{write}"
    );
    let mut sorted = readings.clone();
    sorted.sort_by(|a, b| (&a.account_id, &a.service).cmp(&(&b.account_id, &b.service)));
    assert_eq!(s.all_readings(&w, &r).await.unwrap(), sorted);

    // A later job's unchanged readings (the run has chunks): items, merged in order.
    let late = {
        let mut x = reading(5000, Outcome::Unchanged);
        x.previous = Some(x.value);
        x
    };
    s.put_readings(&w, &r, std::slice::from_ref(&late))
        .await
        .unwrap();
    sorted.push(late);
    sorted.sort_by(|a, b| (&a.account_id, &a.service).cmp(&(&b.account_id, &b.service)));
    assert_eq!(s.all_readings(&w, &r).await.unwrap(), sorted);

    for (filter, limit) in [
        (None, 37),
        (None, 100),
        (Some(Outcome::Unchanged), 61),
        (Some(Outcome::Posted), 5),
        (Some(Outcome::Unmapped), 3),
    ] {
        let want: Vec<&RunReading> = sorted
            .iter()
            .filter(|x| filter.is_none_or(|o| x.outcome == o))
            .collect();
        let mut got = Vec::new();
        let mut cursor = None;
        let mut most = 0;
        loop {
            let at = meter.bill();
            let page = s
                .readings_page(&w, &r, filter, limit, cursor.as_deref())
                .await
                .unwrap();
            most = most.max(meter.bill().since(&at).total_requests());
            assert!(page.items.len() <= limit as usize);
            got.extend(page.items);
            match page.next {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        assert_eq!(
            got.iter().collect::<Vec<_>>(),
            want,
            "{filter:?} by {limit}"
        );
        assert!(most <= 4, "{filter:?}: at most 4 requests a page, {most}");
    }
}

fn pair(i: usize) -> PairState {
    PairState {
        account_id: format!("acct_{}", i / 4),
        service_key: format!("SVC_{}", i % 4),
        account_name: format!("Account {}", i / 4),
        accepted: (!i.is_multiple_of(5)).then(|| Accepted {
            value: i as u64 * 3,
            service_id: format!("gs-{i}"),
            at: datetime!(2026-11-24 05:00:00 UTC),
            run_id: run_id("sent"),
        }),
        last_attempt: if i.is_multiple_of(5) {
            AttemptOutcome::Unmapped
        } else {
            AttemptOutcome::Posted
        },
        last_attempt_at: datetime!(2026-11-24 05:00:00 UTC),
    }
}

#[tokio::test]
async fn pair_states_round_trip_per_incarnation() {
    let env = TestEnv::start("pairs").await;
    let s = store(&env);
    let w = ws("ch_pairs");
    let pairs: Vec<PairState> = (0..60).map(pair).collect();
    s.put_pairs(&w, &pairs).await.unwrap();
    let got = s.pairs(&w).await.unwrap();
    assert_eq!(got.len(), 60);
    for p in &pairs {
        assert_eq!(got.get(&p.key()), Some(p));
    }
    let forget: Vec<(String, String)> = pairs[..10].iter().map(PairState::key).collect();
    s.delete_pairs(&w, &forget).await.unwrap();
    let got = s.pairs(&w).await.unwrap();
    assert_eq!(got.len(), 50);
    assert!(forget.iter().all(|k| !got.contains_key(k)));
    let mut newer = pairs[21].clone();
    newer.accepted.as_mut().unwrap().value = 999;
    s.put_pairs(&w, std::slice::from_ref(&newer)).await.unwrap();
    assert_eq!(s.pairs(&w).await.unwrap()[&newer.key()], newer);
    assert!(s.pairs(&ws("ch_empty")).await.unwrap().is_empty());
    assert!(
        s.pairs(&incarnation("ch_pairs", "inc2"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn audit_trail_is_newest_first_per_workspace() {
    let env = TestEnv::start("audit").await;
    let s = store(&env);
    let w = ws("ch_audit").workspace;
    let t0 = datetime!(2026-11-24 05:00:00 UTC);
    for i in 0..9 {
        let mut e = AuditEvent::new(
            Actor::System,
            AuditAction::SyncFinished,
            ConnectorType::Gradient,
        )
        .with("n", i.to_string());
        e.at = t0 + Duration::from_secs(i);
        s.record(&w, &e).await.unwrap();
    }
    // Same millisecond twice: both kept.
    let e = AuditEvent::new(
        Actor::System,
        AuditAction::ConnectorRestored,
        ConnectorType::Gradient,
    );
    s.record(&w, &e).await.unwrap();
    s.record(&w, &e).await.unwrap();
    s.record(&ws("ch_other").workspace, &e).await.unwrap();
    let mut got = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.audit_page(&w, 4, cursor.as_deref()).await.unwrap();
        got.extend(page.items);
        match page.next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(got.len(), 11);
    assert!(got.windows(2).all(|p| p[0].at >= p[1].at), "newest first");
    assert_eq!(got[10].detail["n"], "0");
}

#[tokio::test]
async fn rejections_form_a_wave_until_a_call_is_accepted() {
    let env = TestEnv::start("health").await;
    let s = store(&env);
    let window = Duration::from_secs(900);
    let own = |w: &WorkspaceId| Rejected {
        workspace: w.clone(),
        msp: w.clone(),
    };
    let a = own(&ws("ch_a").workspace);
    let b = own(&ws("ch_b").workspace);
    let c = own(&ws("ch_c").workspace);
    assert_eq!(
        s.rejected(ConnectorType::Gradient, Rejection::Unauthorized, &a, window)
            .await
            .unwrap(),
        vec![a.clone()]
    );
    assert_eq!(
        s.rejected(ConnectorType::Gradient, Rejection::Unauthorized, &a, window)
            .await
            .unwrap()
            .len(),
        1,
        "one connector counts once"
    );
    assert_eq!(
        s.rejected(ConnectorType::Gradient, Rejection::Forbidden, &b, window)
            .await
            .unwrap(),
        vec![b.clone()],
        "kinds are apart"
    );
    assert_eq!(
        s.rejected(ConnectorType::Gradient, Rejection::Unauthorized, &b, window)
            .await
            .unwrap()
            .len(),
        2
    );
    // A subchannel is recorded with its MSP, so the wave can tell one MSP from many.
    let sub = Rejected {
        workspace: ws("ch_a_sub").workspace,
        msp: a.workspace.clone(),
    };
    let wave = s
        .rejected(
            ConnectorType::Gradient,
            Rejection::Unauthorized,
            &sub,
            window,
        )
        .await
        .unwrap();
    assert!(wave.contains(&sub), "{wave:?}");
    let msps: std::collections::BTreeSet<_> = wave.iter().map(|r| r.msp.clone()).collect();
    assert_eq!((wave.len(), msps.len()), (3, 2), "{wave:?}");
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        s.last_accepted(ConnectorType::Gradient).await.unwrap(),
        None
    );
    let by = AcceptedBy {
        connector: psa_domain::ConnectorRef {
            workspace: ws("ch_ok").workspace,
            kind: ConnectorType::Gradient,
            incarnation: "inc1".into(),
        },
        token_version: 3,
    };
    s.accepted(ConnectorType::Gradient, &by).await.unwrap();
    assert_eq!(
        s.last_accepted(ConnectorType::Gradient).await.unwrap(),
        Some(by.clone()),
        "the connector a suspected fault is checked with"
    );
    tokio::time::sleep(Duration::from_millis(5)).await;
    assert_eq!(
        s.rejected(ConnectorType::Gradient, Rejection::Unauthorized, &c, window)
            .await
            .unwrap(),
        vec![c.clone()],
        "an accepted call ends the wave"
    );
    // Concurrent rejections all land (optimistic versioning).
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let s = s.clone();
            let w = own(&WorkspaceId::parse(&format!("ch_x{i}")).unwrap());
            tokio::spawn(async move {
                s.rejected(ConnectorType::Gradient, Rejection::Unauthorized, &w, window)
                    .await
                    .unwrap()
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(
        s.last_accepted(ConnectorType::Gradient).await.unwrap(),
        Some(by),
        "a rejection's rewrite of the record keeps who was accepted last"
    );
    assert_eq!(
        s.rejected(ConnectorType::Gradient, Rejection::Unauthorized, &c, window)
            .await
            .unwrap()
            .len(),
        7
    );
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
            workspace_id: ws(&format!("ch_q{i}")).workspace,
            connector_id: ConnectorType::Gradient,
            run_id: run_id(&format!("q{i}")),
            incarnation: "inc1".into(),
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

#[tokio::test]
async fn connectors_are_kept_per_workspace_and_type() {
    use psa_domain::connector::{Connector, ConnectorSettings};
    use psa_domain::ports::ConnectorRepo;
    let env = TestEnv::start("conn_types").await;
    let repo = psa_store::DynamoConnectors::new(env.local.dynamodb(), env.tables.psa.clone());
    let s = store(&env);
    let gradient = ConnectorType::Gradient;
    let mine = ws("ch_types").workspace;
    let other = ws("ch_types_other").workspace;
    let c = Connector::new(
        gradient,
        mine.clone(),
        psa_domain::UserId::parse("u").unwrap(),
        "…1234".into(),
        ConnectorSettings::default(),
        OffsetDateTime::now_utc(),
    );
    assert!(repo.list(&mine).await.unwrap().is_empty());
    assert!(repo.insert(&c).await.unwrap());
    assert!(!repo.insert(&c).await.unwrap(), "one connector per type");
    // Other items of the workspace's partition are not connectors.
    let mut r = run("ch_types", datetime!(2026-11-24 04:00 UTC), "x");
    r.incarnation = c.incarnation.clone();
    assert!(s.create_run(&r).await.unwrap());
    let audit = AuditEvent::new(Actor::System, AuditAction::SyncFinished, gradient);
    s.record(&mine, &audit).await.unwrap();
    assert_eq!(repo.list(&mine).await.unwrap(), std::slice::from_ref(&c));
    assert!(repo.list(&other).await.unwrap().is_empty());
    assert_eq!(repo.get(&mine, gradient).await.unwrap(), Some(c));
    assert_eq!(repo.get(&other, gradient).await.unwrap(), None);
    repo.delete(&mine, gradient).await.unwrap();
    assert!(repo.list(&mine).await.unwrap().is_empty());
    assert_eq!(repo.get(&mine, gradient).await.unwrap(), None);
}
