//! Every store port in memory.

use crate::audit::AuditEvent;
use crate::connector::{Connector, ConnectorRef};
use crate::ids::{ConnectorType, RunId, WorkspaceId};
use crate::ports::*;
use crate::secret::ApiToken;
use crate::sync::{Outcome, PairState, RunReading, SyncRun};
use crate::workspace::Workspace;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

type Pairs = BTreeMap<(String, String), PairState>;

/// Every store port at once, in memory.
#[derive(Default)]
pub struct Memory {
    pub connectors: Mutex<BTreeMap<(WorkspaceId, ConnectorType), Connector>>,
    pub tokens: Mutex<BTreeMap<(WorkspaceId, ConnectorType), ApiToken>>,
    /// Vendor-key rejections per PSA: the workspaces rejected since the last accepted call.
    pub rejections: Mutex<BTreeMap<ConnectorType, Vec<Rejected>>>,
    pub last_accepted: Mutex<BTreeMap<ConnectorType, AcceptedBy>>,
    pub children: Mutex<BTreeMap<WorkspaceId, Vec<Workspace>>>,
    pub slots: Mutex<BTreeMap<String, RunId>>,
    pub runs: Mutex<Vec<SyncRun>>,
    pub readings: Mutex<BTreeMap<(String, RunId), Vec<RunReading>>>,
    pub pairs: Mutex<BTreeMap<String, Pairs>>,
    pub audit: Mutex<Vec<(WorkspaceId, AuditEvent)>>,
    pub attempts: Mutex<BTreeMap<(WorkspaceId, String), u64>>,
    pub jobs: Mutex<Vec<SyncJob>>,
    /// Organization bindings: (type, organization) → workspace.
    pub orgs: Mutex<BTreeMap<(ConnectorType, String), WorkspaceId>>,
    /// Pending PSA tickets per connector key.
    pub tickets: Mutex<BTreeMap<String, Vec<PendingTicket>>>,
    /// Fault injection: this many of the next vault deletes fail.
    pub failing_deletes: Mutex<u32>,
}

/// `n` items from the decimal offset in `cursor`.
fn page<T: Clone>(all: &[T], limit: u32, cursor: Option<&str>) -> Result<Page<T>, PageError> {
    let from: usize = match cursor {
        None => 0,
        Some(c) => c.parse().map_err(|_| PageError::InvalidCursor)?,
    };
    let to = (from + limit.max(1) as usize).min(all.len());
    Ok(Page {
        items: all.get(from..to).unwrap_or_default().to_vec(),
        next: (to < all.len()).then(|| to.to_string()),
    })
}

