//! The email when a sync is complete (contract *Notifications*), end to end on the local stack:
//! real runs publish real `PSA Sync Finished` events on a moto bus, the events come back through
//! the rule's queue exactly as EventBridge delivers them, the notifier's handler takes them, and
//! moto's SES says what was sent.

use gradient_sim::Faults;
use harness::events::EventProbe;
use harness::fixture::*;
use harness::mail::{SentEmail, verify_sender};
use harness::{CONSOLE_URL, Claims, TestEnv, scheduled_event, workspace};
use psa_domain::usecase::notice::{Notice, NoticeError};
use serde_json::{Value, json};
use sync_notifier::{Handled, handle};

async fn set_notify(env: &TestEnv, notify: Value) -> harness::ApiResponse {
    let body = json!({"settings": {"notify": notify}}).to_string();
    env.call(
        "PATCH",
        "/v1/psa/connectors/gradient",
        Some(&Claims::admin(CH)),
        Some(&body),
    )
    .await
}

/// The `PSA Sync Finished` events delivered so far, as the notifier's rule hands them over.
async fn finished_events(env: &TestEnv, probe: &EventProbe, at_least: usize) -> Vec<Value> {
    probe
        .drain(env, at_least)
        .await
        .into_iter()
        .filter(|e| e["detail-type"] == "PSA Sync Finished")
        .collect()
}

/// One delivery of `event` to the notifier's handler, as delivery `owner`.
async fn deliver(
    notifier: &psa_domain::usecase::notice::Notifier,
    event: &Value,
    owner: impl Into<String>,
) -> Result<Handled, NoticeError> {
    let event = serde_json::from_value(event.clone()).expect("an EventBridge event");
    handle(notifier, event, &owner.into()).await
}

fn sent(h: Result<Handled, NoticeError>) -> Notice {
    match h {
        Ok(Handled::Notice(n)) => n,
        other => panic!("not a notice: {other:?}"),
    }
}

/// Unique addresses of one test (moto's SES is shared by every test of the run).
fn inboxes(label: &str, n: usize) -> Vec<String> {
    let tag = uuid_like(label);
    (0..n)
        .map(|i| format!("admin{i}.{tag}@msp.example"))
        .collect()
}

