//! The adapter of a port a function does not use: every call fails, at error level, naming the
//! function and the port. The core is one struct of ports (`psa_domain::usecase::Core`), so a
//! function that never calls, say, the PSA still has to fill that field; this is what fills it.
//! A call reaching it is a wiring bug (a use case that now needs the port, or a request routed
//! to the wrong function): it must show up in the first test or log, not pass silently.

use async_trait::async_trait;
use psa_domain::catalogue::Catalogue;
use psa_domain::connector::ConnectorRef;
use psa_domain::ids::{ConnectorType, WorkspaceId};
use psa_domain::ports::{
    AccountWrite, AccountsCreated, AlertRef, Batch, CountOutcome, Health, JobQueue, Psa,
    PsaAccount, PsaAlert, PsaError, PsaIntegration, PublishedServices, StoreError, SyncJob, Ticket,
    TokenVault, VaultError,
};
use psa_domain::secret::ApiToken;
use std::collections::BTreeMap;

/// Fills the ports a function does not use; the string is the function's name.
#[derive(Debug, Clone, Copy)]
pub struct Unwired(pub &'static str);

impl Unwired {
    fn fail(&self, port: &str) -> String {
        let why = format!("{port} is not wired in this function ({})", self.0);
        tracing::error!(function = self.0, port, "{why}");
        why
    }

    fn psa<T>(&self) -> Result<T, PsaError> {
        Err(PsaError::Unexpected(self.fail("the PSA")))
    }

    fn vault<T>(&self) -> Result<T, VaultError> {
        Err(VaultError::Unavailable(self.fail("the token vault")))
    }
}

#[async_trait]
impl JobQueue for Unwired {
    async fn enqueue(&self, _: &[SyncJob]) -> Result<(), StoreError> {
        Err(StoreError(self.fail("the sync queue")))
    }
}

#[async_trait]
impl TokenVault for Unwired {
    async fn store(
        &self,
        _: &WorkspaceId,
        _: ConnectorType,
        _: &ApiToken,
    ) -> Result<(), VaultError> {
        self.vault()
    }
    async fn load(&self, _: &ConnectorRef, _: u64) -> Result<ApiToken, VaultError> {
        self.vault()
    }
    async fn delete(&self, _: &WorkspaceId, _: ConnectorType) -> Result<(), VaultError> {
        self.vault()
    }
}

#[async_trait]
impl Psa for Unwired {
    fn name(&self) -> &'static str {
        "the PSA"
    }
    async fn verify(&self, _: &ApiToken) -> Result<PsaIntegration, PsaError> {
        self.psa()
    }
    async fn begin_setup(&self, _: &ApiToken, _: &PsaIntegration) -> Result<(), PsaError> {
        self.psa()
    }
    async fn disconnect(&self, _: &ApiToken) -> Result<(), PsaError> {
        self.psa()
    }
    async fn report_health(&self, _: &ApiToken, _: Health) -> Result<(), PsaError> {
        self.psa()
    }
    fn health_name(&self, _: Health) -> &'static str {
        "unknown"
    }
    async fn publish_services(
        &self,
        _: &ApiToken,
        _: &Catalogue,
        _: &WorkspaceId,
    ) -> Result<PublishedServices, PsaError> {
        self.psa()
    }
    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError> {
        self.psa()
    }
    async fn accounts(&self, _: &ApiToken) -> Result<Vec<PsaAccount>, PsaError> {
        self.psa()
    }
    async fn create_accounts(
        &self,
        _: &ApiToken,
        _: &[PsaAccount],
    ) -> Result<AccountsCreated, PsaError> {
        self.psa()
    }
    async fn update_account(&self, _: &ApiToken, _: &PsaAccount) -> Result<AccountWrite, PsaError> {
        self.psa()
    }
    async fn report_count(
        &self,
        _: &ApiToken,
        _: &str,
        _: &str,
        _: u64,
        _: Batch,
    ) -> Result<CountOutcome, PsaError> {
        self.psa()
    }
    async fn ticket(&self, _: &ApiToken, _: &AlertRef) -> Result<Ticket, PsaError> {
        self.psa()
    }
    async fn raise_alert(&self, _: &ApiToken, _: &PsaAlert) -> Result<AlertRef, PsaError> {
        self.psa()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_unwired_port_fails_and_names_the_function() {
        let u = Unwired("sync-scheduled");
        let ws = WorkspaceId::parse("ws_1").unwrap();
        let err = u.enqueue(&[]).await.unwrap_err().to_string();
        assert!(
            err.contains("sync queue") && err.contains("sync-scheduled"),
            "{err}"
        );
        let err = u
            .delete(&ws, ConnectorType::Gradient)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("token vault") && err.contains("sync-scheduled"),
            "{err}"
        );
        let token = ApiToken::parse("t0ken").unwrap();
        let err = u.verify(&token).await.unwrap_err();
        assert!(
            matches!(&err, PsaError::Unexpected(m) if m.contains("PSA")),
            "{err}"
        );
        assert!(
            u.report_count(&token, "s", "a", 1, Batch::Last)
                .await
                .is_err()
        );
    }
}
