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
//!
//! The story is told in chapters (one module each, in order): [`connect`] (1–3), [`first_sync`]
//! (4–7), [`change`] (8–11), [`guard`] (11b), [`ending`] (12–15); what they share is in
//! [`msp`] (the sample MSP), [`worker`] (a sync by the real worker), [`views`], [`email`] and
//! [`print`].

mod change;
mod connect;
mod email;
mod ending;
mod first_sync;
mod guard;
mod msp;
mod print;
mod views;
mod worker;

use harness::ApiResponse;
use std::process::ExitCode;

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
    let mut story = connect::chapters().await?;
    let first = first_sync::chapters(&story).await?;
    let change = change::chapters(&mut story, &first).await?;
    let held = guard::chapter(&story, &first).await?;
    ending::chapters(&story, &first, &change, &held).await
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