fn uuid_like(label: &str) -> String {
    format!(
        "{label}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn assert_no_secret(env: &TestEnv, org: &str, mail: &SentEmail) {
    let o = env.sim.organization(org).unwrap();
    for secret in [o.partner_key.as_str(), env.sim.vendor_key().as_str()] {
        for window in secret.as_bytes().windows(12) {
            let piece = std::str::from_utf8(window).unwrap();
            assert!(
                !mail.html.contains(piece) && !mail.subject.contains(piece),
                "a piece of a secret is in the email"
            );
        }
    }
}

#[tokio::test]
async fn a_run_that_needs_attention_is_emailed_once_with_what_to_do() {
    let mut m = connected_msp("notify-once", 60).await;
    let probe = m.env.enable_events().await;
    let env = &m.env;
    let notifier = env.notifier().await;
    // A name that is markup: the HTML part shows it as text.
    let mut channel = workspace(
        CH,
        None,
        "channel",
        "Acme <b>MSP</b> & Co",
        "subscription",
        &[],
        0,
        0,
    );
    channel.domain = None;
    env.seed_workspaces(&[channel]).await;
    let to = inboxes("once", 2);
    let r = set_notify(env, json!({"emails": to, "on": "always"})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    // An admin's own run with unmapped services: it needs attention, so it is emailed.
    let run = sync_and_wait(env).await;
    let unmapped = run["counts"]["unmapped"].as_u64().unwrap();
    assert!(unmapped > 20, "the fixture names more than 20: {unmapped}");
    let events = finished_events(env, &probe, 1).await;
    assert_eq!(events.len(), 1);
    let event = &events[0];
    // What an email costs, as DynamoDB (Local) bills it.
    let meter = harness::meter::Meter::default();
    let metered = psa_runtime::notifier_on(
        &env.platform.settings,
        &env.local.sdk,
        meter.client(&env.local.sdk),
    )
    .unwrap();
    assert_eq!(
        sent(deliver(&metered, event, "delivery-1").await),
        Notice::Sent { recipients: 2 }
    );
    let cost = meter.bill();
    eprintln!("one email: {cost} + 1 SES SendEmail");
    // The connector, the run, the workspace's name, the first 20 unmapped readings (one Query),
    // the claim and its "sent" mark.
    assert_eq!(cost.total_requests(), 6, "{cost}");
    assert_eq!(cost.requests["Query"], 1, "{cost}");
    assert!(cost.write_units <= 2.0, "{cost}");

    let mail = env.emails_to(&to[0]).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    let mail = &mail[0];
    assert_eq!(mail.to, to, "one message to every address");
    assert_eq!(mail.source, harness::NOTIFY_FROM);
    assert_eq!(
        mail.subject,
        "Acme <b>MSP</b> & Co: Gradient sync needs attention"
    );
    let html = &mail.html;
    assert!(
        html.contains("<strong>Acme &lt;b&gt;MSP&lt;/b&gt; &amp; Co</strong>"),
        "{html}"
    );
    assert!(!html.contains("<b>MSP"), "names are escaped");
    let c = counts(&run);
    for (label, key) in [
        ("Posted", "posted"),
        ("Unchanged", "unchanged"),
        ("Unmapped", "unmapped"),
        ("Failed", "failed"),
        ("Held", "held"),
        ("Accounts created", "accountsCreated"),
    ] {
        assert!(
            html.contains(&format!("<tr><td>{label}</td><td>{}</td></tr>", c[key])),
            "{label}: {html}"
        );
    }
    assert!(html.contains(&format!("Map these {unmapped} service(s)")));
    assert_eq!(
        html.matches(" — ").count(),
        20,
        "twenty pairs named: {html}"
    );
    assert!(html.contains(&format!("and {} more", unmapped - 20)));
    // The first unmapped reading (in reading order) is named with its account and service names.
    let first = env
        .call(
            "GET",
            &format!(
                "/v1/psa/connectors/gradient/syncs/{}/readings?outcome=unmapped&limit=1",
                run["runId"].as_str().unwrap()
            ),
            Some(&Claims::admin(CH)),
            None,
        )
        .await
        .json()["items"][0]
        .clone();
    let service = psa_domain::Catalogue::builtin()
        .get(first["service"].as_str().unwrap())
        .unwrap()
        .name
        .clone();
    assert!(
        html.contains(&format!(
            "{} — {}",
            first["accountName"].as_str().unwrap(),
            psa_domain::notify::escape_html(&service)
        )),
        "{html}"
    );
    assert!(html.contains(&format!(
        "href=\"{}\"",
        psa_domain::notify::escape_html(CONSOLE_URL)
    )));
    assert_no_secret(env, &m.org, mail);
    let hint = env.connector(CH).await["tokenHint"]
        .as_str()
        .unwrap()
        .trim_start_matches('…')
        .to_owned();
    assert!(!html.contains(&hint), "never a token hint");

    // Re-delivered, even several times at once: nothing more is sent.
    assert_eq!(
        sent(deliver(&metered, event, "delivery-2").await),
        Notice::AlreadySent
    );
    let again = meter.bill().since(&cost);
    eprintln!("a re-delivery: {again}");
    assert_eq!(
        again.total_requests(),
        4,
        "the connector, the run, the refused claim and the read of it: {again}"
    );
    let again =
        futures::future::join_all((0..5).map(|i| deliver(&notifier, event, format!("d{i}")))).await;
    for h in again {
        assert_eq!(sent(h), Notice::AlreadySent);
    }
    assert_eq!(
        env.emails_to(&to[0]).await.len(),
        1,
        "exactly one email per run"
    );
}

#[tokio::test]
async fn concurrent_first_deliveries_send_one_email() {
    let mut m = connected_msp("notify-race", 6).await;
    let probe = m.env.enable_events().await;
    let env = &m.env;
    let notifier = env.notifier().await;
    let to = inboxes("race", 1);
    assert_eq!(
        set_notify(env, json!({"emails": to, "on": "always"}))
            .await
            .status,
        200
    );
    sync_and_wait(env).await;
    let event = finished_events(env, &probe, 1).await.remove(0);
    let outcomes =
        futures::future::join_all((0..6).map(|i| deliver(&notifier, &event, format!("r{i}"))))
            .await;
    let sent_now = outcomes
        .iter()
        .filter(|h| matches!(h, Ok(Handled::Notice(Notice::Sent { .. }))))
        .count();
    assert_eq!(sent_now, 1, "{outcomes:?}");
    // The others found it sent, or failed because it was being sent: their retry finds it sent.
    assert!(
        outcomes.iter().all(|h| matches!(
            h,
            Ok(Handled::Notice(Notice::Sent { .. } | Notice::AlreadySent))
                | Err(NoticeError::BeingSent)
        )),
        "{outcomes:?}"
    );
    assert_eq!(
        sent(deliver(&notifier, &event, "retry").await),
        Notice::AlreadySent
    );
    assert_eq!(env.emails_to(&to[0]).await.len(), 1);
}

/// A fully mapped MSP of 4 accounts: its runs succeed with nothing to do.
async fn clean_msp(label: &str) -> (TestEnv, String, EventProbe) {
    let mut env = TestEnv::start(label).await;
    let children = fixture(4);
    seed(&env, &children).await;
    let org = env.sim.create_organization("Clean MSP");
    assert_eq!(env.connect(CH, &org.partner_key).await.status, 201);
    assert!(env.sim.map_all(&org.organization_id, &[]));
    let probe = env.enable_events().await;
    (env, org.organization_id, probe)
}

/// Runs the daily schedule for `at` (RFC 3339) and drains the queue.
async fn scheduled_run(env: &TestEnv, at: &str) {
    let mut event = scheduled_event();
    event["time"] = json!(at);
    let scheduler = sync_scheduled::Scheduler::new(
        env.platform.queue_core(),
        env.platform.settings.sync.clone(),
        env.platform.settings.gradient_max_rps,
    );
    sync_scheduled::handle(&scheduler, serde_json::from_value(event).unwrap())
        .await
        .expect("the schedule runs");
    assert!(env.drain().await >= 1);
}

#[tokio::test]
async fn always_problems_and_never_choose_the_runs_that_are_emailed() {
    let (env, org, probe) = clean_msp("notify-which").await;
    let notifier = env.notifier().await;
    let to = inboxes("which", 1);
    let mut notices = Vec::new();
    let step = |on: &str| json!({"emails": to, "on": on});

    // `always`: an admin's own clean run is not emailed; a scheduled clean run is ("complete").
    assert_eq!(set_notify(&env, step("always")).await.status, 200);
    assert_eq!(sync_and_wait(&env).await["status"], "succeeded");
    scheduled_run(&env, "2026-11-24T05:00:00Z").await;
    for e in finished_events(&env, &probe, 2).await {
        notices.push(sent(deliver(&notifier, &e, "a").await));
    }
    assert_eq!(notices, [Notice::NotWanted, Notice::Sent { recipients: 1 }]);
    let mail = env.emails_to(&to[0]).await;
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].subject, "Acme MSP: Gradient sync complete");
    assert!(!mail[0].html.contains("What to do"), "{}", mail[0].html);

    // `problems`: a clean scheduled run is not emailed; a run that failed is ("needs attention").
    assert_eq!(set_notify(&env, step("problems")).await.status, 200);
    scheduled_run(&env, "2026-11-25T05:00:00Z").await;
    env.sim.set_faults(Faults {
        force_status: Some(500),
        ..Default::default()
    });
    let failed = sync_and_wait(&env).await;
    env.sim.clear_faults();
    assert_ne!(failed["status"], "succeeded", "{failed}");
    let notices: Vec<Notice> = {
        let mut out = Vec::new();
        for e in finished_events(&env, &probe, 2).await {
            out.push(sent(deliver(&notifier, &e, "b").await));
        }
        out
    };
    assert_eq!(notices, [Notice::NotWanted, Notice::Sent { recipients: 1 }]);
    let mail = env.emails_to(&to[0]).await;
    assert_eq!(mail.len(), 2);
    assert_eq!(mail[1].subject, "Acme MSP: Gradient sync needs attention");
    assert!(mail[1].html.contains("<p>Why: "), "{}", mail[1].html);

    // `never`: not even a run that disconnects the connector.
    assert_eq!(set_notify(&env, step("never")).await.status, 200);
    env.sim.regenerate_key(&org).unwrap();
    let rejected = sync_and_wait(&env).await;
    assert_eq!(rejected["status"], "token_rejected");
    for e in finished_events(&env, &probe, 1).await {
        assert_eq!(sent(deliver(&notifier, &e, "c").await), Notice::NotWanted);
    }
    assert_eq!(env.emails_to(&to[0]).await.len(), 2, "nothing more");
}

