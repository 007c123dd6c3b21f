//! The email of a run, as the real notifier sends it through moto's SES and a mail client shows it.

use crate::msp::ADMIN_EMAIL;
use crate::{Failed, Step};
use harness::TestEnv;
use harness::events::EventProbe;
use harness::mail::SentEmail;
use psa_domain::usecase::notice::Notifier;

/// The run's `PSA Sync Finished` event, as the bus's rule delivers it, handed to the real
/// notifier; answers the one email SES accepted for it.
pub async fn notify(
    env: &TestEnv,
    events: &EventProbe,
    notifier: &Notifier,
    run_id: &str,
) -> Step<SentEmail> {
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
pub fn html_text(html: &str) -> String {
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
