//! The PSA's billing view brought up to date once per run: one accepted count sent again with
//! `no_build=false` when none of the run's was.

use super::job::Job;
use super::plan::Reading;
use super::send::{Sender, Stop};
use super::sent::Sent;
use crate::sync::{Outcome, RunReading};
use std::collections::BTreeMap;

impl Job<'_> {
    /// The run had counts accepted but none with `no_build=false` (the last one was unmapped or
    /// failed, or was sent by an earlier job): send one accepted count again, letting the PSA
    /// rebuild its billing view. A count is a set, so this changes no value.
    /// `readings`: the run's recorded readings (earlier jobs' accepted ones are candidates too).
    pub(super) async fn rebuild(
        &self,
        sender: &Sender<'_>,
        ids: &BTreeMap<String, String>,
        accepted_now: Vec<Reading>,
        readings: &[RunReading],
    ) {
        let mut candidates = accepted_now;
        if candidates.is_empty() {
            candidates = readings
                .iter()
                .filter(|r| r.outcome == Outcome::Posted)
                .filter_map(|r| {
                    Some(Reading {
                        service_id: ids.get(&r.service)?.clone(),
                        account_id: r.account_id.clone(),
                        account_name: r.account_name.clone(),
                        service_key: r.service.clone(),
                        unit: r.unit,
                        count: r.value,
                        previous: r.previous,
                    })
                })
                .rev()
                .take(3)
                .collect();
        }
        if candidates.is_empty() {
            return; // nothing accepted in this run: nothing to rebuild
        }
        for reading in candidates {
            if let Sent::Accepted(_) = sender.post(reading, false).await {
                tracing::info!("billing view rebuild requested with an accepted count");
                return;
            }
            if sender.stop() != Stop::Go {
                break;
            }
        }
        tracing::warn!(
            "no count of the last batch was accepted; the PSA brings billing up to date on its own"
        );
    }
}
