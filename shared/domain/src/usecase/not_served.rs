//! The answer for a connector type this deployment serves no PSA for (one connected before its
//! adapter was taken out of the deployment): every call is refused, and the run says why.

use crate::catalogue::Catalogue;
use crate::ids::WorkspaceId;
use crate::ports::{
    AccountWrite, AccountsCreated, AlertRef, Batch, CountOutcome, Health, Psa, PsaAccount,
    PsaAlert, PsaError, PsaIntegration, PublishedServices, Ticket,
};
use crate::secret::ApiToken;
use async_trait::async_trait;
use std::collections::BTreeMap;

/// A PSA this deployment does not serve.
#[derive(Debug, Clone, Copy, Default)]
pub struct NotServed;

impl NotServed {
    fn refuse<T>(&self) -> Result<T, PsaError> {
        Err(PsaError::Unexpected(
            "this deployment serves no PSA for connectors of this type".into(),
        ))
    }
}

#[async_trait]
impl Psa for NotServed {
    fn name(&self) -> &'static str {
        "the PSA"
    }
    async fn verify(&self, _: &ApiToken) -> Result<PsaIntegration, PsaError> {
        self.refuse()
    }
    async fn begin_setup(&self, _: &ApiToken, _: &PsaIntegration) -> Result<(), PsaError> {
        self.refuse()
    }
    async fn disconnect(&self, _: &ApiToken) -> Result<(), PsaError> {
        self.refuse()
    }
    async fn report_health(&self, _: &ApiToken, _: Health) -> Result<(), PsaError> {
        self.refuse()
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
        self.refuse()
    }
    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError> {
        self.refuse()
    }
    async fn accounts(&self, _: &ApiToken) -> Result<Vec<PsaAccount>, PsaError> {
        self.refuse()
    }
    async fn create_accounts(
        &self,
        _: &ApiToken,
        _: &[PsaAccount],
    ) -> Result<AccountsCreated, PsaError> {
        self.refuse()
    }
    async fn update_account(&self, _: &ApiToken, _: &PsaAccount) -> Result<AccountWrite, PsaError> {
        self.refuse()
    }
    async fn report_count(
        &self,
        _: &ApiToken,
        _: &str,
        _: &str,
        _: u64,
        _: Batch,
    ) -> Result<CountOutcome, PsaError> {
        self.refuse()
    }
    async fn ticket(&self, _: &ApiToken, _: &AlertRef) -> Result<Ticket, PsaError> {
        self.refuse()
    }
    async fn raise_alert(&self, _: &ApiToken, _: &PsaAlert) -> Result<AlertRef, PsaError> {
        self.refuse()
    }
}
