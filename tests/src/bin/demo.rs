//! `make demo`: the product's main job end to end on the local stack, printed as plain text.
//!
//! A sample MSP on the Coro side (channel "Acme MSP", subchannel "Acme West", 50 child workspaces
//! with mixed subscriptions and statuses) and its organization in the Gradient simulator. Through
//! the real HTTP handler: connect, an on-demand sync run by the real worker (with a progress bar),
//! what Gradient then holds; a subscription change and a second sync that posts only what changed;
//! mapping the new account; the token lifecycle; disconnect. Along the way, the views an MSP
//! looks at: a run's readings (with the unmapped ones), the usage reconciliation before and after
//! the change, and at the end the audit trail and the email the MSP's admin received about the
//! first sync (sent by the real notifier through moto's SES). Exits non-zero as soon as a step
//! answers an unexpected status or count.

use gradient_sim::Pair;
use psa_domain::Catalogue;
use psa_domain::catalogue::Unit;
use psa_store::WorkspaceItem;
use psa_tests::{ApiResponse, Claims, TestEnv, workspace};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const CHANNEL: &str = "acme_msp";
const SUBCHANNEL: &str = "acme_west";
const CHILDREN: usize = 50;

/// Service bundles the sample customers buy (catalogue keys); each child gets one, plus extras.
const BUNDLES: &[&[&str]] = &[
    &["EMAIL_SECURITY", "CLOUD_SECURITY", "INBOUND_GATEWAY"],
    &["ENDPOINT_SECURITY", "EDR", "NETWORK"],
    &[
        "EMAIL_SECURITY",
        "ENDPOINT_SECURITY",
        "SECURITY_AWARENESS_TRAINING",
        "EMAIL_ENCRYPTION",
    ],
    &[
        "CLOUD_SECURITY",
        "USER_DATA_GOVERNANCE",
        "MOBILE_DEVICE_MANAGEMENT",
        "ZTNA",
    ],
    &[
        "EDR",
        "ENDPOINT_DATA_GOVERNANCE",
        "WIFI_PHISHING",
        "SECURE_WEB_GATEWAY",
        "NETWORK",
    ],
];

/// Short column labels for the compact tables.
const SHORT: &[(&str, &str)] = &[
    ("CLOUD_SECURITY", "Cloud"),
    ("EMAIL_SECURITY", "Email"),
    ("USER_DATA_GOVERNANCE", "UDG"),
    ("SECURITY_AWARENESS_TRAINING", "SAT"),
    ("ENDPOINT_SECURITY", "Endpoint"),
    ("EDR", "EDR"),
    ("ENDPOINT_DATA_GOVERNANCE", "EDG"),
    ("MOBILE_DEVICE_MANAGEMENT", "MDM"),
    ("NETWORK", "Network"),
    ("INBOUND_GATEWAY", "Inbound"),
    ("EMAIL_ENCRYPTION", "Encrypt"),
    ("WIFI_PHISHING", "WiFi"),
    ("SECURE_WEB_GATEWAY", "SWG"),
    ("ZTNA", "ZTNA"),
];

const TOWNS: &[&str] = &[
    "Alpine",
    "Bayside",
    "Cedar",
    "Delta",
    "Evergreen",
    "Granite",
    "Harbor",
    "Maple",
    "Redwood",
    "Summit",
];
const TRADES: &[&str] = &["Dental", "Law Group", "Bakery", "Logistics", "Clinic"];

/// Children whose every pair the MSP has not mapped yet in Synthesize.
const UNMAPPED_CHILDREN: &[usize] = &[12, 27];
/// A service the MSP has not mapped for anyone yet.
const UNMAPPED_SERVICE: &str = "ZTNA";

/// A managed workspace of the demo MSP.
#[derive(Clone, Debug)]
struct Child {
    id: String,
    parent: &'static str,
    name: String,
    status: &'static str,
    services: Vec<&'static str>,
    users: u64,
    devices: u64,
}

impl Child {
    fn reported(&self) -> bool {
        matches!(self.status, "trial" | "subscription")
    }
}

