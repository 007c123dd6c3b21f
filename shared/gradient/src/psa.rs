//! The core's [`Psa`] port, implemented by the Gradient client.

use crate::{
    AccountUpdate, AlertPriority, GradientClient, GradientError, IntegrationStatus, NewAccount,
    NewAlert, NewService, Vendor,
};
use async_trait::async_trait;
use psa_domain::ApiToken;
use psa_domain::catalogue::Service;
use psa_domain::ports::{
    Psa, PsaAccount, PsaAlert, PsaError, PsaOrganization, PsaService, PsaStatus,
};

/// Gradient as the core sees it.
#[derive(Clone)]
pub struct GradientPsa {
    client: GradientClient,
}

impl GradientPsa {
    pub fn new(client: GradientClient) -> Self {
        Self { client }
    }
}

impl From<GradientError> for PsaError {
    fn from(e: GradientError) -> Self {
        match e {
            GradientError::TokenRejected => PsaError::TokenRejected,
            GradientError::Forbidden { message } => PsaError::Forbidden(message),
            GradientError::NotFound { message } => PsaError::NotFound(message),
            GradientError::Conflict { message } => PsaError::Conflict(message),
            GradientError::RateLimited { retry_after } => PsaError::Unavailable {
                what: "rate limited (429)".into(),
                retry_after,
            },
            e @ (GradientError::Server { .. }
            | GradientError::Timeout
            | GradientError::Network { .. }) => PsaError::Unavailable {
                what: e.to_string(),
                retry_after: None,
            },
            e @ (GradientError::BadRequest { .. }
            | GradientError::Malformed { .. }
            | GradientError::Config { .. }) => PsaError::Unexpected(e.to_string()),
        }
    }
}

fn status(s: PsaStatus) -> IntegrationStatus {
    match s {
        PsaStatus::Inactive => IntegrationStatus::Inactive,
        PsaStatus::Pending => IntegrationStatus::Pending,
        PsaStatus::Active => IntegrationStatus::Active,
        PsaStatus::Disabled => IntegrationStatus::Disabled,
        PsaStatus::Error => IntegrationStatus::Error,
    }
}

/// Gradient shows "no description" as `""`: empty or blank is `None`, anything else is trimmed.
fn description_of(d: Option<String>) -> Option<String> {
    d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty())
}

fn services_of(v: Vendor) -> Vec<PsaService> {
    v.skus
        .into_iter()
        .map(|s| PsaService {
            id: s.id,
            name: s.name,
        })
        .collect()
}

#[async_trait]
impl Psa for GradientPsa {
    async fn organization(&self, token: &ApiToken) -> Result<PsaOrganization, PsaError> {
        let o = self.client.organization(token).await?;
        Ok(PsaOrganization {
            id: o.organization_id,
            name: o.name,
            status: o.status,
        })
    }

    async fn set_status(&self, token: &ApiToken, s: PsaStatus) -> Result<(), PsaError> {
        Ok(self.client.set_status(token, status(s)).await?)
    }

    async fn accounts(&self, token: &ApiToken) -> Result<Vec<PsaAccount>, PsaError> {
        Ok(self
            .client
            .list_accounts(token)
            .await?
            .into_iter()
            .map(|a| PsaAccount {
                id: a.id,
                name: a.name.trim().to_owned(),
                description: description_of(a.description),
            })
            .collect())
    }

    async fn create_accounts(
        &self,
        token: &ApiToken,
        accounts: &[PsaAccount],
    ) -> Result<(), PsaError> {
        let batch: Vec<NewAccount> = accounts
            .iter()
            .map(|a| NewAccount {
                id: a.id.clone(),
                name: a.name.clone(),
                description: a.description.clone(),
            })
            .collect();
        self.client.create_accounts(token, &batch).await?;
        Ok(())
    }

    async fn update_account(&self, token: &ApiToken, account: &PsaAccount) -> Result<(), PsaError> {
        // No description is sent as "" (Gradient clears it): a removed domain must not linger.
        let update = AccountUpdate {
            name: Some(account.name.clone()),
            description: Some(account.description.clone().unwrap_or_default()),
        };
        self.client
            .update_account(token, &account.id, &update)
            .await?;
        Ok(())
    }

    async fn services(&self, token: &ApiToken) -> Result<Vec<PsaService>, PsaError> {
        Ok(services_of(self.client.vendor(token).await?))
    }

    async fn create_service(
        &self,
        token: &ApiToken,
        service: &Service,
    ) -> Result<Vec<PsaService>, PsaError> {
        let new = NewService {
            name: service.gradient_name(),
            description: service.gradient_description(),
            category: service.category.clone(),
            subcategory: service.subcategory.clone(),
        };
        Ok(services_of(self.client.create_service(token, &new).await?))
    }

    async fn raise_alert(
        &self,
        token: &ApiToken,
        account_id: &str,
        alert: &PsaAlert,
    ) -> Result<(), PsaError> {
        // Priority 2 (medium) and status 1 (new ticket), as the contract says; a unique id.
        let new = NewAlert {
            title: alert.title.clone(),
            description: alert.description.clone(),
            alert_id: format!("coro-{}", uuid::Uuid::new_v4().simple()),
            priority: AlertPriority::Medium,
            status: NewAlert::STATUS_NEW,
            due_date_time: None,
            service_id: alert.service_id.clone(),
        };
        self.client.alert(token, account_id, &new).await?;
        Ok(())
    }

    async fn post_count(
        &self,
        token: &ApiToken,
        service_id: &str,
        account_id: &str,
        count: u64,
        no_build: bool,
    ) -> Result<(), PsaError> {
        Ok(self
            .client
            .post_count(token, service_id, account_id, count, no_build)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_descriptions_are_none_others_trimmed() {
        assert_eq!(description_of(None), None);
        assert_eq!(description_of(Some(String::new())), None);
        assert_eq!(description_of(Some(" \t\n".into())), None);
        assert_eq!(
            description_of(Some(" acme.example ".into())).as_deref(),
            Some("acme.example")
        );
    }
}
