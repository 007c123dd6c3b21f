//! Every store port in memory ([`Memory`]), with a [`Tap`] the simulation hangs on it to delay,
//! fail or refuse calls and to see every write (unset in the plain unit tests: then nothing is
//! delayed or failed and no call waits).

mod history;
mod records;

use crate::audit::AuditEvent;
use crate::connector::{Connector, ConnectorRef, ConnectorStatus};
use crate::ids::{ConnectorType, RunId, WorkspaceId};
use crate::ports::*;
use crate::secret::ApiToken;
use crate::sync::{PairState, RunReading, SyncRun};
use crate::workspace::Workspace;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
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
    /// Sees (and may delay, fail or refuse) every call; `None` in the plain unit tests.
    pub tap: Mutex<Option<Arc<dyn Tap>>>,
}

/// One store call as a [`Tap`] sees it.
#[derive(Debug, Clone, Default)]
pub struct Call {
    /// The port method, e.g. `put_readings`.
    pub op: &'static str,
    pub write: bool,
    pub workspace: Option<WorkspaceId>,
    /// The connector incarnation the call is about, when it names one.
    pub incarnation: Option<String>,
    pub run: Option<RunId>,
    /// What an `insert` or `replace` writes.
    pub connector: Option<Connector>,
}

impl Call {
    pub fn read(op: &'static str) -> Self {
        Self {
            op,
            ..Self::default()
        }
    }

    pub fn write(op: &'static str) -> Self {
        Self {
            op,
            write: true,
            ..Self::default()
        }
    }

    pub fn ws(mut self, ws: &WorkspaceId) -> Self {
        self.workspace = Some(ws.clone());
        self
    }

    pub fn of(mut self, c: &ConnectorRef) -> Self {
        self.workspace = Some(c.workspace.clone());
        self.incarnation = Some(c.incarnation.clone());
        self
    }

    pub fn run(mut self, run: &RunId) -> Self {
        self.run = Some(run.clone());
        self
    }
}

/// What a [`Tap`] does to one call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The call answers after this long (virtual time under the simulation).
    pub delay: Duration,
    pub fault: Option<StoreFault>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFault {
    /// Fails before anything is written.
    Before,
    /// Written, then answered with an error (a timeout after the write landed).
    After,
    /// A conditional write answered "lost the race" without writing (`replace` only).
    Conflict,
}

/// Watches a [`Memory`]: decides the fate of each call, and hears of each applied write.
pub trait Tap: Send + Sync {
    fn before(&self, call: &Call) -> Verdict;
    fn applied(&self, call: &Call);
}

fn injected(call: &Call) -> StoreError {
    StoreError(format!("injected: {} failed", call.op))
}

/// Before a call: waits and fails as `tap` says; answers the fault still to come.
pub async fn enter(tap: Option<&dyn Tap>, call: &Call) -> Result<Option<StoreFault>, StoreError> {
    let Some(tap) = tap else {
        return Ok(None);
    };
    let v = tap.before(call);
    if !v.delay.is_zero() {
        tokio::time::sleep(v.delay).await;
    }
    match v.fault {
        Some(StoreFault::Before) => Err(injected(call)),
        other => Ok(other),
    }
}

/// After a call was applied: tells `tap` of a write, then fails when it said so.
pub fn leave(
    tap: Option<&dyn Tap>,
    call: &Call,
    fault: Option<StoreFault>,
) -> Result<(), StoreError> {
    if let Some(tap) = tap
        && call.write
    {
        tap.applied(call);
    }
    match fault {
        Some(StoreFault::After) => Err(injected(call)),
        _ => Ok(()),
    }
}

impl Memory {
    fn tap(&self) -> Option<Arc<dyn Tap>> {
        self.tap.lock().unwrap().clone()
    }

    async fn enter(&self, call: &Call) -> Result<Option<StoreFault>, StoreError> {
        enter(self.tap().as_deref(), call).await
    }

