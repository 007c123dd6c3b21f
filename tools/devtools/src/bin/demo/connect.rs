//! Chapters 1 to 3: the sample MSP on the Coro side, its connect through the real handler, and
//! the MSP mapping most of its accounts × services in Synthesize (the simulator).

use crate::msp::{
    ADMIN_EMAIL, CHANNEL, Child, UNMAPPED_CHILDREN, UNMAPPED_SERVICE, fixture, items,
};
use crate::print::{heading, workspaces_table};
use crate::{Failed, Step, expect};
use gradient_sim::Pair;
use harness::events::EventProbe;
use harness::{Claims, TestEnv};
use psa_domain::Catalogue;
use psa_domain::usecase::notice::Notifier;
use std::collections::{BTreeMap, BTreeSet};

/// What the story has set up: the local stack, the MSP on both sides, and how they map.
pub struct Story {
    pub env: TestEnv,
    pub events: EventProbe,
    pub notifier: Notifier,
    /// The MSP's admin (with the `email` claim).
    pub admin: Claims,
    pub catalogue: Catalogue,
    pub children: Vec<Child>,
    /// The organization in Gradient and the API token the admin connected with.
    pub org_id: String,
    pub partner_key: String,
    /// Catalogue key → Gradient service id, and back.
    pub id_of: BTreeMap<String, String>,
    pub key_of: BTreeMap<String, String>,
    /// Children reported to Gradient (trial and subscription).
    pub reported: usize,
    /// (account, catalogue key) pairs the MSP has not mapped.
    pub unmapped: BTreeSet<(String, String)>,
}

pub async fn chapters() -> Step<Story> {
    let mut env = TestEnv::start("demo").await;
    let events = env.enable_events().await;
    let notifier = env.notifier().await;
    let mut admin = Claims::admin(CHANNEL);
    admin.email = Some(ADMIN_EMAIL.into());
    let catalogue = Catalogue::builtin();

    heading("1. Coro side: channel \"Acme MSP\", subchannel \"Acme West\", 50 child workspaces");
    let children = fixture();
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
    Ok(Story {
        env,
        events,
        notifier,
        admin,
        catalogue,
        children,
        org_id,
        partner_key: org.partner_key,
        id_of,
        key_of,
        reported,
        unmapped,
    })
}
