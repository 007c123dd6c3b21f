//! Chapters 12 to 15: the token's lifecycle, the disconnect, the audit trail, and the email the
//! admin received about the first sync.

use crate::change::Change;
use crate::connect::Story;
use crate::email::html_text;
use crate::first_sync::FirstSync;
use crate::guard::Held;
use crate::msp::CHANNEL;
use crate::print::{heading, table};
use crate::views::pages;
use crate::{Failed, Step, expect};
use harness::{Claims, workspace};

pub async fn chapters(story: &Story, first: &FirstSync, change: &Change, held: &Held) -> Step {
    let Story {
        env,
        admin,
        org_id,
        partner_key,
        ..
    } = story;
    let (run1_id, email) = (&first.run_id, &first.email);
    let (run2, run3) = (&change.run2, &change.run3);
    let (held_id, back) = (&held.held_id, &held.back);
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
        .regenerate_key(org_id)
        .ok_or_else(|| Failed("the simulator did not regenerate the key".into()))?;
    let r = env.retoken(CHANNEL, partner_key).await;
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
        .add_key(org_id)
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
        .call("DELETE", "/v1/psa/connectors/gradient", Some(admin), None)
        .await;
    expect("delete", &r, 204)?;
    let o = env.sim.organization(org_id).expect("org");
    let g = env
        .call("GET", "/v1/psa/connectors/gradient", Some(admin), None)
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
    let trail = pages(env, admin, "/v1/psa/audit", 4).await?;
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
        if id == *held_id {
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
    if [partner_key.as_str(), new_key.as_str()]
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
    if [partner_key.as_str(), new_key.as_str()]
        .iter()
        .any(|k| email.html.contains(k))
    {
        return Err(Failed("a token appears in the email".into()));
    }
    Ok(())
}