    fn leave(&self, call: &Call, fault: Option<StoreFault>) -> Result<(), StoreError> {
        leave(self.tap().as_deref(), call, fault)
    }
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
        let call = Call::read("get_connector").ws(ws);
        let f = self.enter(&call).await?;
        let found = self
            .connectors
            .lock()
            .unwrap()
            .get(&(ws.clone(), kind))
            .cloned();
        self.leave(&call, f)?;
        Ok(found)
    }
    async fn list(&self, ws: &WorkspaceId) -> Result<Vec<Connector>, StoreError> {
        let call = Call::read("list_connectors").ws(ws);
        let f = self.enter(&call).await?;
        let mine = self
            .connectors
            .lock()
            .unwrap()
            .iter()
            .filter(|((w, _), _)| w == ws)
            .map(|(_, c)| c.clone())
            .collect();
        self.leave(&call, f)?;
        Ok(mine)
    }
    async fn insert(&self, c: &Connector) -> Result<bool, StoreError> {
        let mut call = Call::write("insert_connector").of(&c.reference());
        call.connector = Some(c.clone());
        let f = self.enter(&call).await?;
        {
            let mut all = self.connectors.lock().unwrap();
            let key = (c.workspace_id.clone(), c.kind);
            if all.contains_key(&key) {
                return Ok(false);
            }
            all.insert(key, c.clone());
        }
        self.leave(&call, f)?;
        Ok(true)
    }
    async fn replace(&self, c: &mut Connector) -> Result<bool, StoreError> {
        let mut call = Call::write("replace_connector").of(&c.reference());
        let f = self.enter(&call).await?;
        if f == Some(StoreFault::Conflict) {
            return Ok(false);
        }
        {
            let mut all = self.connectors.lock().unwrap();
            let key = (c.workspace_id.clone(), c.kind);
            match all.get(&key) {
                Some(have) if have.version == c.version => {
                    c.version += 1;
                    all.insert(key, c.clone());
                }
                _ => return Ok(false),
            }
        }
        call.connector = Some(c.clone());
        self.leave(&call, f)?;
        Ok(true)
    }
    async fn delete(&self, ws: &WorkspaceId, kind: ConnectorType) -> Result<(), StoreError> {
        let call = Call::write("delete_connector").ws(ws);
        let f = self.enter(&call).await?;
        self.connectors.lock().unwrap().remove(&(ws.clone(), kind));
        self.leave(&call, f)
    }
    /// Connected connectors, as the status index holds them (one being deleted stays in it).
    async fn connected_page(
        &self,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<(Vec<Connector>, Option<String>), StoreError> {
        let call = Call::read("connected_page");
        let f = self.enter(&call).await?;
        let all: Vec<Connector> = self
            .connectors
            .lock()
            .unwrap()
            .values()
            .filter(|c| c.status == ConnectorStatus::Connected)
            .cloned()
            .collect();
        self.leave(&call, f)?;
        let p = page(&all, limit, cursor.as_deref()).map_err(|e| StoreError(e.to_string()))?;
        Ok((p.items, p.next))
    }
}

fn vault(e: StoreError) -> VaultError {
    VaultError::Unavailable(e.0)
}

#[async_trait]
impl TokenVault for Memory {
    async fn store(
        &self,
        ws: &WorkspaceId,
        kind: ConnectorType,
        token: &ApiToken,
    ) -> Result<(), VaultError> {
        let call = Call::write("store_token").ws(ws);
        let f = self.enter(&call).await.map_err(vault)?;
        self.tokens
            .lock()
            .unwrap()
            .insert((ws.clone(), kind), token.clone());
        self.leave(&call, f).map_err(vault)
    }
    async fn load(&self, c: &ConnectorRef, _version: u64) -> Result<ApiToken, VaultError> {
        let call = Call::read("load_token").of(c);
        let f = self.enter(&call).await.map_err(vault)?;
        let found = self
            .tokens
            .lock()
            .unwrap()
            .get(&(c.workspace.clone(), c.kind))
            .cloned();
        self.leave(&call, f).map_err(vault)?;
        found.ok_or(VaultError::NotFound)
    }
    async fn delete(&self, ws: &WorkspaceId, kind: ConnectorType) -> Result<(), VaultError> {
        {
            let mut failing = self.failing_deletes.lock().unwrap();
            if *failing > 0 {
                *failing -= 1;
                return Err(VaultError::Unavailable("injected: delete failed".into()));
            }
        }
        let call = Call::write("delete_token").ws(ws);
        let f = self.enter(&call).await.map_err(vault)?;
        self.tokens.lock().unwrap().remove(&(ws.clone(), kind));
        self.leave(&call, f).map_err(vault)
    }
}

#[async_trait]
impl WorkspaceDirectory for Memory {
    async fn children(&self, parent: &WorkspaceId) -> Result<Vec<Workspace>, StoreError> {
        let call = Call::read("children").ws(parent);
        let f = self.enter(&call).await?;
        let found = self
            .children
            .lock()
            .unwrap()
            .get(parent)
            .cloned()
            .unwrap_or_default();
        self.leave(&call, f)?;
        Ok(found)
    }
    async fn workspace(&self, id: &WorkspaceId) -> Result<Option<Workspace>, StoreError> {
        let call = Call::read("workspace").ws(id);
        let f = self.enter(&call).await?;
        let found = self
            .children
            .lock()
            .unwrap()
            .values()
            .flatten()
            .find(|w| &w.id == id)
            .cloned();
        self.leave(&call, f)?;
        Ok(found)
    }
}

#[async_trait]
impl JobQueue for Memory {
    async fn enqueue(&self, jobs: &[SyncJob]) -> Result<(), StoreError> {
        let call = Call::write("enqueue");
        let f = self.enter(&call).await?;
        self.jobs.lock().unwrap().extend_from_slice(jobs);
        self.leave(&call, f)
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
        let call = Call::write("bind").ws(ws);
        let f = self.enter(&call).await?;
        let bound = {
            let mut all = self.orgs.lock().unwrap();
            let holder = all
                .entry((kind, org.to_owned()))
                .or_insert_with(|| ws.clone());
            holder == ws
        };
        self.leave(&call, f)?;
        Ok(bound)
    }
    async fn unbind(
        &self,
        kind: ConnectorType,
        org: &str,
        ws: &WorkspaceId,
    ) -> Result<(), StoreError> {
        let call = Call::write("unbind").ws(ws);
        let f = self.enter(&call).await?;
        {
            let mut all = self.orgs.lock().unwrap();
            if all.get(&(kind, org.to_owned())) == Some(ws) {
                all.remove(&(kind, org.to_owned()));
            }
        }
        self.leave(&call, f)
    }
}
