//! Wiring of the functions: settings → SDK clients → adapters → the core.
//!
//! Each function builds only what it uses, once, outside the handler: `main.rs` calls its own
//! constructor ([`Platform::connectors_api`], [`Platform::sync_on_demand`],
//! [`Platform::sync_scheduled`], [`Platform::sync_worker`]). DynamoDB is every function's; the
//! SQS queue, the token vault (Secrets Manager) and the Gradient client (which reads the vendor
//! key at start-up) are added by [`Wiring`] only for the functions that call them. A port a
//! function does not use is an [`unwired::Unwired`] adapter that fails loudly, so the scheduler and
//! the on-demand function neither read nor hold the vendor key, and their binaries do not even
//! link the Gradient client (the template's IAM grants them no Secrets Manager action).
//! Tests and tools use [`Platform::build`], which wires everything.

use psa_domain::ConnectorType;
use psa_domain::catalogue::Catalogue;
use config::{ConfigError, Settings};
use psa_domain::ports::{BudgetShare, Events, NoEvents};
use psa_domain::usecase::notice::{NOTICE_LEASE, Notifier};
use psa_domain::usecase::{Core, Psas};
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
pub mod unwired;
pub use logging::init_tracing;
use unwired::Unwired;

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

/// The adapters of one process, built once. `sqs`, `vault` and `gradient` are `None` in a
/// function that does not use them (and the matching ports of `core` fail loudly).
#[derive(Clone)]
pub struct Platform {
    pub settings: Settings,
    pub core: Core,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: Option<aws_sdk_sqs::Client>,
    pub connectors: Arc<DynamoConnectors>,
    pub vault: Option<Arc<SecretsManagerVault>>,
    pub gradient: Option<GradientClient>,
    /// This process's lease of the deployment's Gradient budget (`GRADIENT_MAX_RPS`), with the
    /// Gradient client.
    pub budget: Option<Arc<Budget>>,
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

impl Platform {
    /// This process's share of the PSA budget, for the handlers to take and give back (`None`
    /// where the process calls no PSA).
    pub fn budget_share(&self) -> Option<Arc<dyn BudgetShare>> {
        self.budget
            .clone()
            .map(|b| Arc::new(GradientShare(b)) as Arc<dyn BudgetShare>)
    }

    /// The HTTP edge over this process's ports: it serves the sync routes only where the queue
    /// is wired (the on-demand function).
    pub fn http_app(&self) -> psa_http::App {
        psa_http::App::new(
            self.core.clone(),
            self.settings.sync.clone(),
            self.settings.api_workspace_rps,
            self.sqs.is_some(),
            self.budget_share(),
        )
    }

    /// The HTTP API: DynamoDB, the token vault and Gradient (token checks, set-up); no queue.
    pub async fn connectors_api() -> Result<Self, StartupError> {
        let w = Wiring::from_env("connectors-api").await?.vault();
        Ok(w.gradient(GradientConfig::new(String::new())).await?.done())
    }

    /// "Sync now" and release: DynamoDB and the queue; no vault, no Gradient, no vendor key.
    pub async fn sync_on_demand() -> Result<Self, StartupError> {
        Ok(Wiring::from_env("sync-on-demand").await?.queue()?.done())
    }

    /// The daily fan-out: DynamoDB and the queue; no vault, no Gradient, no vendor key.
    pub async fn sync_scheduled() -> Result<Self, StartupError> {
        Ok(Wiring::from_env("sync-scheduled").await?.queue()?.done())
    }