fn fixture() -> Vec<Child> {
    (0..CHILDREN)
        .map(|i| {
            let mut services: Vec<&'static str> = BUNDLES[i % BUNDLES.len()].to_vec();
            for (every, extra) in [(7, "SECURITY_AWARENESS_TRAINING"), (6, "EDR")] {
                if i % every == 0 && !services.contains(&extra) {
                    services.push(extra);
                }
            }
            Child {
                id: format!("{CHANNEL}_c{i:02}"),
                parent: if i < 35 { CHANNEL } else { SUBCHANNEL },
                name: format!("{} {}", TOWNS[i % TOWNS.len()], TRADES[i / TOWNS.len()]),
                status: match i {
                    7 | 23 | 38 => "inactive",
                    15 | 44 => "archived",
                    _ if i % 9 == 4 => "trial",
                    _ => "subscription",
                },
                services,
                users: 5 + (i as u64 * 37) % 140,
                devices: 3 + (i as u64 * 53) % 120,
            }
        })
        .collect()
}

fn items(children: &[Child]) -> Vec<WorkspaceItem> {
    let mut items = vec![
        workspace(
            CHANNEL,
            None,
            "channel",
            "Acme MSP",
            "subscription",
            &[],
            0,
            0,
        ),
        workspace(
            SUBCHANNEL,
            Some(CHANNEL),
            "channel",
            "Acme West",
            "subscription",
            &[],
            0,
            0,
        ),
    ];
    items.extend(children.iter().map(|c| {
        workspace(
            &c.id,
            Some(c.parent),
            "child",
            &c.name,
            c.status,
            &c.services,
            c.users,
            c.devices,
        )
    }));
    items
}

/// What Coro should report: (account, service key) → count, for trial/subscription children.
fn expected(catalogue: &Catalogue, children: &[Child]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for c in children.iter().filter(|c| c.reported()) {
        for s in &c.services {
            let n = match catalogue.get(s).map(|s| s.unit) {
                Some(Unit::ProtectedUsers) => c.users,
                _ => c.devices,
            };
            out.insert((c.id.clone(), s.to_string()), n);
        }
    }
    out
}

fn short(key: &str) -> &str {
    SHORT
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, s)| s)
}

struct Failed(String);

type Step<T = ()> = Result<T, Failed>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => {
            println!("\nDemo finished: every step answered as expected.");
            ExitCode::SUCCESS
        }
        Err(Failed(why)) => {
            eprintln!("\nDEMO FAILED: {why}");
            ExitCode::FAILURE
        }
    }
}

/// The admin who connects (the `email` claim): the default recipient of the sync emails.
const ADMIN_EMAIL: &str = "it-admin@acme-msp.example";