#[tokio::test]
async fn a_disconnected_connector_is_told_to_reconnect() {
    let (env, org, probe) = clean_msp("notify-disc").await;
    let notifier = env.notifier().await;
    let to = inboxes("disc", 1);
    assert_eq!(
        set_notify(&env, json!({"emails": to, "on": "problems"}))
            .await
            .status,
        200
    );
    env.sim.regenerate_key(&org).unwrap();
    assert_eq!(sync_and_wait(&env).await["status"], "token_rejected");
    let event = finished_events(&env, &probe, 1).await.remove(0);
    assert_eq!(
        sent(deliver(&notifier, &event, "x").await),
        Notice::Sent { recipients: 1 }
    );
    let mail = env.emails_to(&to[0]).await;
    assert_eq!(mail[0].subject, "Acme MSP: Gradient sync disconnected");
    assert!(mail[0].html.contains("reconnect"), "{}", mail[0].html);
    assert_no_secret(&env, &org, &mail[0]);
}

#[tokio::test]
async fn a_failed_send_changes_nothing_and_the_retry_sends_it() {
    let (mut env, _org, probe) = clean_msp("notify-retry").await;
    let to = inboxes("retry", 1);
    assert_eq!(
        set_notify(&env, json!({"emails": to, "on": "always"}))
            .await
            .status,
        200
    );
    scheduled_run(&env, "2026-11-24T05:00:00Z").await;
    let event = finished_events(&env, &probe, 1).await.remove(0);
    let run_id = event["detail"]["runId"].as_str().unwrap().to_owned();
    let run_before = env.run(CH, &run_id).await;
    let connector_before = env.connector(CH).await;

    // A sender SES has not verified: SES refuses, the delivery fails (and would be retried).
    let mut unverified = env.platform.settings.clone();
    unverified.notify_from = Some("nobody@unverified.example".into());
    let refused = psa_runtime::notifier(&unverified, &env.local.sdk).unwrap();
    match deliver(&refused, &event, "first").await {
        Err(NoticeError::Mail(psa_domain::ports::MailError::Refused(why))) => {
            assert!(why.contains("not verified"), "{why}")
        }
        other => panic!("{other:?}"),
    }
    assert!(env.emails_to(&to[0]).await.is_empty());
    assert_eq!(
        env.run(CH, &run_id).await,
        run_before,
        "the run is unchanged"
    );
    assert_eq!(env.connector(CH).await, connector_before);

    // The retry (the sender fixed) sends it: the failed delivery left no claim behind.
    env.platform.settings.notify_from = Some(harness::NOTIFY_FROM.into());
    let notifier = env.notifier().await;
    assert_eq!(
        sent(deliver(&notifier, &event, "second").await),
        Notice::Sent { recipients: 1 }
    );
    assert_eq!(env.emails_to(&to[0]).await.len(), 1);
}

