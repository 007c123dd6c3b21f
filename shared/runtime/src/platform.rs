//! Every port of every function at once: what tests and tools use with the local stack.

use crate::base::Base;
use crate::config::Settings;
use crate::{Budget, StartupError, share};
use psa_domain::ports::{BudgetShare, JobQueue, TokenVault};
use psa_domain::usecase::{Core, PsaCore, Psas, QueueCore, WorkerCore};
use psa_gradient::{GradientClient, GradientConfig};
use psa_store::DynamoConnectors;
use std::sync::Arc;

/// Every port of every function, wired from explicit settings: what tests and tools use with the
/// local stack.
#[derive(Clone)]
pub struct Platform {
    pub settings: Settings,
    /// The store, the catalogue, events and metrics (every function's).
    pub core: Core,
    /// The partner-token vault (Secrets Manager).
    pub vault: Arc<dyn TokenVault>,
    /// The PSA adapter of each connector type (Gradient).
    pub psas: Psas,
    /// The sync queue (SQS).
    pub queue: Arc<dyn JobQueue>,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub connectors: Arc<DynamoConnectors>,
    pub gradient: GradientClient,
    /// This process's lease of the deployment's Gradient budget (`GRADIENT_MAX_RPS`).
    pub budget: Arc<Budget>,
}

impl Platform {
    /// Everything, from explicit settings (tests and tools use this with the local stack).
    /// `gradient` carries the client's timeouts and retry policy; its base URL and rate budget are
    /// taken from `settings`.
    pub async fn build(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        gradient: GradientConfig,
    ) -> Result<Self, StartupError> {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        Self::build_on(settings, sdk, gradient, dynamo).await
    }

    /// [`Platform::build`] with every DynamoDB adapter (budget leases included) on `dynamo` (a
    /// test's or the bench's metered client).
    pub async fn build_on(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        gradient: GradientConfig,
        dynamo: aws_sdk_dynamodb::Client,
    ) -> Result<Self, StartupError> {
        let base = Base::on(settings, sdk, dynamo);
        let queue = base.queue()?;
        let psa = base.psa_with("all", gradient).await?;
        Ok(Self {
            core: base.core,
            vault: psa.vault,
            psas: psa.core.psas,
            queue,
            sqs: aws_sdk_sqs::Client::new(&base.sdk),
            dynamo: base.dynamo,
            connectors: base.connectors,
            gradient: psa.client,
            budget: psa.budget,
            settings: base.settings,
        })
    }

    /// The connectors API's ports: the core with the vault and the PSAs.
    pub fn psa_core(&self) -> PsaCore {
        PsaCore {
            core: self.core.clone(),
            vault: self.vault.clone(),
            psas: self.psas.clone(),
        }
    }

    /// On-demand's and the scheduler's ports: the core with the queue.
    pub fn queue_core(&self) -> QueueCore {
        QueueCore {
            core: self.core.clone(),
            queue: self.queue.clone(),
        }
    }

    /// The worker's ports: everything.
    pub fn worker_core(&self) -> WorkerCore {
        WorkerCore {
            with_psa: self.psa_core(),
            queue: self.queue.clone(),
        }
    }

    /// This process's share of the PSA budget, for the handlers to take and give back.
    pub fn budget_share(&self) -> Arc<dyn BudgetShare> {
        share(&self.budget)
    }

    /// The HTTP edge with every port, so it serves every route (the local front, tests).
    pub fn http_app(&self) -> psa_http::App {
        psa_http::App::new(
            self.core.clone(),
            self.settings.sync.clone(),
            self.settings.api_workspace_rps,
            Some(self.psa_core()),
            Some(self.queue_core()),
            Some(self.budget_share()),
        )
    }
}
