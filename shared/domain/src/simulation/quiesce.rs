//! The quiet end of a seed: faults off, every actor finishes, the queue drains; then each MSP's
//! connector is made whole as its admin would (a delete finished, a rejected token replaced), one
//! clean run goes through (released if the guard holds it), and the PSA must hold exactly what
//! Coro reports — the oracle of [`super::world::Tree::oracle`] — for every mapped pair.

use super::sim::{G, Sim};
use crate::ids::RunId;
use crate::sync::RunStatus;
use crate::testing::admin;
use crate::usecase::connectors;
use crate::usecase::sync::{RequestError, release_run, request_sync, resume_latest};
use std::collections::BTreeMap;
use std::time::Duration;

impl Sim {
    pub async fn quiesce(&mut self) -> Vec<String> {
        self.note("quiet: faults off; every actor finishes; the queue drains");
        self.faults.calm();
        self.calm = true;
        {
            let mut st = self.psa.state.lock().unwrap();
            st.vendor_key_broken = false;
            st.refuse.clear();
        }
        self.key_broken = 0;
        let mut v = Vec::new();
        while let Some(&id) = self.actors.keys().next() {
            self.advance(id, None).await;
            if let Some(stop) = self.checked() {
                return stop;
            }
        }
        // The resume schedule comes every few minutes: a crashed firing's lease has expired.
        tokio::time::sleep(Duration::from_secs(300)).await;
        let (core, policy) = (self.qcore.clone(), self.policy.clone());
        let opts = crate::usecase::sync::ScheduleOptions {
            owner: "resume".into(),
            ..Default::default()
        };
        let id = self.start_other("resume the schedule".into(), async move {
            format!(
                "{:?}",
                resume_latest(&core, &policy, &opts)
                    .await
                    .map(|r| r.is_some())
            )
        });
        self.advance(id, None).await;
        if let Some(stop) = self.drain().await {
            return stop;
        }
        for m in 0..self.tree.msps.len() {
            v.extend(self.clean_run(m).await);
        }
        if !v.is_empty() {
            return v;
        }
        // Last, no run of a live connector is left going: the clean runs above clicked "Sync
        // now" (which sends the job of a run still queued again, or ends one whose slot
        // expired) and drained the queue.
        let stuck = self.stuck_runs();
        match super::known::recognise(&stuck) {
            Some(known) => self.known(known, &stuck),
            None => v.extend(stuck),
        }
        v
    }

    /// The runs of live connectors that are still queued or running.
    fn stuck_runs(&self) -> Vec<String> {
        // Runs of a deleted incarnation (or one still being deleted) whose job never went out
        // stay queued, seen by no one.
        let live: BTreeMap<String, String> = {
            let all = self.store.connectors.lock().unwrap();
            all.values()
                .filter(|c| !c.is_deleting())
                .map(|c| {
                    (
                        c.incarnation.clone(),
                        format!("{:?} {:?}", c.status, c.status_reason),
                    )
                })
                .collect()
        };
        let stuck: Vec<String> = {
            let runs = self.store.runs.lock().unwrap();
            runs.iter()
                .filter(|r| r.status.is_active() && live.contains_key(&r.incarnation))
                .map(|r| {
                    let sent = self.queue.ever_sent(r.run_id.as_str(), &r.incarnation);
                    let sent = if sent {
                        "its job was sent"
                    } else {
                        "no job was ever sent"
                    };
                    let c = &live[&r.incarnation];
                    format!(
                        "{} of {} ({:?}, connector {c}): {sent}",
                        r.run_id, r.incarnation, r.trigger
                    )
                })
                .collect()
        };
        stuck
            .into_iter()
            .map(|r| format!("run {r} never finished"))
            .collect()
    }

    /// Runs every visible job to its end, waiting for the ones given back, until none is left;
    /// `Some` to stop with (see `checked`).
    pub async fn drain(&mut self) -> Option<Vec<String>> {
        for _ in 0..2000 {
            if let Some(&id) = self.queue.visible().first() {
                let Some(msg) = self.queue.receive(id, Duration::from_secs(900)) else {
                    continue;
                };
                let actor = self.start_job(id, msg.job);
                self.advance(actor, None).await;
                if let Some(stop) = self.checked() {
                    return Some(stop);
                }
                continue;
            }
            match self.queue.next_visible() {
                Some(at) => tokio::time::sleep_until(at).await,
                None => return None,
            }
        }
        Some(vec![format!(
            "the queue does not drain: {} messages left",
            self.queue.len()
        )])
    }

    /// Runs `fut` as an admin's action to its end.
    async fn act(
        &mut self,
        what: String,
        fut: impl std::future::Future<Output = String> + 'static,
    ) {
        let id = self.start_other(what, fut);
        self.advance(id, None).await;
    }

