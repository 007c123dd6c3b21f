//! Wiring of the functions: settings → SDK clients → adapters → each function's ports.
//!
//! Each function builds only what it uses, once, outside the handler, and gets exactly the ports
//! its use cases take: [`connectors_api`] and [`sync_on_demand`] an HTTP edge ([`psa_http::App`]:
//! the API with the vault and the PSA but no queue, on-demand with the queue but no vault, no
//! PSA and no vendor key), [`sync_scheduled`] a [`QueueCore`], [`sync_worker`] a [`WorkerCore`],
//! [`sync_notifier`] a [`Notifier`]. There is no placeholder for a port a function lacks: a use
//! case that needs it cannot be called there (the compiler says so), and a route whose ports a
//! function lacks is not served (404). The scheduler and the on-demand function neither read nor
//! hold the vendor key (the template's IAM grants them no Secrets Manager action).
//! Tests and tools use [`Platform::build`], which wires everything.

use config::{ConfigError, Settings};
use psa_domain::catalogue::Catalogue;
use psa_domain::ports::BudgetShare;
use psa_domain::usecase::notice::{NOTICE_LEASE, Notifier};
use psa_domain::usecase::{QueueCore, WorkerCore};
pub use psa_gradient::Budget;
use psa_mail::SesMailer;
use psa_secrets::VendorKeyError;
use psa_store::{DynamoConnectors, DynamoSync, DynamoWorkspaces};
use std::sync::Arc;

mod base;
pub mod config;
pub mod emf;
pub mod logging;
mod platform;
use base::Base;
pub use logging::init_tracing;
pub use platform::Platform;

/// Shares the deployment's Gradient budget is cut into: at most this many processes send at
/// once (the worker's `MaximumConcurrency` plus the API's reserved concurrency stay below it).
pub const BUDGET_SHARES: u32 = 20;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    VendorKey(#[from] VendorKeyError),
    #[error("the Gradient client could not be built: {0}")]
    Gradient(String),
}

/// The PSA budget as the functions see it ([`BudgetShare`]): this process's lease of the
/// deployment's Gradient budget.
struct GradientShare(Arc<Budget>);

#[async_trait::async_trait]
impl BudgetShare for GradientShare {
    async fn prepare(&self) {
        self.0.prepare().await;
    }

    async fn release(&self) {
        self.0.release().await;
    }
}

fn share(budget: &Arc<Budget>) -> Arc<dyn BudgetShare> {
    Arc::new(GradientShare(budget.clone()))
}

/// The connectors API: DynamoDB, the token vault and Gradient (token checks, set-up); no queue,
/// so it serves no sync route.
pub async fn connectors_api() -> Result<psa_http::App, StartupError> {
    let base = Base::from_env().await?;
    let psa = base.psa("connectors-api").await?;
    Ok(psa_http::App::new(
        base.core.clone(),
        base.settings.sync.clone(),
        base.settings.api_workspace_rps,
        Some(psa.core),
        None,
        Some(share(&psa.budget)),
    ))
}

/// "Sync now" and release: DynamoDB and the queue; no vault, no Gradient, no vendor key.
pub async fn sync_on_demand() -> Result<psa_http::App, StartupError> {
    let base = Base::from_env().await?;
    let queue = base.queue()?;
    Ok(psa_http::App::new(
        base.core.clone(),
        base.settings.sync.clone(),
        base.settings.api_workspace_rps,
        None,
        Some(QueueCore {
            core: base.core.clone(),
            queue,
        }),
        None,
    ))
}

/// The daily fan-out: DynamoDB and the queue; no vault, no Gradient, no vendor key.
pub async fn sync_scheduled() -> Result<(QueueCore, Settings), StartupError> {
    let base = Base::from_env().await?;
    let queue = base.queue()?;
    Ok((
        QueueCore {
            core: base.core.clone(),
            queue,
        },
        base.settings,
    ))
}

/// The worker's parts: every port (continuations go back on the queue) and its budget share.
pub struct WorkerParts {
    pub ports: WorkerCore,
    pub settings: Settings,
    pub budget: Arc<dyn BudgetShare>,
}

/// The worker: everything.
pub async fn sync_worker() -> Result<WorkerParts, StartupError> {
    let base = Base::from_env().await?;
    let queue = base.queue()?;
    let psa = base.psa("sync-worker").await?;
    Ok(WorkerParts {
        ports: WorkerCore {
            with_psa: psa.core,
            queue,
        },
        settings: base.settings,
        budget: share(&psa.budget),
    })
}

/// The notifier (`sync-notifier`): DynamoDB (the run, the connector, the names, its claims) and
/// SES from `NOTIFY_FROM`; no queue, no vault, no PSA, no vendor key. It is not a [`Platform`]:
/// it takes exactly the ports it uses.
pub async fn sync_notifier() -> Result<Notifier, StartupError> {
    let settings = Settings::from_env()?;
    let sdk = aws_config::load_from_env().await;
    notifier(&settings, &sdk)
}

/// [`sync_notifier`] from explicit settings (tests and tools, with the local stack).
pub fn notifier(
    settings: &Settings,
    sdk: &aws_config::SdkConfig,
) -> Result<Notifier, StartupError> {
    notifier_on(settings, sdk, aws_sdk_dynamodb::Client::new(sdk))
}

/// [`notifier`] on a given DynamoDB client (a test's metered one).
pub fn notifier_on(
    settings: &Settings,
    sdk: &aws_config::SdkConfig,
    dynamo: aws_sdk_dynamodb::Client,
) -> Result<Notifier, StartupError> {
    let (from, console_url) = settings.require_notify()?;
    let sync = Arc::new(DynamoSync::new(dynamo.clone(), &settings.psa_table));
    Ok(Notifier {
        connectors: Arc::new(DynamoConnectors::new(dynamo.clone(), &settings.psa_table)),
        directory: Arc::new(DynamoWorkspaces::new(dynamo, &settings.workspaces_table)),
        runs: sync.clone(),
        readings: sync.clone(),
        notices: sync,
        catalogue: Arc::new(Catalogue::builtin()),
        mailer: Arc::new(SesMailer::new(aws_sdk_sesv2::Client::new(sdk), from)),
        console_url: console_url.to_owned(),
        lease: NOTICE_LEASE,
    })
}
