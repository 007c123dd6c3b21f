//! `make demo`: the connector lifecycle end to end on the local stack, printed as plain text.
//!
//! A channel "Acme MSP" with six child workspaces, an MSP organization in the Gradient simulator,
//! then through the real HTTP handler: connect, a rejected token, a re-token after the MSP
//! regenerated its key, delete. Exits non-zero as soon as a step answers an unexpected status.

use psa_tests::{ApiResponse, Claims, TestEnv, workspace};
use std::process::ExitCode;

const CHANNEL: &str = "acme_msp";

/// A managed workspace of the demo channel.
struct Child {
    id: &'static str,
    name: &'static str,
    status: &'static str,
    services: &'static [&'static str],
    users: u64,
    devices: u64,
}

const fn child(
    id: &'static str,
    name: &'static str,
    status: &'static str,
    services: &'static [&'static str],
    users: u64,
    devices: u64,
) -> Child {
    Child {
        id,
        name,
        status,
        services,
        users,
        devices,
    }
}

/// Mixed statuses: trial and subscription children become Gradient accounts, the others do not.
const CHILDREN: &[Child] = &[
    child(
        "bakery",
        "Bakery Bros",
        "subscription",
        &["EDR", "EMAIL_SECURITY"],
        12,
        9,
    ),
    child("dentist", "Dental Care", "trial", &["CLOUD_SECURITY"], 4, 2),
    child(
        "lawfirm",
        "Law & Partners",
        "subscription",
        &["EMAIL_SECURITY", "INBOUND_GATEWAY", "ZTNA"],
        31,
        28,
    ),
    child(
        "school",
        "Green Valley School",
        "subscription",
        &["ENDPOINT_SECURITY", "NETWORK", "SECURE_WEB_GATEWAY"],
        120,
        95,
    ),
    child("oldshop", "Old Shop", "inactive", &["EDR"], 5, 5),
    child("gone", "Gone Ltd", "archived", &["CLOUD_SECURITY"], 3, 3),
];

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

async fn run() -> Step {
    let env = TestEnv::start("demo").await;
    let admin = Claims::admin(CHANNEL);

    heading("1. Coro side: the channel workspace and its children (workspace read model)");
    let mut items = vec![workspace(
        CHANNEL,
        None,
        "channel",
        "Acme MSP",
        "subscription",
        &[],
        0,
        0,
    )];
    for c in CHILDREN {
        let id = format!("{CHANNEL}_{}", c.id);
        items.push(workspace(
            &id,
            Some(CHANNEL),
            "child",
            c.name,
            c.status,
            c.services,
            c.users,
            c.devices,
        ));
    }
    env.seed_workspaces(&items).await;
    table(
        &[
            "workspace",
            "name",
            "status",
            "users",
            "devices",
            "services",
        ],
        items.iter().map(|w| {
            let services: Vec<String> = w
                .modules
                .iter()
                .chain(w.addons.iter())
                .flatten()
                .cloned()
                .collect();
            vec![
                w.workspace_id.clone(),
                w.name.clone(),
                format!("{} ({})", w.status, w.kind),
                w.protected_users.to_string(),
                w.protected_devices.to_string(),
                services.join(", "),
            ]
        }),
    );

    heading("2. Gradient side: the MSP's organization in Synthesize (simulator)");
    let org = env.sim.create_organization("Acme MSP");
    let before = env.sim.organization(&org.organization_id).expect("org");
    println!(
        "organization {}  status {}  accounts {}  (the admin copies its API token into the Coro console)",
        org.organization_id,
        before.status,
        before.accounts.len()
    );

    heading("3. POST /v1/psa/connectors  {\"type\": \"gradient\", \"apiToken\": \"…\"}  as admin");
    let r = env.connect(CHANNEL, &org.partner_key).await;
    show(&r);
    expect("connect", &r, 201)?;
    println!("Location: {}", r.header("location").unwrap_or_default());

    heading("4. What Gradient holds now");
    let o = env.sim.organization(&org.organization_id).expect("org");
    println!("integration status: {} (was {})", o.status, before.status);
    let services = env.sim.state().vendor.services;
    println!(
        "\nservices ({}, vendor-wide, created once):",
        services.len()
    );
    table(
        &["name", "description"],
        services
            .iter()
            .map(|s| vec![s.name.clone(), s.description.clone()]),
    );
    println!(
        "\naccounts ({}: trial and subscription children only):",
        o.accounts.len()
    );
    table(
        &["account id", "name", "description"],
        o.accounts.iter().map(|a| {
            vec![
                a.id.clone(),
                a.name.clone(),
                a.description.clone().unwrap_or_default(),
            ]
        }),
    );
    if o.status != "pending" {
        return Err(Failed(format!(
            "integration status is {}, expected pending",
            o.status
        )));
    }

    heading("5. PUT /v1/psa/connectors/gradient/token with a token Gradient does not know");
    let r = env.retoken(CHANNEL, "gr-not-a-real-partner-key-0000").await;
    show(&r);
    expect("bad token", &r, 422)?;
    let still = env
        .call("GET", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    println!(
        "connector unchanged: status {}, tokenHint {}",
        still.json()["status"].as_str().unwrap_or("?"),
        still.json()["tokenHint"].as_str().unwrap_or("?")
    );

    heading("6. The MSP regenerates its key in Synthesize; the admin pastes the new one");
    let new_key = env
        .sim
        .regenerate_key(&org.organization_id)
        .ok_or_else(|| Failed("the simulator did not regenerate the key".into()))?;
    let r = env.retoken(CHANNEL, &org.partner_key).await;
    println!("old key → {} {}", r.status, r.code());
    expect("old key after regeneration", &r, 422)?;
    let r = env.retoken(CHANNEL, &new_key).await;
    println!("new key → PUT /v1/psa/connectors/gradient/token");
    show(&r);
    expect("re-token", &r, 200)?;

    heading("7. DELETE /v1/psa/connectors/gradient");
    let r = env
        .call("DELETE", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    println!("HTTP {} (body {} bytes)", r.status, r.body.len());
    expect("delete", &r, 204)?;
    let o = env.sim.organization(&org.organization_id).expect("org");
    println!("Gradient integration status: {}", o.status);
    let r = env
        .call("GET", "/v1/psa/connectors/gradient", Some(&admin), None)
        .await;
    println!(
        "GET /v1/psa/connectors/gradient → {} {}",
        r.status,
        r.code()
    );
    expect("get after delete", &r, 404)?;
    println!(
        "token secrets left under this run's prefix: {}",
        env.token_secret_names().await.len()
    );
    if o.status != "inactive" {
        return Err(Failed(format!(
            "Gradient status after delete is {}, expected inactive",
            o.status
        )));
    }
    Ok(())
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

/// Status line, content type, then the JSON body pretty-printed.
fn show(r: &ApiResponse) {
    println!(
        "HTTP {}  {}",
        r.status,
        r.header("content-type").unwrap_or_default()
    );
    let body = serde_json::to_string_pretty(&r.json()).unwrap_or_else(|_| r.body.clone());
    println!("{body}");
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
