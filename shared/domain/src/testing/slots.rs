//! Run slots and worker leases as the DynamoDB adapter keeps them — expiries, lease owners, the
//! on-demand cool-down — on tokio's clock (virtual under the simulation), and the schedule's
//! records. `Memory` keeps simpler ones, enough for the unit tests.

use super::store::{Call, Memory, Tap, enter, leave};
use crate::connector::ConnectorRef;
use crate::ids::RunId;
use crate::ports::*;
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// The adapter keeps a slot this long past its lease (`SLOT_GRACE_AFTER_LEASE`).
const SLOT_GRACE: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone)]
pub struct Slot {
    pub run: RunId,
    pub until: Instant,
    pub lease: Option<(String, Instant)>,
    /// When a claim made it (`None`: a worker's lease did).
    pub claimed: Option<Instant>,
}

/// Slots, leases and cool-downs per connector incarnation, keyed `workspace/type#incarnation`.
pub struct SimSlots {
    pub slots: Mutex<BTreeMap<String, Slot>>,
    cooldowns: Mutex<BTreeMap<String, Instant>>,
    tap: Option<Arc<dyn Tap>>,
}

fn key(c: &ConnectorRef) -> String {
    format!("{}/{}", c.workspace, c.key())
}

impl SimSlots {
    pub fn new(tap: Option<Arc<dyn Tap>>) -> Self {
        Self {
            slots: Mutex::default(),
            cooldowns: Mutex::default(),
            tap,
        }
    }
}

fn live(lease: &Option<(String, Instant)>, now: Instant) -> bool {
    lease.as_ref().is_some_and(|(_, until)| *until >= now)
}

#[async_trait]
impl RunSlots for SimSlots {
    async fn claim_slot(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        ttl: Duration,
    ) -> Result<SlotClaim, StoreError> {
        let call = Call::write("claim_slot").of(c).run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        let now = Instant::now();
        let claim = {
            let mut slots = self.slots.lock().unwrap();
            match slots.get_mut(&key(c)) {
                Some(s) if s.run == *run => {
                    s.until = s.until.max(now + ttl);
                    SlotClaim::Claimed
                }
                Some(s) if s.until >= now || live(&s.lease, now) => {
                    let held = s.claimed.map_or(Duration::ZERO, |at| now - at);
                    SlotClaim::Busy(s.run.clone(), held)
                }
                before => {
                    let old = before.map(|s| s.run.clone());
                    let slot = Slot {
                        run: run.clone(),
                        until: now + ttl,
                        lease: None,
                        claimed: Some(now),
                    };
                    slots.insert(key(c), slot);
                    old.map_or(SlotClaim::Claimed, SlotClaim::TookOver)
                }
            }
        };
        leave(self.tap.as_deref(), &call, f)?;
        Ok(claim)
    }

    async fn release_slot(&self, c: &ConnectorRef, run: &RunId) -> Result<(), StoreError> {
        let call = Call::write("release_slot").of(c).run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        {
            let mut slots = self.slots.lock().unwrap();
            if slots.get(&key(c)).is_some_and(|s| s.run == *run) {
                slots.remove(&key(c));
            }
        }
        leave(self.tap.as_deref(), &call, f)
    }

    async fn take_lease(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        owner: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let call = Call::write("take_lease").of(c).run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        let now = Instant::now();
        let lease = {
            let mut slots = self.slots.lock().unwrap();
            let end = now + ttl;
            match slots.get_mut(&key(c)) {
                None => {
                    let slot = Slot {
                        run: run.clone(),
                        until: end + SLOT_GRACE,
                        lease: Some((owner.to_owned(), end)),
                        claimed: None,
                    };
                    slots.insert(key(c), slot);
                    Lease::Acquired
                }
                Some(s) if s.run != *run => Lease::OtherRun(s.run.clone()),
                Some(s) if live(&s.lease, now) && s.lease.as_ref().unwrap().0 != owner => {
                    Lease::HeldByOther
                }
                Some(s) => {
                    s.lease = Some((owner.to_owned(), end));
                    s.until = s.until.max(end + SLOT_GRACE);
                    Lease::Acquired
                }
            }
        };
        leave(self.tap.as_deref(), &call, f)?;
        Ok(lease)
    }

    async fn drop_lease(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        owner: &str,
    ) -> Result<(), StoreError> {
        let call = Call::write("drop_lease").of(c).run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        if let Some(s) = self.slots.lock().unwrap().get_mut(&key(c))
            && s.run == *run
            && s.lease.as_ref().is_some_and(|(o, _)| o == owner)
        {
            s.lease = None;
        }
        leave(self.tap.as_deref(), &call, f)
    }

    async fn claim_cooldown(
        &self,
        c: &ConnectorRef,
        cooldown: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        let call = Call::write("claim_cooldown").of(c);
        let f = enter(self.tap.as_deref(), &call).await?;
        let now = Instant::now();
        let wait = {
            let mut all = self.cooldowns.lock().unwrap();
            match all.get(&key(c)) {
                Some(last) if *last + cooldown > now => Some(*last + cooldown - now),
                _ => {
                    all.insert(key(c), now);
                    None
                }
            }
        };
        leave(self.tap.as_deref(), &call, f)?;
        Ok(wait)
    }

