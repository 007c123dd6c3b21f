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
use psa_domain::ConnectorType;
use psa_domain::catalogue::Catalogue;
use psa_domain::ports::{BudgetShare, Events, JobQueue, NoEvents, TokenVault};
use psa_domain::usecase::notice::{NOTICE_LEASE, Notifier};
use psa_domain::usecase::{Core, PsaCore, Psas, QueueCore, WorkerCore};
pub use psa_gradient::Budget;
use psa_gradient::{GradientClient, GradientConfig, GradientPsa, LeaseTiming};
use psa_mail::SesMailer;
use psa_secrets::{SecretsManagerVault, VendorKeyError, load_vendor_key};
use psa_store::{
    DynamoBudgetLeases, DynamoConnectors, DynamoServiceRegistry, DynamoSync, DynamoWorkspaces,
    EventBridgeEvents, SqsJobQueue,
};
use std::sync::Arc;

pub mod config;
pub mod emf;
pub mod logging;
pub use logging::init_tracing;

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

/// What every function has: settings, the SDK config, DynamoDB and the core over it.
struct Base {
    settings: Settings,
    sdk: aws_config::SdkConfig,
    dynamo: aws_sdk_dynamodb::Client,
    connectors: Arc<DynamoConnectors>,
    core: Core,
}

/// The PSA side of a function: the vault, the Gradient client as the PSA and its budget lease.
struct PsaSide {
    core: PsaCore,
    vault: Arc<dyn TokenVault>,
    client: GradientClient,
    budget: Arc<Budget>,
}

impl Base {
    /// Reads the environment (contract variables and the SDK's standard ones).
    async fn from_env() -> Result<Self, StartupError> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_from_env().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        Ok(Self::on(settings, &sdk, dynamo))
    }

    /// The core's DynamoDB adapters on `dynamo`, events on the bus when `EVENT_BUS_NAME` is set.
    fn on(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        dynamo: aws_sdk_dynamodb::Client,
    ) -> Self {
        let connectors = Arc::new(DynamoConnectors::new(dynamo.clone(), &settings.psa_table));
        let sync_store = Arc::new(DynamoSync::new(dynamo.clone(), &settings.psa_table));
        let events: Arc<dyn Events> = match &settings.event_bus_name {
            Some(bus) => Arc::new(EventBridgeEvents::new(
                aws_sdk_eventbridge::Client::new(sdk),
                bus,
            )),
            None => Arc::new(NoEvents),
        };
        let core = Core {
            connectors: connectors.clone(),
            orgs: connectors.clone(),
            directory: Arc::new(DynamoWorkspaces::new(
                dynamo.clone(),
                &settings.workspaces_table,
            )),
            catalogue: Arc::new(Catalogue::builtin()),
            slots: sync_store.clone(),
            runs: sync_store.clone(),
            readings: sync_store.clone(),
            pairs: sync_store.clone(),
            audit: sync_store.clone(),
            key_health: sync_store.clone(),
            alerts: sync_store.clone(),
            attempts: sync_store.clone(),
            schedule: sync_store,
            events,
            metrics: Arc::new(emf::EmfMetrics::stdout()),
        };
        Self {
            settings,
            sdk: sdk.clone(),
            dynamo,
            connectors,
            core,
        }
    }

    /// The sync queue (SQS); needs `SYNC_QUEUE_URL`.
    fn queue(&self) -> Result<Arc<dyn JobQueue>, StartupError> {
        let queue_url = self.settings.require_queue_url()?.to_owned();
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        Ok(Arc::new(SqsJobQueue::new(sqs, queue_url)))
    }

    /// [`Base::psa_with`] with the default timeouts and retries.
    async fn psa(&self, function: &'static str) -> Result<PsaSide, StartupError> {
        self.psa_with(function, GradientConfig::new(String::new()))
            .await
    }

    /// The partner-token vault (Secrets Manager, secrets named `TOKEN_SECRET_PREFIX`…) and the
    /// Gradient client as the PSA: reads the vendor key now (a start-up failure names the
    /// secret, never the key). `gradient` carries timeouts and retries; the base URL and the rate
    /// budget come from the settings.
    async fn psa_with(
        &self,
        function: &'static str,
        mut gradient: GradientConfig,
    ) -> Result<PsaSide, StartupError> {
        let secrets = aws_sdk_secretsmanager::Client::new(&self.sdk);
        let vault = Arc::new(
            SecretsManagerVault::new(secrets.clone(), &self.settings.token_secret_prefix)
                .with_kms_key(self.settings.token_kms_key_id.clone()),
        );
        let secret_id = self.settings.vendor_key_secret_id.clone();
        let vendor_key = load_vendor_key(&secrets, &secret_id).await?;
        gradient.base_url = self.settings.gradient_base_url.clone();
        gradient.max_rps = self.settings.gradient_max_rps;
        // On a 401 the client re-reads the vendor key (uncached), so a rotation needs no redeploy.
        let client = GradientClient::new(gradient, vendor_key)
            .map_err(|e| StartupError::Gradient(e.to_string()))?
            .with_key_refresh(psa_gradient::key_refresh(move || {
                let (sm, secret_id) = (secrets.clone(), secret_id.clone());
                async move {
                    load_vendor_key(&sm, &secret_id)
                        .await
                        .map_err(|e| e.to_string())
                }
            }));
        // `GRADIENT_MAX_RPS` is the whole deployment's budget: this process leases a part of it.
        let owner = format!(
            "{}/{}",
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| function.into()),
            uuid::Uuid::new_v4()
        );
        let table = &self.settings.psa_table;
        let leases = DynamoBudgetLeases::new(self.dynamo.clone(), table, "gradient");
        let budget = Budget::leased(
            self.settings.gradient_max_rps,
            Arc::new(leases),
            owner,
            BUDGET_SHARES,
            LeaseTiming::default(),
        );
        let client = client.with_budget(budget.clone());
        let registry = Arc::new(DynamoServiceRegistry::new(self.dynamo.clone(), table));
        let psa = Arc::new(GradientPsa::new(client.clone(), registry));
        tracing::debug!(function, "wired the vault and the PSA");
        Ok(PsaSide {
            core: PsaCore {
                core: self.core.clone(),
                vault: vault.clone(),
                psas: Psas::new().with(ConnectorType::Gradient, psa),
            },
            vault,
            client,
            budget,
        })
    }
}