    /// The worker: everything (continuations go back on the queue).
    pub async fn sync_worker() -> Result<Self, StartupError> {
        let w = Wiring::from_env("sync-worker").await?.queue()?.vault();
        Ok(w.gradient(GradientConfig::new(String::new())).await?.done())
    }

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
        let w = Wiring::on("all", settings, sdk, dynamo).queue()?.vault();
        Ok(w.gradient(gradient).await?.done())
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

/// Builds a [`Platform`] step by step: [`Wiring::new`] wires DynamoDB (every function's) and
/// leaves the queue, the vault and the PSA unwired; each step adds one of them.
pub struct Wiring {
    function: &'static str,
    settings: Settings,
    sdk: aws_config::SdkConfig,
    dynamo: aws_sdk_dynamodb::Client,
    secrets: Option<aws_sdk_secretsmanager::Client>,
    sqs: Option<aws_sdk_sqs::Client>,
    connectors: Arc<DynamoConnectors>,
    vault: Option<Arc<SecretsManagerVault>>,
    gradient: Option<GradientClient>,
    budget: Option<Arc<Budget>>,
    core: Core,
}

impl Wiring {
    /// Reads the environment (contract variables and the SDK's standard ones).
    pub async fn from_env(function: &'static str) -> Result<Self, StartupError> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_from_env().await;
        Ok(Self::new(function, settings, &sdk))
    }

    /// DynamoDB adapters for `function` (its name is in the error of an unwired port).
    pub fn new(function: &'static str, settings: Settings, sdk: &aws_config::SdkConfig) -> Self {
        Self::on(function, settings, sdk, aws_sdk_dynamodb::Client::new(sdk))
    }

    /// [`Wiring::new`] on a given DynamoDB client.
    pub fn on(
        function: &'static str,
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        dynamo: aws_sdk_dynamodb::Client,
    ) -> Self {
        let connectors = Arc::new(DynamoConnectors::new(dynamo.clone(), &settings.psa_table));
        let sync_store = Arc::new(DynamoSync::new(dynamo.clone(), &settings.psa_table));
        let unwired = Arc::new(Unwired(function));
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
            vault: unwired.clone(),
            directory: Arc::new(DynamoWorkspaces::new(
                dynamo.clone(),
                &settings.workspaces_table,
            )),
            psas: Psas::new(unwired.clone()),
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
            queue: unwired,
            events,
            metrics: Arc::new(emf::EmfMetrics::stdout()),
        };
        Self {
            function,
            settings,
            sdk: sdk.clone(),
            dynamo,
            secrets: None,
            sqs: None,
            connectors,
            vault: None,
            gradient: None,
            budget: None,
            core,
        }
    }

    fn secrets(&mut self) -> aws_sdk_secretsmanager::Client {
        self.secrets
            .get_or_insert_with(|| aws_sdk_secretsmanager::Client::new(&self.sdk))
            .clone()
    }

    /// The sync queue (SQS); needs `SYNC_QUEUE_URL`.
    pub fn queue(mut self) -> Result<Self, StartupError> {
        let queue_url = self.settings.require_queue_url()?.to_owned();
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        self.core.queue = Arc::new(SqsJobQueue::new(sqs.clone(), queue_url));
        self.sqs = Some(sqs);
        Ok(self)
    }

    /// The partner-token vault (Secrets Manager, secrets named `TOKEN_SECRET_PREFIX`…).
    pub fn vault(mut self) -> Self {
        let vault = Arc::new(
            SecretsManagerVault::new(self.secrets(), &self.settings.token_secret_prefix)
                .with_kms_key(self.settings.token_kms_key_id.clone()),
        );
        self.core.vault = vault.clone();
        self.vault = Some(vault);
        self
    }

    /// The Gradient client as the PSA: reads the vendor key now (a start-up failure names the
    /// secret, never the key). `gradient` carries timeouts and retries; the base URL and the rate
    /// budget come from the settings.
    pub async fn gradient(mut self, mut gradient: GradientConfig) -> Result<Self, StartupError> {
        let secrets = self.secrets();
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
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| self.function.into()),
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
        self.core.psas.set(ConnectorType::Gradient, psa);
        self.gradient = Some(client);
        self.budget = Some(budget);
        Ok(self)
    }

    pub fn done(self) -> Platform {
        tracing::debug!(
            function = self.function,
            queue = self.sqs.is_some(),
            vault = self.vault.is_some(),
            psa = self.gradient.is_some(),
            "wired"
        );
        Platform {
            settings: self.settings,
            core: self.core,
            dynamo: self.dynamo,
            sqs: self.sqs,
            connectors: self.connectors,
            vault: self.vault,
            gradient: self.gradient,
            budget: self.budget,
        }
    }
}
