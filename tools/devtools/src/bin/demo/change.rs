//! Chapters 8 to 11: the subscriptions change in Coro, the usage view says what the next sync
//! would send, the second sync posts only that, and the MSP maps the new account.

use crate::connect::Story;
use crate::first_sync::FirstSync;
use crate::msp::{CHANNEL, Child, SUBCHANNEL, expected, items, short};
use crate::print::{heading, usage_table};
use crate::views::{check_summary, pair, readings_view, usage_view};
use crate::worker::{check, counts, print_counts, sync};
use crate::{Failed, Step, expect};
use gradient_sim::Pair;
use harness::Claims;
use psa_domain::catalogue::Unit;
use serde_json::Value;
use std::collections::BTreeSet;

/// The second and third runs.
pub struct Change {
    pub run2: Value,
    pub run3: Value,
}

pub async fn chapters(story: &mut Story, first: &FirstSync) -> Step<Change> {
    let Story {
        env,
        catalogue,
        children,
        org_id,
        id_of,
        reported,
        unmapped,
        ..
    } = story;
    let reported = *reported;
    let (want1, unmapped1, mapped1) = (&first.want, first.unmapped, first.mapped);
    heading("8. The subscriptions change in Coro");
    let dis = children
        .iter()
        .position(|c| {
            c.reported()
                && c.services
                    .iter()
                    .any(|s| !unmapped.contains(&(c.id.clone(), s.to_string())))
        })
        .ok_or_else(|| Failed("no child with a mapped service".into()))?;
    let disabled = children[dis]
        .services
        .iter()
        .find(|s| !unmapped.contains(&(children[dis].id.clone(), s.to_string())))
        .map(|s| s.to_string())
        .unwrap_or_default();
    children[dis].services.retain(|s| *s != disabled);
    println!(
        "{}: {} disabled",
        children[dis].name,
        catalogue.get(&disabled).map_or("?", |s| s.name.as_str())
    );
    let grow = (dis + 1..children.len())
        .find(|&i| {
            let c = &children[i];
            c.reported()
                && !unmapped.contains(&(c.id.clone(), c.services[0].to_string()))
                && c.services
                    .iter()
                    .any(|s| catalogue.get(s).map(|s| s.unit) == Some(Unit::ProtectedUsers))
        })
        .ok_or_else(|| Failed("no child to grow".into()))?;
    children[grow].users += 5;
    println!(
        "{}: protected users {} → {}",
        children[grow].name,
        children[grow].users - 5,
        children[grow].users
    );
    let ren = (grow + 1..children.len())
        .find(|&i| children[i].reported())
        .ok_or_else(|| Failed("no child to rename".into()))?;
    let old_name = children[ren].name.clone();
    children[ren].name = format!("{old_name} & Partners");
    println!("{old_name}: renamed to {}", children[ren].name);
    let new = Child {
        id: format!("{CHANNEL}_new"),
        parent: SUBCHANNEL,
        name: "Northwind Traders".into(),
        status: "trial",
        services: vec!["EDR", "EMAIL_SECURITY"],
        users: 9,
        devices: 11,
    };
    println!(
        "{}: new {} workspace under Acme West ({})",
        new.name,
        new.status,
        new.services.join(", ")
    );
    children.push(new.clone());
    env.seed_workspaces(&items(children)).await;
    let before = env.sim.organization(org_id).expect("org");
    let want2 = expected(catalogue, children);
    let changed: Vec<(String, String)> = want2
        .iter()
        .filter(|(k, v)| !unmapped.contains(*k) && want1.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .filter(|(a, _)| *a != new.id)
        .collect();
    let unmapped2 = unmapped1 + new.services.len() as u64;

    heading("9. Usage after the change: what the next sync would send");
    let (u2, _) = usage_view(env).await?;
    let would2 = changed.len() as u64 + unmapped2;
    check_summary(
        "usage after the change",
        &u2,
        &[
            ("accounts", reported as u64 + 1),
            ("lines", want2.len() as u64 + 1),
            ("inSync", mapped1 - changed.len() as u64 - 1),
            ("pending", changed.len() as u64),
            ("new", new.services.len() as u64),
            ("unmapped", unmapped1),
            ("failed", 0),
            ("disabled", 1),
            ("wouldPost", would2),
        ],
        false,
    )?;
    let pending = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage?state=pending&limit=5",
            Some(&Claims::viewer(CHANNEL)),
            None,
        )
        .await;
    expect("usage state=pending", &pending, 200)?;
    let pending_lines = pending.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!("GET …/usage?state=pending&limit=5 → {}", pending.status);
    usage_table(&pending_lines);
    let disabled_line = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage?state=disabled",
            Some(&Claims::viewer(CHANNEL)),
            None,
        )
        .await;
    expect("usage state=disabled", &disabled_line, 200)?;
    let disabled_lines = disabled_line.json()["items"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    println!("GET …/usage?state=disabled → {}", disabled_line.status);
    usage_table(&disabled_lines);
    let want_pending: BTreeSet<(String, String)> = changed.iter().cloned().collect();
    let got_pending: BTreeSet<(String, String)> = pending_lines.iter().map(pair).collect();
    if pending_lines.len() != changed.len().min(5) || !got_pending.is_subset(&want_pending) {
        return Err(Failed(format!(
            "pending lines {got_pending:?}, expected (up to 5 of) {want_pending:?}"
        )));
    }
    let want_disabled = (children[dis].id.clone(), disabled.clone());
    if disabled_lines.len() != 1
        || pair(&disabled_lines[0]) != want_disabled
        || !disabled_lines[0]["current"].is_null()
    {
        return Err(Failed(format!(
            "disabled lines {disabled_lines:?}, expected {want_disabled:?} with current null"
        )));
    }

    heading("10. Second sync: only what changed is posted");
    let run2 = sync(env, org_id, changed.len() as u64 + unmapped2).await?;
    let c2 = counts(&run2);
    print_counts(&run2);
    check(
        "second sync",
        &c2,
        &[
            ("readings", want2.len() as u64 + 1),
            ("posted", changed.len() as u64),
            (
                "unchanged",
                (want2.len() - changed.len()) as u64 - unmapped2,
            ),
            ("unmapped", unmapped2),
            ("skippedDisabled", 1),
            ("failed", 0),
            ("accountsCreated", 1),
            ("accountsRenamed", 1),
        ],
    )?;
    println!(
        "usage said wouldPost {would2}; the run sent {} (posted {} + unmapped {})",
        c2["posted"] + c2["unmapped"],
        c2["posted"],
        c2["unmapped"]
    );
    if c2["posted"] + c2["unmapped"] != would2 {
        return Err(Failed("the usage preview did not match the run".into()));
    }
    readings_view(
        env,
        &run2,
        &[
            ("outcome=posted", Some(changed.len() as u64)),
            ("outcome=skipped_disabled", Some(1)),
        ],
    )
    .await?;
    let after = env.sim.organization(org_id).expect("org");
    let dis_id = &id_of[&disabled];
    let acc = &children[dis].id;
    let (b, a) = (
        before.count(acc, dis_id).map(|r| r.unit_count),
        after.count(acc, dis_id),
    );
    println!(
        "disabled: {} / {} still holds {} in Gradient ({} count received, none since)",
        children[dis].name,
        short(&disabled),
        a.map_or("nothing".into(), |r| r.unit_count.to_string()),
        a.map_or(0, |r| r.history.len())
    );
    if a.map(|r| r.unit_count) != b || a.map(|r| r.history.len()) != Some(1) {
        return Err(Failed(
            "the disabled service's count changed in Gradient".into(),
        ));
    }
    for (acc, key) in &changed {
        let got = after.count(acc, &id_of[key]).map(|r| r.unit_count);
        let name = children
            .iter()
            .find(|c| &c.id == acc)
            .map_or(acc.as_str(), |c| c.name.as_str());
        println!(
            "changed:  {name} / {} {} → {}",
            short(key),
            want1.get(&(acc.clone(), key.clone())).copied().unwrap_or(0),
            got.map_or("nothing".into(), |n| n.to_string())
        );
        if got != want2.get(&(acc.clone(), key.clone())).copied() {
            return Err(Failed(format!("{acc}/{key} not updated in Gradient")));
        }
    }
    let renamed = after.accounts.iter().find(|a| a.id == children[ren].id);
    println!(
        "renamed:  account {} is now \"{}\" in Gradient",
        children[ren].id,
        renamed.map_or("?", |a| a.name.as_str())
    );
    if renamed.map(|a| a.name.as_str()) != Some(children[ren].name.as_str()) {
        return Err(Failed("the account was not renamed in Gradient".into()));
    }
    let new_pairs: Vec<Pair> = new
        .services
        .iter()
        .map(|s| Pair::new(new.id.clone(), id_of[*s].clone()))
        .collect();
    let held_new = new_pairs
        .iter()
        .filter(|p| after.count(&p.account_id, &p.service_id).is_some())
        .count();
    let created = after.accounts.iter().any(|a| a.id == new.id);
    println!(
        "new:      account {} \"{}\" {} in Gradient, {} of its {} readings held (not mapped yet)",
        new.id,
        new.name,
        if created { "created" } else { "MISSING" },
        held_new,
        new_pairs.len()
    );
    if !created || held_new != 0 {
        return Err(Failed("the new account is not as expected".into()));
    }

    heading("11. The MSP maps the new account; the next sync posts just those");
    if !env.sim.set_mappings(org_id, &new_pairs, true) {
        return Err(Failed("the simulator did not map the new pairs".into()));
    }
    let run3 = sync(env, org_id, new_pairs.len() as u64 + unmapped1).await?;
    print_counts(&run3);
    check(
        "third sync",
        &counts(&run3),
        &[
            ("posted", new_pairs.len() as u64),
            ("unmapped", unmapped1),
            ("failed", 0),
        ],
    )?;
    let o = env.sim.organization(org_id).expect("org");
    println!(
        "Gradient now holds for {}: {}",
        new.name,
        new.services
            .iter()
            .map(|s| format!(
                "{}={}",
                short(s),
                o.count(&new.id, &id_of[*s])
                    .map_or("-".into(), |r| r.unit_count.to_string())
            ))
            .collect::<Vec<_>>()
            .join(" ")
    );
    Ok(Change { run2, run3 })
}