    /// MSP `m`'s connector made whole, one clean run, and the PSA against the oracle.
    async fn clean_run(&mut self, m: usize) -> Vec<String> {
        let msp = self.tree.msps[m].clone();
        let caller = admin(msp.id.as_str());
        let (core, policy) = (self.core.clone(), self.policy.clone());
        let Some(c) = self
            .store
            .connectors
            .lock()
            .unwrap()
            .get(&(msp.id.clone(), G))
            .cloned()
        else {
            return Vec::new();
        };
        if c.is_deleting() {
            self.act(format!("delete {} again", msp.id), async move {
                format!(
                    "{:?}",
                    connectors::delete(&core, &policy, &caller, G).await.is_ok()
                )
            })
            .await;
            return Vec::new();
        }
        let stored = self
            .store
            .tokens
            .lock()
            .unwrap()
            .get(&(msp.id.clone(), G))
            .cloned();
        let accepted = stored.is_some_and(|t| self.psa.accepts(t.expose_secret()));
        if !c.may_sync() || c.status_reason.is_some() || !accepted {
            let token = crate::testing::token(&msp.token);
            let (core, policy, caller) = (core.clone(), policy.clone(), caller.clone());
            self.act(
                format!("re-token {} with {}", msp.id, msp.token),
                async move {
                    match connectors::retoken(&core, &policy, &caller, G, token).await {
                        Ok((c, r)) => {
                            format!("token {} {:?} {:?}", c.token_version, c.status, r.error)
                        }
                        Err(e) => format!("refused: {e}"),
                    }
                },
            )
            .await;
        }
        let mut v = Vec::new();
        let Some(run) = self.request(m).await else {
            v.push(format!("{}: no clean run could be requested", msp.id));
            return v;
        };
        if let Some(stop) = self.drain().await {
            return stop;
        }
        let mut last = self.run_status(m, &run);
        if last == Some(RunStatus::Held) {
            let (qcore, policy, caller, held) = (
                self.qcore.clone(),
                policy.clone(),
                caller.clone(),
                run.clone(),
            );
            let released = std::rc::Rc::new(std::cell::RefCell::new(None));
            let out = released.clone();
            self.act(format!("release {}", msp.id), async move {
                let r = release_run(&qcore, &policy, &caller, G, &held).await;
                let line = format!("{:?}", r.as_ref().map(|r| r.run_id.clone()));
                *out.borrow_mut() = r.ok().map(|r| r.run_id);
                line
            })
            .await;
            if let Some(stop) = self.drain().await {
                return stop;
            }
            let release = released.borrow().clone();
            last = release.and_then(|r| self.run_status(m, &r));
        }
        if last != Some(RunStatus::Succeeded) {
            v.push(format!("{}: the clean run ended {last:?}", msp.id));
            return v;
        }
        let expected = self.tree.oracle(&self.store, m);
        let st = self.psa.state.lock().unwrap();
        let org = st.orgs.get(&msp.org).cloned().unwrap_or_default();
        drop(st);
        for (pair, want) in expected {
            if org.unmapped.contains(&pair) {
                continue;
            }
            self.count("oracle pairs checked");
            let have = org.values.get(&pair).copied();
            if have != Some(want) {
                v.push(format!(
                    "oracle: {} holds {have:?} for {}/{}, Coro reports {want}",
                    msp.org, pair.0, pair.1
                ));
            }
        }
        v
    }

    fn run_status(&self, m: usize, run: &RunId) -> Option<RunStatus> {
        let ws = &self.tree.msps[m].id;
        let runs = self.store.runs.lock().unwrap();
        runs.iter()
            .find(|r| &r.run_id == run && &r.workspace_id == ws)
            .map(|r| r.status)
    }

    /// An admin's "Sync now", waiting out a slot a crashed run left behind or the cool-down.
    async fn request(&mut self, m: usize) -> Option<RunId> {
        let msp = self.tree.msps[m].id.clone();
        for _ in 0..4 {
            let (core, policy, caller) =
                (self.qcore.clone(), self.policy.clone(), admin(msp.as_str()));
            let answer = std::rc::Rc::new(std::cell::RefCell::new(None));
            let out = answer.clone();
            self.act(format!("sync now {msp}"), async move {
                let r = request_sync(&core, &policy, &caller, G).await;
                let line = match &r {
                    Ok(run) => format!("queued {}", run.run_id),
                    Err(e) => format!("refused: {e}"),
                };
                *out.borrow_mut() = Some(r);
                line
            })
            .await;
            let answer = answer.borrow_mut().take();
            match answer {
                Some(Ok(run)) => return Some(run.run_id),
                Some(Err(RequestError::TooSoon(wait))) => tokio::time::sleep(wait).await,
                Some(Err(RequestError::InProgress(_))) => {
                    // A slot left by a run that finished without freeing it: it expires.
                    tokio::time::sleep(Duration::from_secs(8 * 3600)).await;
                }
                _ => return None,
            }
        }
        None
    }
}
