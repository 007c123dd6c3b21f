//! The sync's records in memory: run slots, runs, readings, pair states, the audit trail.

use super::{Call, Memory, Pairs, page};
use crate::audit::AuditEvent;
use crate::connector::ConnectorRef;
use crate::ids::{RunId, WorkspaceId};
use crate::ports::*;
use crate::sync::{Outcome, PairState, RunReading, SyncRun};
use async_trait::async_trait;
use std::time::Duration;

/// A slot per connector incarnation, without expiry or lease owners: enough for the unit tests
/// (the simulation uses `testing::SimSlots`, which keeps both).
#[async_trait]
impl RunSlots for Memory {
    async fn claim_slot(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        _: Duration,
    ) -> Result<SlotClaim, StoreError> {
        let call = Call::write("claim_slot").of(c).run(run);
        let f = self.enter(&call).await?;
        let claim = {
            let mut slots = self.slots.lock().unwrap();
            match slots.get(&c.key()) {
                Some(other) if other != run => SlotClaim::Busy(other.clone(), Duration::ZERO),
                _ => {
                    slots.insert(c.key(), run.clone());
                    SlotClaim::Claimed
                }
            }
        };
        self.leave(&call, f)?;
        Ok(claim)
    }
    async fn release_slot(&self, c: &ConnectorRef, run: &RunId) -> Result<(), StoreError> {
        let call = Call::write("release_slot").of(c).run(run);
        let f = self.enter(&call).await?;
        {
            let mut slots = self.slots.lock().unwrap();
            if slots.get(&c.key()) == Some(run) {
                slots.remove(&c.key());
            }
        }
        self.leave(&call, f)
    }
    async fn take_lease(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        _: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        match self.claim_slot(c, run, ttl).await? {
            SlotClaim::Claimed | SlotClaim::TookOver(_) => Ok(Lease::Acquired),
            SlotClaim::Busy(other, _) => Ok(Lease::OtherRun(other)),
        }
    }
    async fn drop_lease(&self, _: &ConnectorRef, _: &RunId, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn claim_cooldown(
        &self,
        _: &ConnectorRef,
        _: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        Ok(None)
    }
    async fn lease_of_other_incarnation(
        &self,
        _: &ConnectorRef,
    ) -> Result<Option<Duration>, StoreError> {
        Ok(None) // `Memory` keeps no leases
    }
    async fn clear(&self, c: &ConnectorRef) -> Result<(), StoreError> {
        self.slots.lock().unwrap().remove(&c.key());
        Ok(())
    }
}

#[async_trait]
impl SyncRuns for Memory {
    async fn create_run(&self, run: &SyncRun) -> Result<bool, StoreError> {
        let call = Call::write("create_run")
            .of(&run.connector())
            .run(&run.run_id);
        let f = self.enter(&call).await?;
        {
            let mut runs = self.runs.lock().unwrap();
            if runs
                .iter()
                .any(|r| r.run_id == run.run_id && r.incarnation == run.incarnation)
            {
                return Ok(false);
            }
            runs.push(run.clone());
        }
        self.leave(&call, f)?;
        Ok(true)
    }
    async fn put_run(&self, run: &SyncRun) -> Result<bool, StoreError> {
        let call = Call::write("put_run").of(&run.connector()).run(&run.run_id);
        let f = self.enter(&call).await?;
        let written = {
            let mut runs = self.runs.lock().unwrap();
            let same = |r: &SyncRun| r.run_id == run.run_id && r.incarnation == run.incarnation;
            let finished = runs.iter().any(|r| same(r) && !r.status.is_active());
            if !finished {
                runs.retain(|r| !same(r));
                runs.push(run.clone());
            }
            !finished
        };
        self.leave(&call, f)?;
        Ok(written)
    }
    async fn get_run(&self, c: &ConnectorRef, run: &RunId) -> Result<Option<SyncRun>, StoreError> {
        let call = Call::read("get_run").of(c).run(run);
        let f = self.enter(&call).await?;
        let found = self
            .runs
            .lock()
            .unwrap()
            .iter()
            .find(|r| &r.run_id == run && r.incarnation == c.incarnation)
            .cloned();
        self.leave(&call, f)?;
        Ok(found)
    }
    async fn list_runs(
        &self,
        c: &ConnectorRef,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<SyncRun>, PageError> {
        let call = Call::read("list_runs").of(c);
        let f = self.enter(&call).await?;
        let mut mine: Vec<SyncRun> = self
            .runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.incarnation == c.incarnation)
            .cloned()
            .collect();
        self.leave(&call, f)?;
        mine.sort_by_key(|r| std::cmp::Reverse(r.queued_at));
        page(&mine, limit, cursor)
    }
}

#[async_trait]
impl RunReadings for Memory {
    async fn put_readings(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        readings: &[RunReading],
    ) -> Result<(), StoreError> {
        let call = Call::write("put_readings").of(c).run(run);
        let f = self.enter(&call).await?;
        {
            let mut all = self.readings.lock().unwrap();
            let mine = all.entry((c.key(), run.clone())).or_default();
            for r in readings {
                mine.retain(|x| (&x.account_id, &x.service) != (&r.account_id, &r.service));
                mine.push(r.clone());
            }
            mine.sort_by(|a, b| (&a.account_id, &a.service).cmp(&(&b.account_id, &b.service)));
        }
        self.leave(&call, f)
    }
    async fn all_readings(
        &self,
        c: &ConnectorRef,
        run: &RunId,
    ) -> Result<Vec<RunReading>, StoreError> {
        let call = Call::read("all_readings").of(c).run(run);
        let f = self.enter(&call).await?;
        let found = self
            .readings
            .lock()
            .unwrap()
            .get(&(c.key(), run.clone()))
            .cloned()
            .unwrap_or_default();
        self.leave(&call, f)?;
        Ok(found)
    }
    async fn readings_page(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        outcome: Option<Outcome>,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<RunReading>, PageError> {
        let all: Vec<RunReading> = self
            .all_readings(c, run)
            .await?
            .into_iter()
            .filter(|r| outcome.is_none_or(|o| r.outcome == o))
            .collect();
        page(&all, limit, cursor)
    }
}

#[async_trait]
impl PairStates for Memory {
    async fn pairs(&self, c: &ConnectorRef) -> Result<Pairs, StoreError> {
        let call = Call::read("pairs").of(c);
        let f = self.enter(&call).await?;
        let found = self
            .pairs
            .lock()
            .unwrap()
            .get(&c.key())
            .cloned()
            .unwrap_or_default();
        self.leave(&call, f)?;
        Ok(found)
    }
    async fn put_pairs(&self, c: &ConnectorRef, pairs: &[PairState]) -> Result<(), StoreError> {
        let call = Call::write("put_pairs").of(c);
        let f = self.enter(&call).await?;
        {
            let mut all = self.pairs.lock().unwrap();
            let mine = all.entry(c.key()).or_default();
            for p in pairs {
                mine.insert(p.key(), p.clone());
            }
        }
        self.leave(&call, f)
    }
    async fn delete_pairs(
        &self,
        c: &ConnectorRef,
        keys: &[(String, String)],
    ) -> Result<(), StoreError> {
        let call = Call::write("delete_pairs").of(c);
        let f = self.enter(&call).await?;
        if let Some(mine) = self.pairs.lock().unwrap().get_mut(&c.key()) {
            keys.iter().for_each(|k| {
                mine.remove(k);
            });
        }
        self.leave(&call, f)
    }
}

#[async_trait]
impl AuditLog for Memory {
    async fn record(&self, ws: &WorkspaceId, event: &AuditEvent) -> Result<String, StoreError> {
        let call = Call::write("audit").ws(ws);
        let f = self.enter(&call).await?;
        let key = {
            let mut audit = self.audit.lock().unwrap();
            audit.push((ws.clone(), event.clone()));
            (audit.len() - 1).to_string()
        };
        self.leave(&call, f)?;
        Ok(key)
    }
    async fn annotate(
        &self,
        ws: &WorkspaceId,
        key: &str,
        detail: &[(&str, String)],
    ) -> Result<(), StoreError> {
        let mut audit = self.audit.lock().unwrap();
        if let Some((w, e)) = key.parse::<usize>().ok().and_then(|i| audit.get_mut(i))
            && w == ws
        {
            for (k, v) in detail {
                e.detail.insert((*k).to_owned(), v.clone());
            }
        }
        Ok(())
    }
    async fn audit_page(
        &self,
        ws: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEvent>, PageError> {
        let mine: Vec<AuditEvent> = self
            .audit
            .lock()
            .unwrap()
            .iter()
            .rev()
            .filter(|(w, _)| w == ws)
            .map(|(_, e)| e.clone())
            .collect();
        page(&mine, limit, cursor)
    }
}
