//! The core's [`Psa`] port, implemented for Gradient: everything Gradient-specific about being a
//! PSA lives here — integration status names, `no_build`, the vendor-wide service registry and
//! its lock ([`services`]), batch-refusal isolation ([`accounts`]), and the wording of alerts.

mod accounts;
mod services;

use crate::client::GradientClient;
use crate::error::GradientError;
use crate::types::{AccountUpdate, AlertPriority, IntegrationStatus, NewAlert};
use async_trait::async_trait;
use psa_domain::catalogue::Catalogue;
use psa_domain::ports::{
    AccountWrite, AccountsCreated, AlertRef, Batch, CountOutcome, Health, Psa, PsaAccount,
    PsaAlert, PsaError, PsaIntegration, PublishedServices, ServiceRegistry, Ticket,
};
use psa_domain::{ApiToken, WorkspaceId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Gradient as the core sees it.
#[derive(Clone)]
pub struct GradientPsa {
    client: GradientClient,
    registry: Arc<dyn ServiceRegistry>,
}

impl GradientPsa {
    /// `registry` keeps the vendor-wide catalogue key → Gradient service id records.
    pub fn new(client: GradientClient, registry: Arc<dyn ServiceRegistry>) -> Self {
        Self { client, registry }
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

/// Gradient shows "no description" as `""`: empty or blank is `None`, anything else is trimmed.
fn description_of(d: Option<String>) -> Option<String> {
    d.map(|d| d.trim().to_owned()).filter(|d| !d.is_empty())
}

/// The unmapped-services ticket: title, description (each service with its unit, and where to
/// map it), and the service when the alert is about one.
fn new_alert(alert: &PsaAlert) -> (String, NewAlert) {
    let PsaAlert::UnmappedServices {
        account_id,
        account_name,
        services,
        service_id,
    } = alert;
    let n = services.len();
    let lines: Vec<String> = services
        .iter()
        .map(|s| {
            let (name, unit) = s.service.as_ref().map_or((s.key.clone(), "unit"), |c| {
                (c.gradient_name(), c.unit.singular())
            });
            format!("- {name}: {} (billed per {unit})", s.value)
        })
        .collect();
    // Priority 2 (medium) and status 1 (new ticket), as the contract says; a unique id.
    let new = NewAlert {
        title: format!(
            "Coro: {n} service{} of {account_name} not mapped in Gradient",
            if n == 1 { "" } else { "s" },
        ),
        description: format!(
            "Coro reports usage for {account_name} ({account_id}) that is not billed, because \
             these services are not mapped to a product in Synthesize:\n{}\nMap them in \
             Synthesize (Integrations → Coro → map services) and the next sync bills them.",
            lines.join("\n")
        ),
        alert_id: format!("coro-{}", uuid::Uuid::new_v4().simple()),
        priority: AlertPriority::Medium,
        status: NewAlert::STATUS_NEW,
        due_date_time: None,
        service_id: service_id.clone(),
    };
    (account_id.clone(), new)
}

#[async_trait]
impl Psa for GradientPsa {
    fn name(&self) -> &'static str {
        "Gradient"
    }

    /// `GET organization`.
    async fn verify(&self, token: &ApiToken) -> Result<PsaIntegration, PsaError> {
        let o = self.client.organization(token).await?;
        Ok(PsaIntegration {
            id: o.organization_id,
            name: o.name,
            live: o.status == IntegrationStatus::Active.as_str(),
        })
    }

    /// Status `pending`, unless Gradient already moved the integration to `active`.
    async fn begin_setup(
        &self,
        token: &ApiToken,
        integration: &PsaIntegration,
    ) -> Result<(), PsaError> {
        if !integration.live {
            self.client
                .set_status(token, IntegrationStatus::Pending)
                .await?;
        }
        Ok(())
    }

    /// Status `error` while syncs keep failing, `active` again once one succeeds (#3).
    async fn report_health(&self, token: &ApiToken, health: Health) -> Result<(), PsaError> {
        Ok(self.client.set_status(token, health_status(health)).await?)
    }

    fn health_name(&self, health: Health) -> &'static str {
        health_status(health).as_str()
    }

    /// Status `inactive`.
    async fn disconnect(&self, token: &ApiToken) -> Result<(), PsaError> {
        Ok(self
            .client
            .set_status(token, IntegrationStatus::Inactive)
            .await?)
    }

    async fn publish_services(
        &self,
        token: &ApiToken,
        catalogue: &Catalogue,
        by: &WorkspaceId,
    ) -> Result<PublishedServices, PsaError> {
        services::publish(
            &self.client,
            self.registry.as_ref(),
            token,
            catalogue,
            by.as_str(),
        )
        .await
    }

    async fn published_services(&self) -> Result<BTreeMap<String, String>, PsaError> {
        Ok(self.registry.known().await?)
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
    ) -> Result<AccountsCreated, PsaError> {
        accounts::create_isolating(&self.client, token, accounts).await
    }

    async fn update_account(
        &self,
        token: &ApiToken,
        account: &PsaAccount,
    ) -> Result<AccountWrite, PsaError> {
        // No description is sent as "" (Gradient clears it): a removed domain must not linger.
        let update = AccountUpdate {
            name: Some(account.name.clone()),
            description: Some(account.description.clone().unwrap_or_default()),
        };
        match self
            .client
            .update_account(token, &account.id, &update)
            .await
        {
            Ok(_) => Ok(AccountWrite::Written),
            Err(e) if accounts::is_refusal(&e) => Ok(AccountWrite::Refused(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// `POST service/{id}/count`, with `no_build=true` while more counts follow; a 404 means the
    /// MSP has not mapped the pair yet.
    async fn report_count(
        &self,
        token: &ApiToken,
        service_id: &str,
        account_id: &str,
        count: u64,
        batch: Batch,
    ) -> Result<CountOutcome, PsaError> {
        let no_build = batch == Batch::MoreFollow;
        match self
            .client
            .post_count(token, service_id, account_id, count, no_build)
            .await
        {
            Ok(()) => Ok(CountOutcome::Accepted),
            Err(GradientError::NotFound { .. }) => Ok(CountOutcome::Unmapped),
            Err(e) => Err(e.into()),
        }
    }

    async fn raise_alert(&self, token: &ApiToken, alert: &PsaAlert) -> Result<AlertRef, PsaError> {
        let (account_id, new) = new_alert(alert);
        let receipt = self.client.alert(token, &account_id, &new).await?;
        Ok(AlertRef(receipt.message_id))
    }

    /// #11 with the alert's `messageId`: `success` with a ticket id is a ticket, `failed` (or
    /// `success` without one) is not, anything else is still pending.
    async fn ticket(&self, token: &ApiToken, alert: &AlertRef) -> Result<Ticket, PsaError> {
        if alert.0.is_empty() {
            return Ok(Ticket::Failed {
                error: "Gradient accepted the alert without a messageId: its ticket cannot be \
                        confirmed"
                    .into(),
            });
        }
        let d = self.client.alert_debug(token, &alert.0).await?;
        Ok(match d.status.as_str() {
            "success" if !d.ticket_id.is_empty() => Ticket::Created { id: d.ticket_id },
            "success" | "failed" => {
                Ticket::Failed {
                    error: d.errors.first().cloned().unwrap_or_else(|| {
                        format!("Gradient answered {} without a ticket", d.status)
                    }),
                }
            }
            _ => Ticket::Pending,
        })
    }
}

/// The integration status a [`Health`] is shown as in Synthesize.
fn health_status(health: Health) -> IntegrationStatus {
    match health {
        Health::Healthy => IntegrationStatus::Active,
        Health::Failing => IntegrationStatus::Error,
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
