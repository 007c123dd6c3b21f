//! In-memory port fakes for the core's unit tests (fast, no servers). Integration tests use the
//! real adapters against local servers; these only stand in for them where a test is about the
//! core's own logic.

use crate::audit::AuditEvent;
use crate::caller::{Caller, Role, WorkspaceType};
use crate::catalogue::Catalogue;
use crate::connector::{Connector, ConnectorRef};
use crate::ids::{RunId, UserId, WorkspaceId};
use crate::ports::*;
use crate::secret::ApiToken;
use crate::sync::{Outcome, PairState, RunReading, SyncRun};
use crate::usecase::Core;
use crate::workspace::{Workspace, WorkspaceStatus};
use async_trait::async_trait;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Pairs = BTreeMap<(String, String), PairState>;

/// Every store port at once, in memory.
#[derive(Default)]
pub struct Memory {
    pub connectors: Mutex<BTreeMap<WorkspaceId, Connector>>,
    pub tokens: Mutex<BTreeMap<WorkspaceId, ApiToken>>,
    pub children: Mutex<BTreeMap<WorkspaceId, Vec<Workspace>>>,
    pub slots: Mutex<BTreeMap<String, RunId>>,
    pub runs: Mutex<Vec<SyncRun>>,
    pub readings: Mutex<BTreeMap<(String, RunId), Vec<RunReading>>>,
    pub pairs: Mutex<BTreeMap<String, Pairs>>,
    pub audit: Mutex<Vec<(WorkspaceId, AuditEvent)>>,
    pub attempts: Mutex<BTreeMap<(WorkspaceId, String), u64>>,
    pub jobs: Mutex<Vec<SyncJob>>,
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
    async fn get(&self, ws: &WorkspaceId) -> Result<Option<Connector>, StoreError> {
        Ok(self.connectors.lock().unwrap().get(ws).cloned())
    }
    async fn insert(&self, c: &Connector) -> Result<bool, StoreError> {
        let mut all = self.connectors.lock().unwrap();
        if all.contains_key(&c.workspace_id) {
            return Ok(false);
        }
        all.insert(c.workspace_id.clone(), c.clone());
        Ok(true)
    }
    async fn replace(&self, c: &mut Connector) -> Result<bool, StoreError> {
        let mut all = self.connectors.lock().unwrap();
        match all.get(&c.workspace_id) {
            Some(have) if have.version == c.version => {
                c.version += 1;
                all.insert(c.workspace_id.clone(), c.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn delete(&self, ws: &WorkspaceId) -> Result<(), StoreError> {
        self.connectors.lock().unwrap().remove(ws);
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
    async fn store(&self, ws: &WorkspaceId, token: &ApiToken) -> Result<(), VaultError> {
        self.tokens
            .lock()
            .unwrap()
            .insert(ws.clone(), token.clone());
        Ok(())
    }
    async fn load(&self, c: &ConnectorRef, _version: u64) -> Result<ApiToken, VaultError> {
        let tokens = self.tokens.lock().unwrap();
        tokens
            .get(&c.workspace)
            .cloned()
            .ok_or(VaultError::NotFound)
    }
    async fn delete(&self, ws: &WorkspaceId) -> Result<(), VaultError> {
        self.tokens.lock().unwrap().remove(ws);
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
    async fn record(&self, ws: &WorkspaceId, event: &AuditEvent) -> Result<(), StoreError> {
        self.audit.lock().unwrap().push((ws.clone(), event.clone()));
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
impl KeyHealth for Memory {
    async fn accepted(&self) -> Result<(), StoreError> {
        Ok(())
    }
    async fn rejected(
        &self,
        _: Rejection,
        ws: &WorkspaceId,
        _: Duration,
    ) -> Result<Vec<WorkspaceId>, StoreError> {
        Ok(vec![ws.clone()])
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

/// How the fake PSA answers a call it is told to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fail {
    Token,
    Unavailable,
}

impl Fail {
    fn error(self) -> PsaError {
        match self {
            Self::Token => PsaError::TokenRejected,
            Self::Unavailable => PsaError::Unavailable {
                what: "down".into(),
                retry_after: None,
            },
        }
    }
}

/// A PSA that is not Gradient: accounts, services, counts and alerts in memory; every call is
/// logged by name; failures and delays on demand.
#[derive(Default)]
pub struct FakePsa {
    pub live: Mutex<bool>,
    /// Calls by port method name, in order.
    pub calls: Mutex<Vec<&'static str>>,
    pub fail: Mutex<BTreeMap<&'static str, Fail>>,
    /// `verify` answers after this long.
    pub verify_delay: Mutex<Duration>,
    pub services: Mutex<BTreeMap<String, String>>,
    /// Catalogue keys `publish_services` leaves without an id.
    pub withheld: Mutex<BTreeSet<String>>,
    pub accounts: Mutex<BTreeMap<String, PsaAccount>>,
    /// Account ids the PSA refuses to create or update.
    pub refuse: Mutex<BTreeSet<String>>,
    /// Account ids whose counts are unmapped.
    pub unmapped: Mutex<BTreeSet<String>>,
    pub counts: Mutex<Vec<(String, String, u64, Batch)>>,
    pub alerts: Mutex<Vec<PsaAlert>>,
}

impl FakePsa {
    fn call(&self, name: &'static str) -> Result<(), PsaError> {
        self.calls.lock().unwrap().push(name);
        match self.fail.lock().unwrap().get(name) {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }

    pub fn fail(&self, call: &'static str, how: Fail) {
        self.fail.lock().unwrap().insert(call, how);
    }

    pub fn calls(&self) -> Vec<&'static str> {
        self.calls.lock().unwrap().clone()
    }
}

#[async_trait]
impl Psa for FakePsa {
    async fn verify(&self, _: &ApiToken) -> Result<PsaIntegration, PsaError> {
        let delay = *self.verify_delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.call("verify")?;
        Ok(PsaIntegration {
            id: "org".into(),
            name: "Org".into(),
            live: *self.live.lock().unwrap(),
        })
    }
    async fn begin_setup(&self, _: &ApiToken, _: &PsaIntegration) -> Result<(), PsaError> {
        self.call("begin_setup")
    }
    async fn disconnect(&self, _: &ApiToken) -> Result<(), PsaError> {
        self.call("disconnect")
    }
    async fn publish_services(
        &self,
        _: &ApiToken,
        catalogue: &Catalogue,
        _: &WorkspaceId,
    ) -> Result<PublishedServices, PsaError> {
        self.call("publish_services")?;
        let withheld = self.withheld.lock().unwrap().clone();
        let mut services = self.services.lock().unwrap();
        let mut created = 0;
        for s in catalogue.iter().filter(|s| !withheld.contains(&s.key)) {
            if !services.contains_key(&s.key) {
                services.insert(s.key.clone(), format!("svc-{}", s.key));
                created += 1;
            }
        }
        Ok(PublishedServices {
            ids: services.clone(),
            created,
        })
    }
    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError> {
        Ok(self.services.lock().unwrap().clone()) // the adapter's own records: no call logged
    }
    async fn accounts(&self, _: &ApiToken) -> Result<Vec<PsaAccount>, PsaError> {
        self.call("accounts")?;
        Ok(self.accounts.lock().unwrap().values().cloned().collect())
    }
    async fn create_accounts(
        &self,
        _: &ApiToken,
        accounts: &[PsaAccount],
    ) -> Result<AccountsCreated, PsaError> {
        self.call("create_accounts")?;
        let refuse = self.refuse.lock().unwrap().clone();
        let mut out = AccountsCreated::default();
        for a in accounts {
            if refuse.contains(&a.id) {
                out.refused.insert(a.id.clone(), "bad name".into());
            } else {
                self.accounts
                    .lock()
                    .unwrap()
                    .insert(a.id.clone(), a.clone());
                out.created += 1;
            }
        }
        Ok(out)
    }
    async fn update_account(&self, _: &ApiToken, a: &PsaAccount) -> Result<AccountWrite, PsaError> {
        self.call("update_account")?;
        if self.refuse.lock().unwrap().contains(&a.id) {
            return Ok(AccountWrite::Refused("bad name".into()));
        }
        self.accounts
            .lock()
            .unwrap()
            .insert(a.id.clone(), a.clone());
        Ok(AccountWrite::Written)
    }
    async fn report_count(
        &self,
        _: &ApiToken,
        service: &str,
        account: &str,
        n: u64,
        batch: Batch,
    ) -> Result<CountOutcome, PsaError> {
        self.call("report_count")?;
        if self.unmapped.lock().unwrap().contains(account) {
            return Ok(CountOutcome::Unmapped);
        }
        self.counts
            .lock()
            .unwrap()
            .push((service.into(), account.into(), n, batch));
        Ok(CountOutcome::Accepted)
    }
    async fn raise_alert(&self, _: &ApiToken, alert: &PsaAlert) -> Result<(), PsaError> {
        self.call("raise_alert")?;
        self.alerts.lock().unwrap().push(alert.clone());
        Ok(())
    }
}

/// A core over [`Memory`] and a [`FakePsa`], both kept for the test to look into.
pub struct World {
    pub core: Core,
    pub store: Arc<Memory>,
    pub psa: Arc<FakePsa>,
}

impl World {
    pub fn new() -> Self {
        let store = Arc::new(Memory::default());
        let psa = Arc::new(FakePsa::default());
        let core = Core {
            connectors: store.clone(),
            vault: store.clone(),
            directory: store.clone(),
            psa: psa.clone(),
            catalogue: Arc::new(Catalogue::builtin()),
            slots: store.clone(),
            runs: store.clone(),
            readings: store.clone(),
            pairs: store.clone(),
            audit: store.clone(),
            key_health: store.clone(),
            alerts: store.clone(),
            attempts: store.clone(),
            queue: store.clone(),
        };
        Self { core, store, psa }
    }

    /// Adds a managed workspace under `parent`.
    pub fn child(
        &self,
        parent: &str,
        id: &str,
        name: &str,
        services: &[&str],
        users: u64,
    ) -> Workspace {
        let ws = Workspace {
            id: WorkspaceId::parse(id).unwrap(),
            parent: Some(WorkspaceId::parse(parent).unwrap()),
            kind: WorkspaceType::Child,
            name: name.into(),
            domain: None,
            status: WorkspaceStatus::Subscription,
            services: services.iter().map(|s| s.to_string()).collect(),
            protected_users: users,
            protected_devices: users,
        };
        let mut children = self.store.children.lock().unwrap();
        children
            .entry(WorkspaceId::parse(parent).unwrap())
            .or_default()
            .push(ws.clone());
        ws
    }
}

/// An admin of channel workspace `ws`.
pub fn admin(ws: &str) -> Caller {
    Caller {
        user: UserId::parse("u-admin").unwrap(),
        workspace: WorkspaceId::parse(ws).unwrap(),
        workspace_type: WorkspaceType::Channel,
        role: Role::Admin,
    }
}

pub fn token(raw: &str) -> ApiToken {
    ApiToken::parse(raw).unwrap()
}