#[tokio::test]
async fn a_bad_recipient_list_is_refused_and_the_email_goes_to_the_old_one() {
    let (env, _org, probe) = clean_msp("notify-bad").await;
    let notifier = env.notifier().await;
    let to = inboxes("bad", 1);
    assert_eq!(
        set_notify(&env, json!({"emails": to, "on": "always"}))
            .await
            .status,
        200
    );
    let before = env.connector(CH).await;
    let eleven: Vec<String> = inboxes("eleven", 11);
    for bad in [
        json!({"emails": eleven}),
        json!({"emails": ["admin@msp.example", "not an address"]}),
        json!({"emails": ["Admin <admin@msp.example>"]}),
        json!({"emails": ["admin@msp.example\r\nBcc: x@evil.example"]}),
        json!({"emails": "admin@msp.example"}),
        json!({"emails": [to[0]], "on": "sometimes"}),
    ] {
        let r = set_notify(&env, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert_eq!(r.code(), "invalid_settings", "{bad}");
    }
    assert_eq!(env.connector(CH).await, before, "nothing changed");
    scheduled_run(&env, "2026-11-24T05:00:00Z").await;
    let event = finished_events(&env, &probe, 1).await.remove(0);
    assert_eq!(
        sent(deliver(&notifier, &event, "x").await),
        Notice::Sent { recipients: 1 }
    );
    assert_eq!(env.emails_to(&to[0]).await.len(), 1);
}

#[tokio::test]
async fn a_new_connector_emails_its_creator_and_psa_tickets_are_in_the_email() {
    let mut env = TestEnv::start("notify-creator").await;
    let children = fixture(24);
    seed(&env, &children).await;
    let org = env.sim.create_organization("Acme MSP");
    let me = inboxes("creator", 1).remove(0);
    let mut admin = Claims::admin(CH);
    admin.email = Some(me.clone());
    let body = json!({"type": "gradient", "apiToken": org.partner_key}).to_string();
    let r = env
        .call("POST", "/v1/psa/connectors", Some(&admin), Some(&body))
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["settings"]["notify"]["emails"], json!([me]));
    let probe = env.enable_events().await;
    let notifier = env.notifier().await;
    verify_sender(&env, "psa-notify@coro.example").await;

    // Everything mapped but one service of one account, alerts on: the run raises a ticket.
    let ids = service_ids(&env).await;
    let pairs = expected_pairs(&children);
    let (acc, key) = pairs.keys().next().unwrap().clone();
    let except = [gradient_sim::Pair::new(acc.clone(), ids[&key].clone())];
    assert!(env.sim.map_all(&org.organization_id, &except));
    sync_and_wait(&env).await; // accepts counts for the account: it is billed through the PSA
    let r = env
        .call(
            "PATCH",
            "/v1/psa/connectors/gradient",
            Some(&Claims::admin(CH)),
            Some(r#"{"settings": {"psaAlerts": true}}"#),
        )
        .await;
    assert_eq!(r.status, 200);
    let mut moved = children.clone();
    for c in moved.iter_mut() {
        c.users += 1;
    }
    seed(&env, &moved).await;
    sync_and_wait(&env).await;
    let events = finished_events(&env, &probe, 2).await;
    assert_eq!(events.len(), 2);
    for e in &events {
        assert!(matches!(
            sent(deliver(&notifier, e, "y").await),
            Notice::Sent { .. }
        ));
    }
    let mail = env.emails_to(&me).await;
    assert_eq!(mail.len(), 2, "both runs had an unmapped service");
    let name = &children.iter().find(|c| c.id == acc).unwrap().name;
    assert!(
        mail[1].html.contains("PSA tickets about unmapped services"),
        "{}",
        mail[1].html
    );
    assert!(
        mail[1].html.contains(&format!("<li>{name}: ticket ")),
        "{}",
        mail[1].html
    );
    assert!(mail[1].html.contains(" created in your PSA</li>"));
    assert!(!mail[0].html.contains("PSA tickets"), "alerts were off");
}

#[tokio::test]
async fn an_event_that_is_not_a_finished_run_is_dropped() {
    let env = TestEnv::start("notify-foreign").await;
    let notifier = env.notifier().await;
    let mut other = scheduled_event();
    match deliver(&notifier, &other, "z").await {
        Ok(Handled::Ignored { ignored }) => assert!(ignored.contains("not a"), "{ignored}"),
        h => panic!("{h:?}"),
    }
    other["source"] = json!("coro.psa");
    other["detail-type"] = json!("PSA Sync Finished");
    other["detail"] = json!({"workspaceId": "a#b", "connectorId": "gradient", "runId": "r"});
    assert!(matches!(
        deliver(&notifier, &other, "z").await,
        Ok(Handled::Ignored { .. })
    ));
    // A well-formed event about a run nobody has: nothing to do, no error (no retries).
    other["detail"] = json!({
        "workspaceId": CH, "connectorId": "gradient", "runId": "20261124T050000.000Z-none"
    });
    assert_eq!(
        sent(deliver(&notifier, &other, "z").await),
        Notice::NoConnector
    );
}
