//! Vendor-key health, alert memory and attempt counters in memory.

use super::{Call, Memory};
use crate::connector::ConnectorRef;
use crate::ids::{ConnectorType, WorkspaceId};
use crate::ports::*;
use async_trait::async_trait;
use std::time::Duration;

#[async_trait]
impl KeyHealth for Memory {
    async fn accepted(&self, psa: ConnectorType, by: &AcceptedBy) -> Result<(), StoreError> {
        let call = Call::write("key_accepted");
        let f = self.enter(&call).await?;
        self.rejections.lock().unwrap().remove(&psa);
        self.last_accepted.lock().unwrap().insert(psa, by.clone());
        self.leave(&call, f)
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
        let call = Call::write("key_rejected").ws(&rejected.workspace);
        let f = self.enter(&call).await?;
        let wave = {
            let mut all = self.rejections.lock().unwrap();
            let wave = all.entry(psa).or_default();
            if !wave.contains(rejected) {
                wave.push(rejected.clone());
            }
            wave.clone()
        };
        self.leave(&call, f)?;
        Ok(wave)
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
        let call = Call::write("remember_ticket").of(c);
        let f = self.enter(&call).await?;
        self.tickets
            .lock()
            .unwrap()
            .entry(c.key())
            .or_default()
            .push(t.clone());
        self.leave(&call, f)
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
