//! Faults injected around the real adapters (they still talk to moto and the simulator): a token
//! vault whose deletes fail and whose stores are slow, and a PSA whose token check is slow. What
//! a test proves with them is the core's ordering under a failure or a race, on real parts.

use async_trait::async_trait;
use psa_domain::catalogue::Catalogue;
use psa_domain::ports::StoreError;
use psa_domain::ports::{
    AccountWrite, AccountsCreated, AlertRef, Batch, CountOutcome, Health, Psa, PsaAccount,
    PsaAlert, PsaError, PsaIntegration, PublishedServices, Ticket, TokenVault, VaultError,
};
use psa_domain::{ApiToken, ConnectorRef, ConnectorType, WorkspaceId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// The real vault, except: the next `failing_deletes` deletes fail, and every store first waits
/// `store_delay`.
pub struct FaultyVault {
    pub inner: Arc<dyn TokenVault>,
    pub failing_deletes: AtomicU32,
    pub store_delay: Duration,
}

impl FaultyVault {
    pub fn new(inner: Arc<dyn TokenVault>) -> Self {
        Self {
            inner,
            failing_deletes: AtomicU32::new(0),
            store_delay: Duration::ZERO,
        }
    }
}

#[async_trait]
impl TokenVault for FaultyVault {
    async fn store(
        &self,
        workspace: &WorkspaceId,
        kind: ConnectorType,
        token: &ApiToken,
    ) -> Result<(), VaultError> {
        tokio::time::sleep(self.store_delay).await;
        self.inner.store(workspace, kind, token).await
    }
    async fn load(&self, c: &ConnectorRef, version: u64) -> Result<ApiToken, VaultError> {
        self.inner.load(c, version).await
    }
    async fn delete(&self, workspace: &WorkspaceId, kind: ConnectorType) -> Result<(), VaultError> {
        let fail = self
            .failing_deletes
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(VaultError::Unavailable(
                "injected: DeleteSecret failed".into(),
            ));
        }
        self.inner.delete(workspace, kind).await
    }
}

/// The real PSA, with a token check (`verify`) that takes `delay` longer.
pub struct SlowVerify {
    pub inner: Arc<dyn Psa>,
    pub delay: Duration,
}

#[async_trait]
impl Psa for SlowVerify {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    async fn verify(&self, token: &ApiToken) -> Result<PsaIntegration, PsaError> {
        tokio::time::sleep(self.delay).await;
        self.inner.verify(token).await
    }
    async fn begin_setup(&self, t: &ApiToken, i: &PsaIntegration) -> Result<(), PsaError> {
        self.inner.begin_setup(t, i).await
    }
    async fn disconnect(&self, t: &ApiToken) -> Result<(), PsaError> {
        self.inner.disconnect(t).await
    }
    async fn report_health(&self, t: &ApiToken, h: Health) -> Result<(), PsaError> {
        self.inner.report_health(t, h).await
    }
    fn health_name(&self, h: Health) -> &'static str {
        self.inner.health_name(h)
    }
    async fn publish_services(
        &self,
        t: &ApiToken,
        c: &Catalogue,
        by: &WorkspaceId,
    ) -> Result<PublishedServices, PsaError> {
        self.inner.publish_services(t, c, by).await
    }
    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError> {
        self.inner.published_services().await
    }
    async fn accounts(&self, t: &ApiToken) -> Result<Vec<PsaAccount>, PsaError> {
        self.inner.accounts(t).await
    }
    async fn create_accounts(
        &self,
        t: &ApiToken,
        a: &[PsaAccount],
    ) -> Result<AccountsCreated, PsaError> {
        self.inner.create_accounts(t, a).await
    }
    async fn update_account(&self, t: &ApiToken, a: &PsaAccount) -> Result<AccountWrite, PsaError> {
        self.inner.update_account(t, a).await
    }
    async fn report_count(
        &self,
        t: &ApiToken,
        service: &str,
        account: &str,
        count: u64,
        batch: Batch,
    ) -> Result<CountOutcome, PsaError> {
        self.inner
            .report_count(t, service, account, count, batch)
            .await
    }
    async fn raise_alert(&self, t: &ApiToken, a: &PsaAlert) -> Result<AlertRef, PsaError> {
        self.inner.raise_alert(t, a).await
    }
    async fn ticket(&self, t: &ApiToken, a: &AlertRef) -> Result<Ticket, PsaError> {
        self.inner.ticket(t, a).await
    }
}