#[async_trait]
impl ConnectorRepo for Memory {
    async fn get(
        &self,
        ws: &WorkspaceId,
        kind: ConnectorType,
    ) -> Result<Option<Connector>, StoreError> {
        Ok(self
            .connectors
            .lock()
            .unwrap()
            .get(&(ws.clone(), kind))
            .cloned())
    }
    async fn list(&self, ws: &WorkspaceId) -> Result<Vec<Connector>, StoreError> {
        let all = self.connectors.lock().unwrap();
        Ok(all
            .iter()
            .filter(|((w, _), _)| w == ws)
            .map(|(_, c)| c.clone())
            .collect())
    }
    async fn insert(&self, c: &Connector) -> Result<bool, StoreError> {
        let mut all = self.connectors.lock().unwrap();
        let key = (c.workspace_id.clone(), c.kind);
        if all.contains_key(&key) {
            return Ok(false);
        }
        all.insert(key, c.clone());
        Ok(true)
    }
    async fn replace(&self, c: &mut Connector) -> Result<bool, StoreError> {
        let mut all = self.connectors.lock().unwrap();
        let key = (c.workspace_id.clone(), c.kind);
        match all.get(&key) {
            Some(have) if have.version == c.version => {
                c.version += 1;
                all.insert(key, c.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete(&self, ws: &WorkspaceId, kind: ConnectorType) -> Result<(), StoreError> {
        self.connectors.lock().unwrap().remove(&(ws.clone(), kind));
        Ok(())
    }
    async fn connected_page(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<Connector>, Option<String>), StoreError> {
        let all: Vec<Connector> = self.connectors.lock().unwrap().values().cloned().collect();
        let p = page(&all, limit, cursor.as_deref()).map_err(|e| StoreError(e.to_string()))?;
        Ok((p.items, p.next))
    }
}

#[async_trait]
impl TokenVault for Memory {
    async fn store(
        &self,
        ws: &WorkspaceId,
        kind: ConnectorType,
        token: &ApiToken,
    ) -> Result<(), VaultError> {
        self.tokens
            .lock()
            .unwrap()
            .insert((ws.clone(), kind), token.clone());
        Ok(())
    }
    async fn load(&self, c: &ConnectorRef, _version: u64) -> Result<ApiToken, VaultError> {
        let tokens = self.tokens.lock().unwrap();
        tokens
            .get(&(c.workspace.clone(), c.kind))
            .cloned()
            .ok_or(VaultError::NotFound)
    }
    async fn delete(&self, ws: &WorkspaceId, kind: ConnectorType) -> Result<(), VaultError> {
        {
            let mut failing = self.failing_deletes.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(VaultError::Unavailable("injected: delete failed".into()));
            }
        }
        self.tokens.lock().unwrap().remove(&(ws.clone(), kind));
        Ok(())
    }
}

#[async_trait]
impl WorkspaceDirectory for Memory {
    async fn children(&self, parent: &WorkspaceId) -> Result<Vec<Workspace>, StoreError> {
        Ok(self
            .children
            .lock()
            .unwrap()
            .get(parent)
            .cloned()
            .unwrap_or_default())
    }
    async fn workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        Ok(self
            .children
            .lock()
            .unwrap()
            .values()
            .flatten()
            .find(|w| &w.id == id)
            .cloned())
    }
}

#[async_trait]
impl JobQueue for Memory {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), StoreError> {
        self.jobs.lock().unwrap().extend_from_slice(jobs);
        Ok(())
    }
}

#[async_trait]
impl RunSlots for Memory {
    async fn claim_slot(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        _: Duration,
    ) -> Result<SlotClaim, StoreError> {
        let mut slots = self.slots.lock().unwrap();
        match slots.get(&c.key()) {
            Some(other) if other != run => Ok(SlotClaim::Busy(other.clone())),
            _ => {
                slots.insert(c.key(), run.clone());
                Ok(SlotClaim::Claimed)
            }
        }
    }
    async fn release_slot(&self, c: &ConnectorRef, run: &RunId) -> Result<(), StoreError> {
        let mut slots = self.slots.lock().unwrap();
        if slots.get(&c.key()) == Some(run) {
            slots.remove(&c.key());
        }
        Ok(())
    }
    async fn take_lease(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        _: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        match self.claim_slot(c, run, ttl).await? {
            SlotClaim::Claimed => Ok(Lease::Acquired),
            SlotClaim::Busy(other) => Ok(Lease::OtherRun(other)),
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
    async fn clear(&self, c: &ConnectorRef) -> Result<(), StoreError> {
        self.slots.lock().unwrap().remove(&c.key());
        Ok(())
    }
}

#[async_trait]
impl SyncRuns for Memory {
    async fn create_run(&self, run: &SyncRun) -> Result<bool, StoreError> {
        let mut runs = self.runs.lock().unwrap();
        if runs
            .iter()
            .any(|r| r.run_id == run.run_id && r.incarnation == run.incarnation)
        {
            return Ok(false);
        }
        runs.push(run.clone());
        Ok(true)
    }
    async fn put_run(&self, run: &SyncRun) -> Result<(), StoreError> {
        let mut runs = self.runs.lock().unwrap();
        runs.retain(|r| !(r.run_id == run.run_id && r.incarnation == run.incarnation));
        runs.push(run.clone());
        Ok(())
    }
    async fn get_run(&self, c: &ConnectorRef, run: &RunId) -> Result<Option<SyncRun>, StoreError> {
        let runs = self.runs.lock().unwrap();
        Ok(runs
            .iter()
            .find(|r| &r.run_id == run && r.incarnation == c.incarnation)
            .cloned())
    }
    async fn list_runs(
        &self,
        c: &ConnectorRef,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<SyncRun>, PageError> {
        let mut mine: Vec<SyncRun> = self
            .runs
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.incarnation == c.incarnation)
            .cloned()
            .collect();
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
        let mut all = self.readings.lock().unwrap();
        let mine = all.entry((c.key(), run.clone())).or_default();
        for r in readings {
            mine.retain(|x| (&x.account_id, &x.service) != (&r.account_id, &r.service));
            mine.push(r.clone());
        }
        mine.sort_by(|a, b| (&a.account_id, &a.service).cmp(&(&b.account_id, &b.service)));
        Ok(())
    }
    async fn all_readings(
        &self,
        c: &ConnectorRef,
        run: &RunId,
    ) -> Result<Vec<RunReading>, StoreError> {
        Ok(self
            .readings
            .lock()
            .unwrap()
            .get(&(c.key(), run.clone()))
            .cloned()
            .unwrap_or_default())
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
        Ok(self
            .pairs
            .lock()
            .unwrap()
            .get(&c.key())
            .cloned()
            .unwrap_or_default())
    }
    async fn put_pairs(&self, c: &ConnectorRef, pairs: &[PairState]) -> Result<(), StoreError> {
        let mut all = self.pairs.lock().unwrap();
        let mine = all.entry(c.key()).or_default();
        for p in pairs {
            mine.insert(p.key(), p.clone());
        }
        Ok(())
    }
    async fn delete_pairs(
        &self,
        c: &ConnectorRef,
        keys: &[(String, String)],
    ) -> Result<(), StoreError> {
        if let Some(mine) = self.pairs.lock().unwrap().get_mut(&c.key()) {
            keys.iter().for_each(|k| {
                mine.remove(k);
            });
        }
        Ok(())
    }
}

#[async_trait]
impl AuditLog for Memory {
    async fn record(&self, ws: &WorkspaceId, event: &AuditEvent) -> Result<String, StoreError> {
        let mut audit = self.audit.lock().unwrap();
        audit.push((ws.clone(), event.clone()));
        Ok((audit.len() - 1).to_string())
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

#[async_trait]
impl OrganizationBindings for Memory {
    async fn bind(
        &self,
        kind: ConnectorType,
        org: &str,
        ws: &WorkspaceId,
    ) -> Result<bool, StoreError> {
        let mut all = self.orgs.lock().unwrap();
        let holder = all
            .entry((kind, org.to_owned()))
            .or_insert_with(|| ws.clone());
        Ok(holder == ws)
    }
    async fn unbind(
        &self,
        kind: ConnectorType,
        org: &str,
        ws: &WorkspaceId,
    ) -> Result<(), StoreError> {
        let mut all = self.orgs.lock().unwrap();
        if all.get(&(kind, org.to_owned())) == Some(ws) {
            all.remove(&(kind, org.to_owned()));
        }
        Ok(())
    }
}

#[async_trait]
impl KeyHealth for Memory {
    async fn accepted(&self, psa: ConnectorType, by: &AcceptedBy) -> Result<(), StoreError> {
        self.rejections.lock().unwrap().remove(&psa);
        self.last_accepted.lock().unwrap().insert(psa, by.clone());
        Ok(())
    }
    async fn last_accepted(&self, psa: ConnectorType) -> Result<Option<AcceptedBy>, StoreError> {
        Ok(self.last_accepted.lock().unwrap().get(&psa).cloned())
    }
    /// Per PSA, without the window or the kind: enough for the core's unit tests.
    async fn rejected(
        &self,
        psa: ConnectorType,
        _: Rejection,
        rejected: &Rejected,
        _: Duration,
    ) -> Result<Vec<Rejected>, StoreError> {
        let mut all = self.rejections.lock().unwrap();
        let wave = all.entry(psa).or_default();
        if !wave.contains(rejected) {
            wave.push(rejected.clone());
        }
        Ok(wave.clone())
    }
}

#[async_trait]
impl AlertMemory for Memory {
    async fn last_alert(
        &self,
        _: &ConnectorRef,
        _: &str,
        _: &str,
    ) -> Result<Option<time::OffsetDateTime>, StoreError> {
        Ok(None)
    }
    async fn record_alert(
        &self,
        _: &ConnectorRef,
        _: &str,
        _: &str,
        _: Duration,
    ) -> Result<(), StoreError> {
        Ok(())
    }
    async fn forget_alert(&self, _: &ConnectorRef, _: &str, _: &str) -> Result<(), StoreError> {
        Ok(())
    }
    async fn remember_ticket(&self, c: &ConnectorRef, t: &PendingTicket) -> Result<(), StoreError> {
        self.tickets
            .lock()
            .unwrap()
            .entry(c.key())
            .or_default()
            .push(t.clone());
        Ok(())
    }
    async fn pending_tickets(&self, c: &ConnectorRef) -> Result<Vec<PendingTicket>, StoreError> {
        Ok(self
            .tickets
            .lock()
            .unwrap()
            .get(&c.key())
            .cloned()
            .unwrap_or_default())
    }
    async fn forget_ticket(&self, c: &ConnectorRef, alert: &AlertRef) -> Result<(), StoreError> {
        if let Some(all) = self.tickets.lock().unwrap().get_mut(&c.key()) {
            all.retain(|t| &t.alert != alert);
        }
        Ok(())
    }
}

#[async_trait]
impl AttemptCounter for Memory {
    async fn attempt(
        &self,
        ws: &WorkspaceId,
        what: &str,
        window: Duration,
    ) -> Result<(u64, Duration), StoreError> {
        let mut all = self.attempts.lock().unwrap();
        let n = all.entry((ws.clone(), what.to_owned())).or_default();
        *n += 1;
        Ok((*n, window))
    }
}
