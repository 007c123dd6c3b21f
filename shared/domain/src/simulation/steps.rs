//! One step of the simulation: a delivery, some progress of an actor (or of all at once), a
//! crash, an admin's action, a firing of the schedule, a change of the world, or the clock.

use super::sim::{G, Sim};
use crate::connector::SettingsPatch;
use crate::sync::RunStatus;
use crate::testing::admin;
use crate::usecase::connectors;
use crate::usecase::sync::{
    ScheduleOptions, release_run, request_sync, resume_latest, schedule_all,
};
use crate::workspace::WorkspaceStatus;
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

impl Sim {
    /// How long an actor is let run: to its end, or a span that stops it at any await point.
    fn span(&mut self) -> Option<Duration> {
        match self.rng.random_range(0..10) {
            0..=3 => None,
            4..=6 => Some(ms(self.rng.random_range(0..=20))),
            7 | 8 => Some(ms(self.rng.random_range(20..=2000))),
            _ => Some(ms(self.rng.random_range(2000..=30_000))),
        }
    }

    fn any_actor(&mut self) -> Option<u32> {
        let ids: Vec<u32> = self.actors.keys().copied().collect();
        (!ids.is_empty()).then(|| ids[self.rng.random_range(0..ids.len())])
    }

    pub async fn step(&mut self) {
        self.learn_ids();
        match self.rng.random_range(0..100) {
            0..30 => self.deliver().await,
            30..48 => {
                if let Some(id) = self.any_actor() {
                    let span = self.span();
                    self.advance(id, span).await;
                }
            }
            48..53 => {
                let span = ms(self.rng.random_range(1..=3000));
                self.advance_all(span).await;
            }
            53..58 => {
                if let Some(id) = self.any_actor() {
                    self.crash(id);
                }
            }
            58..72 => self.admin().await,
            72..88 => self.change_world(),
            88..94 => self.firing().await,
            _ => self.tick().await,
        }
        if self.plant == super::sim::Plant::StaleReplay {
            self.replay_stale();
        }
        if self.key_broken > 0 {
            self.key_broken -= 1;
            if self.key_broken == 0 {
                self.psa.state.lock().unwrap().vendor_key_broken = false;
                self.note("the vendor key works again");
            }
        }
        // No worker stays suspended long: a slow call ends within about half a minute.
        let late: Vec<u32> = self
            .actors
            .iter()
            .filter(|(_, a)| Instant::now() - a.since > Duration::from_secs(30))
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            self.advance(id, None).await;
        }
    }

    /// A worker receives a visible message (in any order; sometimes two workers the same one).
    async fn deliver(&mut self) {
        let visible = self.queue.visible();
        if visible.is_empty() {
            return self.tick().await;
        }
        let id = visible[self.rng.random_range(0..visible.len())];
        let Some(msg) = self.queue.receive(id, Duration::from_secs(900)) else {
            return;
        };
        let twice = self.faults.chance(self.faults.rates.queue_duplicate);
        for _ in 0..if twice { 2 } else { 1 } {
            let actor = self.start_job(id, msg.job.clone());
            let span = self.span();
            self.advance(actor, span).await;
        }
    }

    /// The clock moves on: far when no actor is under way, a little otherwise.
    async fn tick(&mut self) {
        let secs = if self.actors.is_empty() {
            [1, 20, 120, 960, 7200][self.rng.random_range(0..5)]
        } else {
            self.rng.random_range(0..=3)
        };
        tokio::time::sleep(Duration::from_secs(secs)).await;
    }

    /// An admin of a random MSP acts.
    async fn admin(&mut self) {
        let m = self.rng.random_range(0..self.tree.msps.len());
        let msp = self.tree.msps[m].id.clone();
        let caller = admin(msp.as_str());
        let (core, policy) = (self.core.clone(), self.policy.clone());
        let qcore = self.qcore.clone();
        let existing = self
            .store
            .connectors
            .lock()
            .unwrap()
            .get(&(msp.clone(), G))
            .cloned();
        let id = match (existing, self.rng.random_range(0..10)) {
            (None, _) => {
                let token = crate::testing::token(&self.tree.msps[m].token);
                self.start_other(format!("connect {msp}"), async move {
                    match connectors::connect(&core, &policy, &caller, G, token).await {
                        Ok((c, r)) => format!("connected {} (set-up {:?})", c.incarnation, r.error),
                        Err(e) => format!("refused: {e}"),
                    }
                })
            }
            (Some(_), 0..=3) => self.start_other(format!("sync now {msp}"), async move {
                match request_sync(&qcore, &policy, &caller, G).await {
                    Ok(run) => format!("queued {}", run.run_id),
                    Err(e) => format!("refused: {}", e),
                }
            }),
            (Some(c), 4) => {
                let held = self.latest_held(&c.reference());
                self.start_other(format!("release {msp}"), async move {
                    let Some(held) = held else {
                        return "nothing held".to_owned();
                    };
                    match release_run(&qcore, &policy, &caller, G, &held).await {
                        Ok(run) => format!("released {held} as {}", run.run_id),
                        Err(e) => format!("refused: {}", e),
                    }
                })
            }
            (Some(_), 5) => self.start_other(format!("delete {msp}"), async move {
                match connectors::delete(&core, &policy, &caller, G).await {
                    Ok(()) => "deleted".to_owned(),
                    Err(e) => format!("failed: {e}"),
                }
            }),
            (Some(_), 6 | 7) => {
                let raw = if self.rng.random_bool(0.5) {
                    self.issue_token(m)
                } else {
                    self.tree.msps[m].token.clone()
                };
                let token = crate::testing::token(&raw);
                self.start_other(format!("re-token {msp} with {raw}"), async move {
                    match connectors::retoken(&core, &policy, &caller, G, token).await {
                        Ok((c, _)) => format!("token {} ({:?})", c.token_version, c.status),
                        Err(e) => format!("refused: {e}"),
                    }
                })
            }
            (Some(_), _) => {
                let patch = SettingsPatch {
                    guard_drop_percent: Some(
                        [None, Some(30), Some(50), Some(90)][self.rng.random_range(0..4)],
                    ),
                    psa_alerts: Some(self.rng.random_bool(0.5)),
                    notify: None,
                };
                let what = format!("settings {msp} {patch:?}");
                self.start_other(what, async move {
                    match connectors::update_settings(&core, &policy, &caller, G, patch).await {
                        Ok(c) => format!("settings {:?}", c.settings.guard_drop_percent),
                        Err(e) => format!("refused: {e}"),
                    }
                })
            }
        };
        let span = self.span();
        self.advance(id, span).await;
    }

    /// `Plant::StaleReplay`: once the job that sent a kept count has ended, the count lands in
    /// the PSA again, as from that job.
    fn replay_stale(&mut self) {
        let Some(p) = self.replay.clone() else {
            return;
        };
        let ended = p.actor.is_some_and(|a| self.seen.ended.contains(&a));
        if !ended || !self.rng.random_bool(0.2) {
            return;
        }
        let mut st = self.psa.state.lock().unwrap();
        let o = st.orgs.entry(p.org.clone()).or_default();
        o.values
            .insert((p.account.clone(), p.service.clone()), p.value);
        st.posts.push(p);
        drop(st);
        self.note("planted: a count of an ended job lands again");
    }

    /// The connector's latest run, when it is held.
    pub fn latest_held(&self, c: &crate::connector::ConnectorRef) -> Option<crate::ids::RunId> {
        let runs = self.store.runs.lock().unwrap();
        let latest = runs
            .iter()
            .filter(|r| r.incarnation == c.incarnation)
            .max_by_key(|r| r.queued_at)?;
        (latest.status == RunStatus::Held).then(|| latest.run_id.clone())
    }

    /// A firing of the daily schedule: a new day, the same one again, or the resume schedule.
    async fn firing(&mut self) {
        let (core, policy) = (self.qcore.clone(), self.policy.clone());
        let opts = ScheduleOptions {
            page_size: self.rng.random_range(1..=3),
            concurrency: self.rng.random_range(1..=3),
            lease_ttl: Duration::from_secs(30),
            owner: format!("f{}", self.next_actor),
            ..ScheduleOptions::default()
        };
        let roll = self.rng.random_range(0..10);
        if roll < 5 || self.day == 0 {
            self.finish_firing().await;
            self.day += 1;
        }
        let at = time::macros::datetime!(2026-03-02 05:00 UTC) + time::Duration::days(self.day);
        let id = if roll >= 8 {
            self.start_other("resume the schedule".into(), async move {
                match resume_latest(&core, &policy, &opts).await {
                    Ok(r) => format!("{:?}", r.map(|r| (r.enqueued, r.complete))),
                    Err(e) => format!("failed: {e}"),
                }
            })
        } else {
            self.start_other(format!("firing of day {}", self.day), async move {
                match schedule_all(&core, &policy, at, &opts).await {
                    Ok(r) => format!(
                        "enqueued {}, busy {}, complete {}",
                        r.enqueued, r.busy, r.complete
                    ),
                    Err(e) => format!("failed: {e}"),
                }
            })
        };
        let span = self.span();
        self.advance(id, span).await;
    }

    /// Before the next day's firing: the last one has scheduled every connector, however often
    /// it failed on the way (the event is retried, the resume schedule comes every 5 minutes).
    async fn finish_firing(&mut self) {
        for _ in 0..50 {
            if self.book.latest_complete() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(300)).await;
            let (core, policy) = (self.qcore.clone(), self.policy.clone());
            let opts = ScheduleOptions {
                owner: format!("f{}", self.next_actor),
                ..ScheduleOptions::default()
            };
            let at = time::macros::datetime!(2026-03-02 05:00 UTC) + time::Duration::days(self.day);
            let id = self.start_other(format!("firing of day {} again", self.day), async move {
                match schedule_all(&core, &policy, at, &opts).await {
                    Ok(r) => format!("enqueued {}, complete {}", r.enqueued, r.complete),
                    Err(e) => format!("failed: {e}"),
                }
            });
            self.advance(id, None).await;
        }
        self.seen
            .violation("a firing did not complete in 50 tries".into());
    }

    /// The platform or the PSA changes under the engine.
    fn change_world(&mut self) {
        let all = crate::simulation::world::Tree::workspaces(&self.store);
        let ws = all[self.rng.random_range(0..all.len())].clone();
        let m = self.tree.owner[ws.id.as_str()];
        let keys: Vec<String> = self.tree.catalogue.iter().map(|s| s.key.clone()).collect();
        let key = keys[self.rng.random_range(0..keys.len())].clone();
        let store = self.store.clone();
        let what = match self.rng.random_range(0..16) {
            0..=4 => {
                let big_drop = self.rng.random_bool(0.3);
                let (u, d) = if big_drop {
                    (ws.protected_users / 10, ws.protected_devices / 10)
                } else {
                    (self.rng.random_range(0..=30), self.rng.random_range(0..=30))
                };
                self.tree.edit(&store, &ws.id, |w| {
                    (w.protected_users, w.protected_devices) = (u, d)
                });
                format!("{} counts {u} users, {d} devices", ws.id)
            }
            5..=7 => {
                self.tree.edit(&store, &ws.id, |w| {
                    if !w.services.remove(&key) {
                        w.services.insert(key.clone());
                    }
                });
                format!("{} toggles {key}", ws.id)
            }
            8 => {
                let status = [
                    WorkspaceStatus::Subscription,
                    WorkspaceStatus::Trial,
                    WorkspaceStatus::Inactive,
                ][self.rng.random_range(0..3)];
                self.tree.edit(&store, &ws.id, |w| w.status = status);
                format!("{} is {status:?}", ws.id)
            }
            9 => {
                self.tree.add(&mut self.rng, &store, m, None);
                format!("{} gets a new workspace", self.tree.msps[m].id)
            }
            10 if all.len() > 1 => {
                self.tree.remove(&store, &ws.id);
                format!("{} is removed", ws.id)
            }
            11 => {
                self.tree
                    .edit(&store, &ws.id, |w| w.name = format!("{} renamed", w.id));
                format!("{} is renamed", ws.id)
            }
            12 | 13 => {
                self.unmap(m, ws.id.as_str(), &key);
                format!("PSA: {}/{key} mapped or unmapped", ws.id)
            }
            14 => {
                let org = self.tree.msps[m].org.clone();
                match self.rng.random_range(0..3) {
                    0 => {
                        self.psa.revoke_all(&org);
                        let raw = self.issue_token(m);
                        format!("PSA: {org} regenerates its token ({raw})")
                    }
                    1 => {
                        let mut st = self.psa.state.lock().unwrap();
                        let o = st.orgs.entry(org.clone()).or_default();
                        o.accounts.clear();
                        o.values.clear();
                        format!("PSA: {org} loses its accounts")
                    }
                    _ => {
                        let mut st = self.psa.state.lock().unwrap();
                        let refused = !st.refuse.remove(ws.id.as_str());
                        if refused {
                            st.refuse.insert(ws.id.to_string());
                        }
                        format!("PSA: refuses {}: {refused}", ws.id)
                    }
                }
            }
            _ if self.faults.rates.psa_5xx > 0.0 && self.key_broken == 0 => {
                self.key_broken = self.rng.random_range(1..=6);
                self.psa.state.lock().unwrap().vendor_key_broken = true;
                format!("the vendor key breaks for {} steps", self.key_broken)
            }
            _ => return,
        };
        self.note(format!("world: {what}"));
    }
}