async fn run() -> Step {
    let mut env = TestEnv::start("demo").await;
    let events = env.enable_events().await;
    let notifier = env.notifier().await;
    let mut admin = Claims::admin(CHANNEL);
    admin.email = Some(ADMIN_EMAIL.into());
    let catalogue = Catalogue::builtin();

    heading("1. Coro side: channel \"Acme MSP\", subchannel \"Acme West\", 50 child workspaces");
    let mut children = fixture();
    env.seed_workspaces(&items(&children)).await;
    let mut by_status: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &children {
        *by_status.entry(c.status).or_default() += 1;
    }
    println!(
        "statuses: {}  (only trial and subscription are reported)",
        by_status
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    workspaces_table(&children);

    heading("2. Connect: POST /v1/psa/connectors with the MSP's Gradient API token");
    let org = env.sim.create_organization("Acme MSP");
    let org_id = org.organization_id.clone();
    let body = serde_json::json!({"type": "gradient", "apiToken": org.partner_key}).to_string();
    let r = env
        .call("POST", "/v1/psa/connectors", Some(&admin), Some(&body))
        .await;
    expect("connect", &r, 201)?;
    let o = env.sim.organization(&org_id).expect("org");
    let vendor_services = env.sim.state().vendor.services;
    println!(
        "HTTP {}  Location {}  → Gradient: integration {}, {} services, {} accounts",
        r.status,
        r.header("location").unwrap_or_default(),
        o.status,
        vendor_services.len(),
        o.accounts.len()
    );
    // Catalogue key ↔ Gradient service id, through the names the MSP sees in Synthesize.
    let mut id_of: BTreeMap<String, String> = BTreeMap::new();
    for s in catalogue.iter() {
        let name = s.gradient_name();
        let svc = vendor_services
            .iter()
            .find(|v| v.name == name)
            .ok_or_else(|| Failed(format!("no Gradient service named {name}")))?;
        id_of.insert(s.key.clone(), svc.id.clone());
    }
    let key_of: BTreeMap<String, String> =
        id_of.iter().map(|(k, v)| (v.clone(), k.clone())).collect();
    let reported = children.iter().filter(|c| c.reported()).count();
    if o.accounts.len() != reported {
        return Err(Failed(format!(
            "{} accounts in Gradient, expected {reported}",
            o.accounts.len()
        )));
    }

    heading("3. The MSP maps accounts × services to agreements in Synthesize (not all yet)");
    let mut unmapped: BTreeSet<(String, String)> = BTreeSet::new();
    for c in children.iter().filter(|c| c.reported()) {
        for key in catalogue.iter().map(|s| s.key.as_str()) {
            let idx: usize = c.id[c.id.len() - 2..].parse().unwrap_or(0);
            if UNMAPPED_CHILDREN.contains(&idx) || key == UNMAPPED_SERVICE {
                unmapped.insert((c.id.clone(), key.to_string()));
            }
        }
    }
    let except: Vec<Pair> = unmapped
        .iter()
        .map(|(a, k)| Pair::new(a.clone(), id_of[k].clone()))
        .collect();
    if !env.sim.map_all(&org_id, &except) {
        return Err(Failed("the simulator did not map the pairs".into()));
    }
    let o = env.sim.organization(&org_id).expect("org");
    let names: Vec<String> = UNMAPPED_CHILDREN
        .iter()
        .map(|i| children[*i].name.clone())
        .collect();
    println!(
        "{} pairs mapped; left unmapped: every pair of {} and {UNMAPPED_SERVICE} for everyone",
        o.mappings.len(),
        names.join(" and ")
    );

    heading("4. On-demand sync: POST /v1/psa/connectors/gradient/sync, then the sync worker");
    let want1 = expected(&catalogue, &children);
    let unmapped1 = want1.keys().filter(|k| unmapped.contains(*k)).count() as u64;
    println!("Before the first run, the usage preview: every pair new, all of them to be sent");
    let (u0, _) = usage_view(&env).await?;
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
    let run1 = sync(&env, &org_id, want1.len() as u64).await?;
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
    let email = notify(&env, &events, &notifier, &run1_id).await?;
    readings_view(
        &env,
        &run1,
        &[
            ("limit=3", None),
            ("outcome=unmapped&limit=4", Some(unmapped1)),
        ],
    )
    .await?;

    heading("6. What Gradient holds now (latest unit count per account × service)");
    let o = env.sim.organization(&org_id).expect("org");
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
    let (u1, _) = usage_view(&env).await?;
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
            Some(&admin),
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
    env.seed_workspaces(&items(&children)).await;
    let before = env.sim.organization(&org_id).expect("org");
    let want2 = expected(&catalogue, &children);
    let changed: Vec<(String, String)> = want2
        .iter()
        .filter(|(k, v)| !unmapped.contains(*k) && want1.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .filter(|(a, _)| *a != new.id)
        .collect();
    let unmapped2 = unmapped1 + new.services.len() as u64;

    heading("9. Usage after the change: what the next sync would send");
    let (u2, _) = usage_view(&env).await?;
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
    let run2 = sync(&env, &org_id, changed.len() as u64 + unmapped2).await?;
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
        &env,
        &run2,
        &[
            ("outcome=posted", Some(changed.len() as u64)),
            ("outcome=skipped_disabled", Some(1)),
        ],
    )
    .await?;
    let after = env.sim.organization(&org_id).expect("org");
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
    if !env.sim.set_mappings(&org_id, &new_pairs, true) {
        return Err(Failed("the simulator did not map the new pairs".into()));
    }
    let run3 = sync(&env, &org_id, new_pairs.len() as u64 + unmapped1).await?;
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
    let o = env.sim.organization(&org_id).expect("org");
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
    let (summary, _) = usage_view(&env).await?;
    let g = &summary["guard"];
    println!(
        "usage before the night run: guard before {} → after {} (drop {} %), wouldHold {}",
        g["before"], g["after"], g["dropPercent"], g["wouldHold"]
    );
    if g["wouldHold"] != true {
        return Err(Failed(format!("the usage view does not warn: {g}")));
    }
    let before_counts = env.sim.organization(&org_id).expect("org").counts;
    let held = sync_ending(&env, &org_id, 0, "held").await?;
    print_counts(&held);
    println!("reason: {}", held["reason"].as_str().unwrap_or("?"));
    let hc = counts(&held);
    check("held sync", &hc, &[("posted", 0), ("failed", 0)])?;
    if hc["held"] == 0 || env.sim.organization(&org_id).expect("org").counts != before_counts {
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
    env.seed_workspaces(&items(&children)).await;
    let back = sync(&env, &org_id, unmapped1).await?;
    print_counts(&back);
    check(
        "sync after the fix",
        &counts(&back),
        &[("posted", 0), ("held", 0), ("failed", 0)],
    )?;
    println!("nothing was ever billed wrong: Gradient still holds the last good counts");

    heading("12. Token lifecycle: a wrong token, then a regenerated key");
    let r = env.retoken(CHANNEL, "gr-not-a-real-partner-key-0000").await;
    println!(
        "PUT …/token with an unknown token → {} {}",
        r.status,
        r.code()
    );
    expect("bad token", &r, 422)?;
    let new_key = env
        .sim
        .regenerate_key(&org_id)
        .ok_or_else(|| Failed("the simulator did not regenerate the key".into()))?;
    let r = env.retoken(CHANNEL, &org.partner_key).await;
    println!(
        "PUT …/token with the old key after regeneration → {} {}",
        r.status,
        r.code()
    );
    expect("old key after regeneration", &r, 422)?;
    let r = env.retoken(CHANNEL, &new_key).await;
    println!(
        "PUT …/token with the new key → {} (status {}, tokenHint {})",
        r.status,
        r.json()["status"].as_str().unwrap_or("?"),
        r.json()["tokenHint"].as_str().unwrap_or("?")
    );
    expect("re-token", &r, 200)?;
    println!("(an organization backs one connector in the whole deployment)");
    env.seed_workspaces(&[workspace(
        "other_msp",
        None,
        "channel",
        "Other MSP",
        "subscription",
        &[],
        0,
        0,
    )])
    .await;
    let stolen = env
        .sim
        .add_key(&org_id)
        .ok_or_else(|| Failed("no second key".into()))?;
    let r = env.connect("other_msp", &stolen).await;
    println!(
        "another channel workspace connects with a key of Acme's organization → {} {}",
        r.status,
        r.code()
    );
    expect("organization in use", &r, 409)?;

    heading("13. Disconnect: DELETE /v1/psa/connectors/gradient");
    let r = env
        .call("DELETE", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    expect("delete", &r, 204)?;
    let o = env.sim.organization(&org_id).expect("org");
    let g = env
        .call("GET", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    println!(
        "HTTP {} → Gradient integration {}; GET connector → {} {}; token secrets left {}",
        r.status,
        o.status,
        g.status,
        g.code(),
        env.token_secret_names().await.len()
    );
    expect("get after delete", &g, 404)?;
    if o.status != "inactive" {
        return Err(Failed(format!(
            "Gradient status after delete is {}, expected inactive",
            o.status
        )));
    }

    heading("14. Audit trail: GET /v1/psa/audit (admins only; it outlives the connector)");
    let r = env
        .call("GET", "/v1/psa/audit", Some(&Claims::viewer(CHANNEL)), None)
        .await;
    println!("as a viewer → {} {}", r.status, r.code());
    expect("audit as viewer", &r, 403)?;
    let trail = pages(&env, &admin, "/v1/psa/audit", 4).await?;
    println!(
        "as the admin → 200, {} entries (pages of 4), newest first:",
        trail.len()
    );
    table(
        &["at", "actor", "action", "runId", "detail"],
        trail.iter().map(|e| {
            vec![
                e["at"].as_str().unwrap_or("?").chars().take(23).collect(),
                e["actor"].as_str().unwrap_or("?").to_string(),
                e["action"].as_str().unwrap_or("?").to_string(),
                e["runId"].as_str().unwrap_or("").to_string(),
                e["detail"]
                    .as_object()
                    .map(|d| {
                        d.iter()
                            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .unwrap_or_default(),
            ]
        }),
    );
    let user = admin.sub.as_str();
    let runs = [
        run1_id.as_str(),
        run2["runId"].as_str().unwrap_or("?"),
        run3["runId"].as_str().unwrap_or("?"),
        held_id.as_str(),
        back["runId"].as_str().unwrap_or("?"),
    ];
    let mut want: Vec<(&str, &str, Option<&str>)> = vec![("connector.created", user, None)];
    for id in runs {
        want.push(("sync.requested", user, Some(id)));
        if id == held_id {
            want.push(("sync.held", "system", Some(id)));
        }
        want.push(("sync.finished", "system", Some(id)));
    }
    want.push(("connector.token_replaced", user, None));
    want.push(("connector.deleted", user, None));
    want.reverse();
    let got: Vec<(&str, &str, Option<&str>)> = trail
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap_or("?"),
                e["actor"].as_str().unwrap_or("?"),
                e["runId"].as_str(),
            )
        })
        .collect();
    if got != want {
        return Err(Failed(format!("audit trail {got:?}, expected {want:?}")));
    }
    let text = format!("{trail:?}");
    if [org.partner_key.as_str(), new_key.as_str()]
        .iter()
        .any(|k| text.contains(k))
    {
        return Err(Failed("a token appears in the audit trail".into()));
    }

    heading("15. The email the MSP's admin received when the first sync was complete (SES)");
    println!(
        "From: {}\nTo: {}\nSubject: {}\n",
        email.source,
        email.to.join(", "),
        email.subject
    );
    let text = html_text(&email.html);
    println!("{text}");
    if [org.partner_key.as_str(), new_key.as_str()]
        .iter()
        .any(|k| email.html.contains(k))
    {
        return Err(Failed("a token appears in the email".into()));
    }
    Ok(())
}

/// The run's `PSA Sync Finished` event, as the bus's rule delivers it, handed to the real
/// notifier; answers the one email SES accepted for it.
async fn notify(
    env: &TestEnv,
    events: &psa_tests::events::EventProbe,
    notifier: &psa_domain::usecase::notice::Notifier,
    run_id: &str,
) -> Step<psa_tests::mail::SentEmail> {
    let event = events
        .drain(env, 1)
        .await
        .into_iter()
        .find(|e| e["detail-type"] == "PSA Sync Finished" && e["detail"]["runId"] == run_id)
        .ok_or_else(|| Failed(format!("no PSA Sync Finished event for {run_id}")))?;
    let event = serde_json::from_value(event).map_err(|e| Failed(e.to_string()))?;
    let handled = sync_notifier::handle(notifier, event, "demo")
        .await
        .map_err(|e| Failed(format!("the notifier failed: {e}")))?;
    println!(
        "The run's event went to the notifier: {}",
        serde_json::json!(handled)
    );
    let mut mail = env.emails_to(ADMIN_EMAIL).await;
    if mail.len() != 1 {
        return Err(Failed(format!(
            "{} emails to {ADMIN_EMAIL}, expected 1",
            mail.len()
        )));
    }
    Ok(mail.remove(0))
}

/// The HTML part as an admin's mail client shows it, roughly: one line per paragraph, row and
/// list item, entities decoded.
fn html_text(html: &str) -> String {
    let mut out = String::new();
    let mut tag = String::new();
    let mut in_tag = false;
    let mut link = String::new();
    let mut depth = 0usize;
    for c in html.chars() {
        match (in_tag, c) {
            (false, '<') => {
                in_tag = true;
                tag.clear();
            }
            (true, '>') => {
                in_tag = false;
                match tag.split_whitespace().next().unwrap_or("") {
                    "/p" | "/tr" | "table" | "/li" => out.push('\n'),
                    "ul" => {
                        depth += 1;
                        out.push('\n');
                    }
                    "/ul" => depth = depth.saturating_sub(1),
                    "li" => out.push_str(&format!("{}- ", "  ".repeat(depth))),
                    "/td" => out.push_str("  "),
                    "a" => {
                        link = tag
                            .split('"')
                            .nth(1)
                            .unwrap_or_default()
                            .replace("&amp;", "&");
                    }
                    "/a" => out.push_str(&format!(": {link}")),
                    _ => {}
                }
            }
            (true, c) => tag.push(c),
            (false, c) => out.push(c),
        }
    }
    let out = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    out.lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every item of a paged route (`limit` per page), following `nextCursor` until it is absent.
async fn pages(env: &TestEnv, claims: &Claims, path: &str, limit: u32) -> Step<Vec<Value>> {
    let sep = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let mut p = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        let r = env.call("GET", &p, Some(claims), None).await;
        expect(&format!("GET {p}"), &r, 200)?;
        let body = r.json();
        items.extend(body["items"].as_array().cloned().unwrap_or_default());
        match body["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(items),
        }
    }
    Err(Failed(format!("{path}: paging never ended")))
}

fn pair(item: &Value) -> (String, String) {
    (
        item["accountId"].as_str().unwrap_or_default().to_string(),
        item["service"].as_str().unwrap_or_default().to_string(),
    )
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The readings of `run` as a viewer sees them: every page (checked against the run's counts),
/// then one table per query in `shown` (a first page; with `Some(n)`, the filter must match
/// exactly `n` readings in all).
async fn readings_view(env: &TestEnv, run: &Value, shown: &[(&str, Option<u64>)]) -> Step {
    let viewer = Claims::viewer(CHANNEL);
    let id = run["runId"].as_str().unwrap_or_default();
    let base = format!("/v1/psa/connectors/gradient/syncs/{id}/readings");
    let all = pages(env, &viewer, &base, 50).await?;
    let c = counts(run);
    let mut tally: BTreeMap<String, u64> = BTreeMap::new();
    for r in &all {
        *tally
            .entry(r["outcome"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
    }
    println!(
        "all pages: {} readings = {}",
        all.len(),
        tally
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    );
    fn field(outcome: &str) -> &str {
        match outcome {
            "skipped_disabled" => "skippedDisabled",
            other => other,
        }
    }
    if all.len() as u64 != c.get("readings").copied().unwrap_or(0)
        || tally
            .iter()
            .any(|(o, n)| c.get(field(o)).copied() != Some(*n))
    {
        return Err(Failed(format!(
            "the readings of {id} ({tally:?}) do not add up to the run's counts {c:?}"
        )));
    }
    for (query, total) in shown {
        let r = env
            .call("GET", &format!("{base}?{query}"), Some(&viewer), None)
            .await;
        expect(&format!("readings {query}"), &r, 200)?;
        let page = r.json()["items"].as_array().cloned().unwrap_or_default();
        println!("GET …/readings?{query} → {}", r.status);
        table(
            &["account", "service", "unit", "value", "previous", "outcome"],
            page.iter().map(|r| {
                vec![
                    r["accountId"].as_str().unwrap_or("?").to_string(),
                    r["service"].as_str().unwrap_or("?").to_string(),
                    r["unit"].as_str().unwrap_or("?").to_string(),
                    cell(&r["value"]),
                    cell(&r["previous"]),
                    r["outcome"].as_str().unwrap_or("?").to_string(),
                ]
            }),
        );
        if let Some(n) = total {
            let filter = query.split('&').find(|q| q.starts_with("outcome="));
            let path = match filter {
                Some(f) => format!("{base}?{f}"),
                None => base.clone(),
            };
            let every = pages(env, &viewer, &path, 100).await?;
            let outcome = filter.map(|f| f.trim_start_matches("outcome="));
            if every.len() as u64 != *n
                || outcome.is_some_and(|o| every.iter().any(|r| r["outcome"] != o))
            {
                return Err(Failed(format!(
                    "readings {query}: {} in all, expected {n}",
                    every.len()
                )));
            }
        }
    }
    Ok(())
}

/// The usage view as a viewer sees it: the summary (printed) and every line.
async fn usage_view(env: &TestEnv) -> Step<(Value, Vec<Value>)> {
    let viewer = Claims::viewer(CHANNEL);
    let first = env
        .call(
            "GET",
            "/v1/psa/connectors/gradient/usage",
            Some(&viewer),
            None,
        )
        .await;
    expect("usage", &first, 200)?;
    let summary = first.json()["summary"].clone();
    let lines = pages(env, &viewer, "/v1/psa/connectors/gradient/usage", 100).await?;
    let n = |k: &str| summary[k].as_u64().unwrap_or(0);
    println!(
        "GET …/usage → {}  accounts {} · lines {} · in_sync {} · pending {} · new {} · unmapped {} \
         · failed {} · disabled {} · wouldPost {} · fullResendDue {}",
        first.status,
        n("accounts"),
        n("lines"),
        n("inSync"),
        n("pending"),
        n("new"),
        n("unmapped"),
        n("failed"),
        n("disabled"),
        n("wouldPost"),
        summary["fullResendDue"]
    );
    let states = [
        "in_sync", "pending", "new", "unmapped", "failed", "disabled",
    ];
    let by_state = |s: &str| lines.iter().filter(|l| l["state"] == s).count() as u64;
    let fields = ["inSync", "pending", "new", "unmapped", "failed", "disabled"];
    if lines.len() as u64 != n("lines")
        || states.iter().zip(fields).any(|(s, f)| by_state(s) != n(f))
    {
        return Err(Failed(format!(
            "the usage summary does not match its {} lines: {summary}",
            lines.len()
        )));
    }
    Ok((summary, lines))
}

fn check_summary(step: &str, s: &Value, want: &[(&str, u64)], full_resend_due: bool) -> Step {
    for (k, v) in want {
        if s[*k].as_u64() != Some(*v) {
            return Err(Failed(format!(
                "{step}: summary.{k} is {}, expected {v} ({s})",
                s[*k]
            )));
        }
    }
    if s["fullResendDue"] != full_resend_due {
        return Err(Failed(format!(
            "{step}: fullResendDue is {}, expected {full_resend_due}",
            s["fullResendDue"]
        )));
    }
    Ok(())
}

fn usage_table(lines: &[Value]) {
    table(
        &[
            "account",
            "name",
            "service",
            "unit",
            "lastAccepted",
            "current",
            "state",
        ],
        lines.iter().map(|l| {
            vec![
                l["accountId"].as_str().unwrap_or("?").to_string(),
                l["accountName"].as_str().unwrap_or("?").to_string(),
                l["service"].as_str().unwrap_or("?").to_string(),
                l["unit"].as_str().unwrap_or("?").to_string(),
                cell(&l["lastAccepted"]["value"]),
                cell(&l["current"]),
                l["state"].as_str().unwrap_or("?").to_string(),
            ]
        }),
    );
}

/// Requests a sync through the real handler, runs the real worker while drawing a progress bar
/// of the readings Gradient receives (counts accepted + 404s), and returns the finished run.
async fn sync(env: &TestEnv, org_id: &str, expected_sends: u64) -> Step<Value> {
    sync_ending(env, org_id, expected_sends, "succeeded").await
}

/// "Sync now", the worker, and the run's final status must be `want`.
async fn sync_ending(env: &TestEnv, org_id: &str, expected_sends: u64, want: &str) -> Step<Value> {
    let r = env.sync_now(CHANNEL).await;
    expect("sync now", &r, 202)?;
    let run_id = r.json()["runId"].as_str().unwrap_or_default().to_string();
    println!(
        "HTTP {}  runId {}  status {}",
        r.status,
        run_id,
        r.json()["status"].as_str().unwrap_or("?")
    );
    let received = |env: &TestEnv| {
        env.sim.organization(org_id).map_or(0, |o| {
            o.counts.iter().map(|c| c.history.len()).sum::<usize>() + o.not_found_counts.len()
        }) as u64
    };
    let base = received(env);
    let done = AtomicBool::new(false);
    let worker = async {
        let n = env.drain().await;
        done.store(true, Ordering::SeqCst);
        n
    };
    let bar = async {
        let mut shown = None;
        loop {
            let finished = done.load(Ordering::SeqCst);
            let n = received(env) - base;
            if shown != Some(n) {
                progress(n, expected_sends);
                shown = Some(n);
            }
            if finished {
                println!();
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let (invocations, ()) = tokio::join!(worker, bar);
    let run = env.run(CHANNEL, &run_id).await;
    println!(
        "worker invocations {invocations}; GET …/syncs/{run_id} → status {}",
        run["status"].as_str().unwrap_or("?")
    );
    if run["status"] != want {
        return Err(Failed(format!("sync run did not end {want}: {run}")));
    }
    Ok(run)
}

fn progress(n: u64, total: u64) {
    const WIDTH: u64 = 30;
    let filled = (n.min(total) * WIDTH).checked_div(total).unwrap_or(WIDTH);
    print!(
        "\r[{}{}] {n}/{total} readings sent to Gradient",
        "#".repeat(filled as usize),
        ".".repeat((WIDTH - filled) as usize)
    );
    let _ = std::io::stdout().flush();
}

fn counts(run: &Value) -> BTreeMap<String, u64> {
    run["counts"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                .collect()
        })
        .unwrap_or_default()
}

fn print_counts(run: &Value) {
    const ORDER: &[&str] = &[
        "readings",
        "posted",
        "unchanged",
        "unmapped",
        "skippedDisabled",
        "failed",
        "accounts",
        "accountsCreated",
        "accountsRenamed",
        "servicesCreated",
    ];
    let c = counts(run);
    let mut cells: Vec<String> = ORDER
        .iter()
        .filter_map(|k| c.get(*k).map(|v| format!("{k} {v}")))
        .collect();
    cells.extend(
        c.iter()
            .filter(|(k, _)| !ORDER.contains(&k.as_str()))
            .map(|(k, v)| format!("{k} {v}")),
    );
    println!("counts: {}", cells.join(" · "));
}

fn check(step: &str, c: &BTreeMap<String, u64>, want: &[(&str, u64)]) -> Step {
    for (k, v) in want {
        let got = c.get(*k).copied();
        if got != Some(*v) {
            return Err(Failed(format!(
                "{step}: counts.{k} is {got:?}, expected {v} (counts {c:?})"
            )));
        }
    }
    Ok(())
}

fn workspaces_table(children: &[Child]) {
    table(
        &[
            "workspace",
            "name",
            "parent",
            "status",
            "users",
            "devices",
            "services",
        ],
        children.iter().map(|c| {
            vec![
                c.id.clone(),
                c.name.clone(),
                if c.parent == CHANNEL {
                    "Acme MSP"
                } else {
                    "Acme West"
                }
                .to_string(),
                c.status.to_string(),
                c.users.to_string(),
                c.devices.to_string(),
                c.services
                    .iter()
                    .map(|s| short(s))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        }),
    );
}

fn expect(step: &str, r: &ApiResponse, status: u16) -> Step {
    if r.status == status {
        Ok(())
    } else {
        Err(Failed(format!(
            "{step}: expected HTTP {status}, got {}: {}",
            r.status, r.body
        )))
    }
}

fn heading(title: &str) {
    println!("\n== {title}");
}

/// A plain-text table: columns padded to their widest cell, a dashed rule under the header.
fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) {
    let rows: Vec<Vec<String>> = rows.into_iter().collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for row in rows {
        line(row);
    }
}