/// The real run slots, except that the lease can be taken (or renewed) only `alive` times: the
/// next call fails. A worker's job takes the lease once, then renews it after every checkpoint,
/// so `alive = 1 + n` lets it write `n` checkpoints and then stops it like a crash there: the job
/// fails, its counts in flight are not recorded, its lease is left to expire, its message comes
/// back.
pub struct LeaseDiesAfter {
    pub inner: Arc<dyn psa_domain::ports::RunSlots>,
    pub alive: AtomicU32,
}

impl LeaseDiesAfter {
    pub fn wrap(inner: Arc<dyn psa_domain::ports::RunSlots>, alive: u32) -> Arc<Self> {
        Arc::new(Self {
            inner,
            alive: AtomicU32::new(alive),
        })
    }
}

#[async_trait]
impl psa_domain::ports::RunSlots for LeaseDiesAfter {
    async fn claim_slot(
        &self,
        c: &ConnectorRef,
        run: &psa_domain::RunId,
        ttl: Duration,
    ) -> Result<psa_domain::ports::SlotClaim, StoreError> {
        self.inner.claim_slot(c, run, ttl).await
    }
    async fn release_slot(
        &self,
        c: &ConnectorRef,
        run: &psa_domain::RunId,
    ) -> Result<(), StoreError> {
        self.inner.release_slot(c, run).await
    }
    async fn take_lease(
        &self,
        c: &ConnectorRef,
        run: &psa_domain::RunId,
        owner: &str,
        ttl: Duration,
    ) -> Result<psa_domain::ports::Lease, StoreError> {
        let left = self
            .alive
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_err() {
            return Err(StoreError("injected: the worker died here".into()));
        }
        self.inner.take_lease(c, run, owner, ttl).await
    }
    async fn drop_lease(
        &self,
        c: &ConnectorRef,
        run: &psa_domain::RunId,
        owner: &str,
    ) -> Result<(), StoreError> {
        self.inner.drop_lease(c, run, owner).await
    }
    async fn claim_cooldown(
        &self,
        c: &ConnectorRef,
        cooldown: Duration,
    ) -> Result<Option<Duration>, StoreError> {
        self.inner.claim_cooldown(c, cooldown).await
    }
    async fn lease_of_other_incarnation(
        &self,
        c: &ConnectorRef,
    ) -> Result<Option<Duration>, StoreError> {
        self.inner.lease_of_other_incarnation(c).await
    }
    async fn clear(&self, c: &ConnectorRef) -> Result<(), StoreError> {
        self.inner.clear(c).await
    }
}

/// The real job queue, except that only `alive` enqueues go through: the next one fails, as an
/// invocation killed before it sent them (whatever it created before stays).
pub struct QueueDiesAfter {
    pub inner: Arc<dyn psa_domain::ports::JobQueue>,
    pub alive: AtomicU32,
}

impl QueueDiesAfter {
    pub fn wrap(inner: Arc<dyn psa_domain::ports::JobQueue>, alive: u32) -> Arc<Self> {
        Arc::new(Self {
            inner,
            alive: AtomicU32::new(alive),
        })
    }
}

#[async_trait]
impl psa_domain::ports::JobQueue for QueueDiesAfter {
    async fn enqueue(&self, jobs: &[psa_domain::ports::SyncJob]) -> Result<(), StoreError> {
        let left = self
            .alive
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if left.is_err() {
            return Err(StoreError("injected: the invocation died here".into()));
        }
        self.inner.enqueue(jobs).await
    }
}
