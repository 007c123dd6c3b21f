//! Chapters 4 to 7: the first on-demand sync by the real worker, the run's readings, what
//! Gradient holds then, and the usage reconciliation with its CSV export.

use crate::connect::Story;
use crate::email::notify;
use crate::msp::{SHORT, expected, short};
use crate::print::{heading, table};
use crate::views::{check_summary, readings_view, usage_view};
use crate::worker::{check, counts, print_counts, sync};
use crate::{Failed, Step, expect};
use harness::mail::SentEmail;
use std::collections::BTreeMap;

/// What the first sync left: what Coro reports, how much of it is unmapped, the run's id and the
/// email its admin received.
pub struct FirstSync {
    pub want: BTreeMap<(String, String), u64>,
    pub unmapped: u64,
    pub mapped: u64,
    pub run_id: String,
    pub email: SentEmail,
}

pub async fn chapters(story: &Story) -> Step<FirstSync> {
    let Story {
        env,
        events,
        notifier,
        admin,
        catalogue,
        children,
        org_id,
        id_of,
        key_of,
        reported,
        unmapped,
        ..
    } = story;
    let reported = *reported;
    heading("4. On-demand sync: POST /v1/psa/connectors/gradient/sync, then the sync worker");
    let want1 = expected(catalogue, children);
    let unmapped1 = want1.keys().filter(|k| unmapped.contains(*k)).count() as u64;
    println!("Before the first run, the usage preview: every pair new, all of them to be sent");
    let (u0, _) = usage_view(env).await?;
    check_summary(
        "usage before the first sync",
        &u0,
        &[
            ("accounts", reported as u64),
            ("lines", want1.len() as u64),
            ("new", want1.len() as u64),
            ("wouldPost", want1.len() as u64),
        ],
        true,
    )?;
    let run1 = sync(env, org_id, want1.len() as u64).await?;
    let c1 = counts(&run1);
    print_counts(&run1);
    check(
        "first sync",
        &c1,
        &[
            ("readings", want1.len() as u64),
            ("posted", want1.len() as u64 - unmapped1),
            ("unmapped", unmapped1),
            ("unchanged", 0),
            ("skippedDisabled", 0),
            ("failed", 0),
        ],
    )?;

    heading("5. The run's readings: GET …/syncs/{runId}/readings (one per account × service)");
    let run1_id = run1["runId"].as_str().unwrap_or_default().to_string();
    let email = notify(env, events, notifier, &run1_id).await?;
    readings_view(
        env,
        &run1,
        &[
            ("limit=3", None),
            ("outcome=unmapped&limit=4", Some(unmapped1)),
        ],
    )
    .await?;

    heading("6. What Gradient holds now (latest unit count per account × service)");
    let o = env.sim.organization(org_id).expect("org");
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut records: Vec<_> = o.counts.iter().collect();
    let rank = |id: &str| {
        let key = key_of.get(id).map_or("?", String::as_str);
        SHORT
            .iter()
            .position(|(k, _)| *k == key)
            .unwrap_or(SHORT.len())
    };
    records.sort_by_key(|r| rank(&r.service_id));
    for rec in records {
        let key = key_of.get(&rec.service_id).map_or("?", String::as_str);
        held.entry(rec.account_id.clone())
            .or_default()
            .push(format!("{}={}", short(key), rec.unit_count));
    }
    table(
        &["account", "name", "services → count"],
        o.accounts.iter().map(|a| {
            let cells = held.get(&a.id).map_or_else(
                || "(nothing mapped yet: every reading answered 404)".to_string(),
                |v| v.join(" "),
            );
            vec![a.id.clone(), a.name.clone(), cells]
        }),
    );
    println!(
        "(UDG user data governance, SAT security awareness training, EDG endpoint data \
         governance, MDM mobile device management, SWG secure web gateway)"
    );
    println!(
        "{} counts held, {} readings answered 404 (unmapped pair)",
        o.counts.len(),
        o.not_found_counts.len()
    );
    for ((acc, key), n) in &want1 {
        let got = o.count(acc, &id_of[key]).map(|r| r.unit_count);
        let ok = if unmapped.contains(&(acc.clone(), key.clone())) {
            got.is_none()
        } else {
            got == Some(*n)
        };
        if !ok {
            return Err(Failed(format!(
                "Gradient holds {got:?} for {acc}/{key}, expected {n}"
            )));
        }
    }

    heading("7. Usage: GET /v1/psa/connectors/gradient/usage (reconciliation, no Gradient call)");
    let (u1, _) = usage_view(env).await?;
    let mapped1 = want1.len() as u64 - unmapped1;
    check_summary(
        "usage after the first sync",
        &u1,
        &[
            ("accounts", reported as u64),
            ("lines", want1.len() as u64),
            ("inSync", mapped1),
            ("pending", 0),
            ("new", 0),
            ("unmapped", unmapped1),
            ("failed", 0),
            ("disabled", 0),
            ("wouldPost", unmapped1),
        ],
        false,
    )?;
    if u1["lastSync"]["runId"] != run1["runId"] {
        return Err(Failed(format!("usage lastSync is not run 1: {u1}")));
    }
    println!("(unmapped pairs are sent again every run, until the MSP maps them)");
    let csv = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage?format=csv",
            Some(admin),
            None,
        )
        .await;
    expect("usage export", &csv, 200)?;
    let lines: Vec<&str> = csv.body.lines().collect();
    println!(
        "GET …/usage?format=csv → {} ({}), {} lines, {} bytes; the first three:",
        csv.status,
        csv.header("content-disposition").unwrap_or_default(),
        lines.len(),
        csv.body.len()
    );
    for l in lines.iter().take(3) {
        println!("  {l}");
    }
    if lines.len() != want1.len() + 1 {
        return Err(Failed(format!(
            "the export has {} lines, expected {} and a header",
            lines.len() - 1,
            want1.len()
        )));
    }
    Ok(FirstSync {
        want: want1,
        unmapped: unmapped1,
        mapped: mapped1,
        run_id: run1_id,
        email,
    })
}
