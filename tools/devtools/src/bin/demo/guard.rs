//! Chapter 11b: a broken upstream refresh zeroes most customers; the billing guard holds the
//! run, the admin looks at the held readings, and the numbers come back.

use crate::connect::Story;
use crate::first_sync::FirstSync;
use crate::msp::{CHANNEL, Child, items};
use crate::print::{cell, heading, table};
use crate::views::usage_view;
use crate::worker::{check, counts, print_counts, sync, sync_ending};
use crate::{Failed, Step, expect};
use harness::Claims;
use serde_json::Value;

/// The held run and the run after the fix.
pub struct Held {
    pub held_id: String,
    pub back: Value,
}

pub async fn chapter(story: &Story, first: &FirstSync) -> Step<Held> {
    let Story {
        env,
        children,
        org_id,
        ..
    } = story;
    let unmapped1 = first.unmapped;
    heading(
        "11b. A broken upstream refresh zeroes most customers: the billing guard holds the sync",
    );
    let settings = env.connector(CHANNEL).await["settings"].clone();
    println!("connector settings: {settings}");
    let broken: Vec<Child> = children
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut c = c.clone();
            if i % 4 != 0 {
                c.users = 0;
                c.devices = 0;
            }
            c
        })
        .collect();
    env.seed_workspaces(&items(&broken)).await;
    let (summary, _) = usage_view(env).await?;
    let g = &summary["guard"];
    println!(
        "usage before the night run: guard before {} → after {} (drop {} %), wouldHold {}",
        g["before"], g["after"], g["dropPercent"], g["wouldHold"]
    );
    if g["wouldHold"] != true {
        return Err(Failed(format!("the usage view does not warn: {g}")));
    }
    let before_counts = env.sim.organization(org_id).expect("org").counts;
    let held = sync_ending(env, org_id, 0, "held").await?;
    print_counts(&held);
    println!("reason: {}", held["reason"].as_str().unwrap_or("?"));
    let hc = counts(&held);
    check("held sync", &hc, &[("posted", 0), ("failed", 0)])?;
    if hc["held"] == 0 || env.sim.organization(org_id).expect("org").counts != before_counts {
        return Err(Failed(
            "the held run posted something, or held nothing".into(),
        ));
    }
    let held_id = held["runId"].as_str().unwrap_or("?").to_string();
    let r = env
        .call(
            "GET",
            &format!("/v1/psa/connectors/gradient/syncs/{held_id}/readings?outcome=held&limit=5"),
            Some(&Claims::viewer(CHANNEL)),
            None,
        )
        .await;
    expect("held readings", &r, 200)?;
    println!(
        "the admin looks at the held readings (first 5 of {}):",
        hc["held"]
    );
    table(
        &["account", "service", "value", "previous", "outcome"],
        r.json()["items"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|i| {
                vec![
                    cell(&i["accountId"]),
                    cell(&i["service"]),
                    cell(&i["value"]),
                    cell(&i["previous"]),
                    cell(&i["outcome"]),
                ]
            }),
    );
    println!("…the platform team fixes the refresh; the numbers come back:");
    env.seed_workspaces(&items(children)).await;
    let back = sync(env, org_id, unmapped1).await?;
    print_counts(&back);
    check(
        "sync after the fix",
        &counts(&back),
        &[("posted", 0), ("held", 0), ("failed", 0)],
    )?;
    println!("nothing was ever billed wrong: Gradient still holds the last good counts");
    Ok(Held { held_id, back })
}
