//! The checks of what the PSA was sent: calls per run, counts in flight, and each count — its
//! sender alive, its organization, its value, its generation.

use super::seen::run_key;
use super::sim::Sim;
use crate::sync::SyncRun;
use std::collections::BTreeMap;

impl Sim {
    /// Moves what the PSA logged into the checks' hands.
    pub fn collect_psa(&mut self) {
        let mut st = self.psa.state.lock().unwrap();
        for p in st.posts.drain(..) {
            let late = p.actor.is_some_and(|a| self.seen.ended.contains(&a));
            self.seen.posts.push((p, late));
        }
        self.seen.calls.append(&mut st.calls);
        for (a, n) in std::mem::take(&mut st.most_in_flight) {
            let most = self.seen.most.entry(a).or_default();
            *most = (*most).max(n);
        }
    }

    fn count_call(&mut self, op: &'static str) {
        let what = match op {
            "raise_alert" => "PSA alerts raised",
            "report_health" => "PSA health changes",
            "disconnect" => "PSA disconnects",
            "create_accounts" => "PSA account creations",
            _ => return,
        };
        self.count(what);
    }

    /// The PSA's log: calls per run, counts in flight, and each count sent.
    pub(super) fn check_psa(&mut self, runs: &BTreeMap<String, SyncRun>) {
        self.collect_psa();
        let calls = std::mem::take(&mut self.seen.calls);
        let most = std::mem::take(&mut self.seen.most);
        let posts = std::mem::take(&mut self.seen.posts);
        for (actor, op) in calls {
            self.count_call(op);
            if op != "report_count" {
                continue;
            }
            if let Some((c, run)) = actor.and_then(|a| self.seen.jobs.get(&a)) {
                let senders = self.seen.count_calls.entry(run_key(c, run)).or_default();
                senders.insert(actor.unwrap_or_default());
            }
        }
        for (actor, n) in most {
            if n > self.policy.in_flight {
                let what = format!(
                    "A{actor} had {n} counts in flight (in_flight {})",
                    self.policy.in_flight
                );
                self.seen.violation(what);
            }
        }
        for (p, late) in posts {
            if self.plant == super::sim::Plant::StaleReplay && p.landed && self.replay.is_none() {
                self.replay = Some(p.clone());
            }
            let Some(actor) = p.actor else {
                continue;
            };
            let Some((cref, run)) = self.seen.jobs.get(&actor).cloned() else {
                self.seen
                    .violation(format!("A{actor}, no job, sent a count"));
                continue;
            };
            let key = run_key(&cref, &run);
            let what = format!(
                "A{actor} ({key}) sent {}/{} = {}",
                p.account, p.service, p.value
            );
            if late {
                self.seen.violation(format!("{what} after it had ended"));
            }
            let m = self.tree.msps.iter().position(|m| m.id == cref.workspace);
            let theirs = m.is_some_and(|m| {
                self.tree.msps[m].org == p.org && self.tree.owner.get(&p.account) == Some(&m)
            });
            if !theirs {
                self.seen
                    .violation(format!("{what} to another MSP's organization {}", p.org));
            }
            let since = self.seen.run_start.get(&key).copied().unwrap_or(0);
            let pair = (p.account.clone(), p.service.clone());
            if !self.tree.counted(&pair, p.value, since) {
                self.seen
                    .violation(format!("{what}: never Coro's count while the run went on"));
            }
            self.count(if p.landed {
                "counts landed"
            } else {
                "counts unmapped"
            });
            if !p.landed {
                continue;
            }
            let tv = runs.get(&key).map_or(0, |r| r.token_version);
            let generation = (self.seen.incarnation(&cref.incarnation), tv);
            let slot = (p.org.clone(), p.account.clone(), p.service.clone());
            match self.seen.landed.get(&slot) {
                Some((newer, by)) if *newer > generation => {
                    let what = format!(
                        "{what} of generation {generation:?} over generation {newer:?}'s (A{by})"
                    );
                    self.seen.violation(what);
                }
                _ => {
                    self.seen.landed.insert(slot, (generation, actor));
                }
            }
        }
    }
}