    async fn lease_of_other_incarnation(
        &self,
        c: &ConnectorRef,
    ) -> Result<Option<Duration>, StoreError> {
        let call = Call::read("lease_of_other_incarnation").of(c);
        let f = enter(self.tap.as_deref(), &call).await?;
        let now = Instant::now();
        let prefix = format!("{}/{}#", c.workspace, c.kind.as_str());
        let longest = self
            .slots
            .lock()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with(&prefix) && **k != key(c))
            .filter_map(|(_, s)| s.lease.as_ref().map(|(_, until)| *until))
            .filter(|until| *until >= now)
            .max()
            .map(|until| until - now);
        leave(self.tap.as_deref(), &call, f)?;
        Ok(longest)
    }

    async fn clear(&self, c: &ConnectorRef) -> Result<(), StoreError> {
        let call = Call::write("clear_slot").of(c);
        let f = enter(self.tap.as_deref(), &call).await?;
        {
            let mut slots = self.slots.lock().unwrap();
            if slots
                .get(&key(c))
                .is_some_and(|s| !live(&s.lease, Instant::now()))
            {
                slots.remove(&key(c));
            }
        }
        self.cooldowns.lock().unwrap().remove(&key(c));
        leave(self.tap.as_deref(), &call, f)
    }
}

#[derive(Default)]
struct Firing {
    lease: Option<(String, Instant)>,
    progress: Option<ScheduleProgress>,
}

/// The schedule's records in memory: firings with their lease (on tokio's clock) and progress,
/// and which of a firing's jobs went out. The runs themselves are `Memory`'s.
pub struct SimBook {
    store: Arc<Memory>,
    firings: Mutex<BTreeMap<String, Firing>>,
    enqueued: Mutex<BTreeSet<(String, String)>>,
    tap: Option<Arc<dyn Tap>>,
}

impl SimBook {
    pub fn new(store: Arc<Memory>, tap: Option<Arc<dyn Tap>>) -> Self {
        Self {
            store,
            firings: Mutex::default(),
            enqueued: Mutex::default(),
            tap,
        }
    }
}

impl SimBook {
    /// Whether the newest firing has scheduled every connector (true when there is none).
    pub fn latest_complete(&self) -> bool {
        let all = self.firings.lock().unwrap();
        all.values()
            .next_back()
            .is_none_or(|f| f.progress.as_ref().is_some_and(|p| p.complete))
    }
}

/// A lease `until` (wall clock, as the use case writes it) on tokio's clock, in whole seconds.
fn lease_end(until: time::OffsetDateTime) -> Instant {
    // Rounded: the use case computed `until` from the wall clock a moment ago.
    let left = (until - time::OffsetDateTime::now_utc()).as_seconds_f64();
    Instant::now() + Duration::from_secs(left.round().max(0.0) as u64)
}

#[async_trait]
impl ScheduleBook for SimBook {
    async fn claim_firing(
        &self,
        run: &RunId,
        owner: &str,
        until: time::OffsetDateTime,
    ) -> Result<FiringClaim, StoreError> {
        let call = Call::write("claim_firing").run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        let claim = {
            let mut all = self.firings.lock().unwrap();
            let firing = all.entry(run.to_string()).or_default();
            match &firing.lease {
                Some((other, end)) if other != owner && *end >= Instant::now() => FiringClaim::Busy,
                _ => {
                    firing.lease = Some((owner.to_owned(), lease_end(until)));
                    FiringClaim::Mine(firing.progress.clone())
                }
            }
        };
        leave(self.tap.as_deref(), &call, f)?;
        Ok(claim)
    }

    async fn save_firing(
        &self,
        run: &RunId,
        owner: &str,
        until: time::OffsetDateTime,
        progress: &ScheduleProgress,
    ) -> Result<bool, StoreError> {
        let call = Call::write("save_firing").run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        let saved = {
            let mut all = self.firings.lock().unwrap();
            let firing = all.entry(run.to_string()).or_default();
            let mine = firing.lease.as_ref().is_some_and(|(o, _)| o == owner);
            if mine {
                firing.lease = Some((owner.to_owned(), lease_end(until)));
                firing.progress = Some(progress.clone());
            }
            mine
        };
        leave(self.tap.as_deref(), &call, f)?;
        Ok(saved)
    }

    async fn release_firing(&self, run: &RunId, owner: &str) -> Result<(), StoreError> {
        let call = Call::write("release_firing").run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        if let Some(firing) = self.firings.lock().unwrap().get_mut(run.as_str())
            && firing.lease.as_ref().is_some_and(|(o, _)| o == owner)
        {
            firing.lease = None;
        }
        leave(self.tap.as_deref(), &call, f)
    }

    async fn latest_firing(&self) -> Result<Option<RunId>, StoreError> {
        let all = self.firings.lock().unwrap();
        Ok(all.keys().next_back().map(|k| RunId::parse(k).unwrap()))
    }

    async fn scheduled_runs(
        &self,
        run: &RunId,
        connectors: &[ConnectorRef],
    ) -> Result<HashMap<ConnectorRef, ScheduledRun>, StoreError> {
        let call = Call::read("scheduled_runs").run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        let runs = self.store.runs.lock().unwrap().clone();
        let enqueued = self.enqueued.lock().unwrap();
        let found = connectors
            .iter()
            .filter_map(|c| {
                let r = runs
                    .iter()
                    .find(|r| r.run_id == *run && r.incarnation == c.incarnation)?;
                let sent = enqueued.contains(&(run.to_string(), key(c)));
                let known = ScheduledRun {
                    status: r.status,
                    enqueued: sent,
                };
                Some((c.clone(), known))
            })
            .collect();
        leave(self.tap.as_deref(), &call, f)?;
        Ok(found)
    }

    async fn mark_enqueued(
        &self,
        run: &RunId,
        connectors: &[ConnectorRef],
    ) -> Result<(), StoreError> {
        let call = Call::write("mark_enqueued").run(run);
        let f = enter(self.tap.as_deref(), &call).await?;
        let mut enqueued = self.enqueued.lock().unwrap();
        for c in connectors {
            enqueued.insert((run.to_string(), key(c)));
        }
        drop(enqueued);
        leave(self.tap.as_deref(), &call, f)
    }
}
