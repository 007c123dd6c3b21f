//! Every key as it is in the table today: a change here moves data out of reach.

use super::*;
use time::macros::datetime;

fn c() -> ConnectorRef {
    ConnectorRef {
        workspace: WorkspaceId::parse("acme_TX7T_u").unwrap(),
        kind: ConnectorType::Gradient,
        incarnation: "0123456789abcdef".into(),
    }
}

fn run() -> RunId {
    RunId::parse("20250102T030405.678Z-abc").unwrap()
}

#[test]
fn every_key_is_spelled_as_in_the_table() {
    let (c, run, ws) = (c(), run(), c().workspace);
    let at = datetime!(2025-01-02 03:04:05.678 UTC);
    let cases: Vec<(String, &str)> = vec![
        (workspace_pk(&ws), "WS#acme_TX7T_u"),
        (connector_sk(ConnectorType::Gradient), "CONNECTOR#gradient"),
        (CONNECTORS_PREFIX.into(), "CONNECTOR#"),
        (
            connectors_by_status_pk(ConnectorStatus::Connected),
            "CONNECTORS#connected",
        ),
        (connectors_by_status_sk(&ws), "WS#acme_TX7T_u"),
        (
            organization_pk(ConnectorType::Gradient, "org-9"),
            "ORG#gradient#org-9",
        ),
        (BINDING_SK.into(), "BINDING"),
        (vendor_pk("gradient"), "VENDOR#gradient"),
        (KEY_HEALTH_SK.into(), "KEYHEALTH"),
        (BUDGET_SK.into(), "BUDGET"),
        (slot_sk(&c), "SLOT#gradient#0123456789abcdef"),
        (slots_prefix(ConnectorType::Gradient), "SLOT#gradient#"),
        (cooldown_sk(&c), "COOLDOWN#gradient"),
        (attempts_pk(&ws), "LIMIT#acme_TX7T_u"),
        (
            attempts_sk("verify", 1_700_000_000_000),
            "ATTEMPTS#verify#1700000000000",
        ),
        (runs_prefix(&c), "RUN#gradient#0123456789abcdef#"),
        (
            run_sk(&c, &run),
            "RUN#gradient#0123456789abcdef#20250102T030405.678Z-abc",
        ),
        (
            runs_index_pk(&c),
            "RUNS#acme_TX7T_u#gradient#0123456789abcdef",
        ),
        (
            runs_index_sk(at, &run),
            "001735787045678#20250102T030405.678Z-abc",
        ),
        (reading_key("acc-1", "edr"), "acc-1#edr"),
        (
            readings_prefix(&c, &run),
            "READING#gradient#0123456789abcdef#20250102T030405.678Z-abc#",
        ),
        (
            posted_prefix(&c, &run),
            "RPOSTED#gradient#0123456789abcdef#20250102T030405.678Z-abc#",
        ),
        (
            chunks_prefix(&c, &run),
            "RCHUNK#gradient#0123456789abcdef#20250102T030405.678Z-abc#",
        ),
        (
            chunks_end(&c, &run),
            "RCHUNK#gradient#0123456789abcdef#20250102T030405.678Z-abc$",
        ),
        (in_run("P#", "acc-1#edr"), "P#acc-1#edr"),
        (in_run_after("P#", "acc-1#edr"), "P#acc-1#edr\u{1}"),
        (
            outcome_index_pk(&c, &run, Outcome::SkippedDisabled),
            "READINGS#acme_TX7T_u#gradient#0123456789abcdef#20250102T030405.678Z-abc#skipped_disabled",
        ),
        (pairs_prefix(&c), "PAIR#gradient#0123456789abcdef#"),
        (
            pair_sk(&c, "acc-1", "edr"),
            "PAIR#gradient#0123456789abcdef#acc-1#edr",
        ),
        (
            alert_sk(&c, "acc-1", "unmapped"),
            "ALERT#gradient#0123456789abcdef#acc-1#unmapped",
        ),
        (tickets_prefix(&c), "TICKET#gradient#0123456789abcdef#"),
        (
            ticket_sk(&c, "msg-1"),
            "TICKET#gradient#0123456789abcdef#msg-1",
        ),
        (AUDIT_PREFIX.into(), "AUDIT#"),
        (audit_sk(at, "0a1b2c3d"), "AUDIT#001735787045678#0a1b2c3d"),
        (
            notice_sk(&c, &run),
            "NOTICE#gradient#0123456789abcdef#20250102T030405.678Z-abc",
        ),
        (SCHEDULE_PK.into(), "SCHEDULE#gradient"),
        (LATEST_FIRING_SK.into(), "LATEST"),
        (firing_sk(&run), "FIRING#20250102T030405.678Z-abc"),
        (
            queued_sk(&c, &run),
            "QUEUED#gradient#0123456789abcdef#20250102T030405.678Z-abc",
        ),
        (BY_STATUS.into(), "byStatus"),
        (BY_OUTCOME.into(), "byOutcome"),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
}

#[test]
fn a_prefix_lists_only_its_own_items_in_reading_order() {
    let (c, run) = (c(), run());
    let prefix = chunks_prefix(&c, &run);
    let end = chunks_end(&c, &run);
    let inside = in_run(&prefix, &reading_key("zzz", "zzz"));
    assert!(prefix < inside && inside < end);
    assert!(in_run(&prefix, &reading_key("a", "b")) < in_run(&prefix, &reading_key("a-", "a")));
    let key = reading_key("acc-1", "edr");
    assert!(in_run(&prefix, &key) < in_run_after(&prefix, &key));
    assert!(in_run_after(&prefix, &key) < in_run(&prefix, &reading_key("acc-1", "edr0")));
}
