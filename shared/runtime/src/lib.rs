//! Wiring shared by every function: settings → SDK clients → adapters → the core.
//! `main.rs` of each function calls [`Platform::from_env`] once, outside the handler.

use psa_domain::catalogue::Catalogue;
use psa_domain::config::{ConfigError, Settings};
use psa_domain::ports::Events;
use psa_domain::telemetry::NoEvents;
use psa_domain::usecase::Core;
pub use psa_gradient::Budget;
use psa_gradient::{GradientClient, GradientConfig, GradientPsa, LeaseTiming};
use psa_secrets::{SecretsManagerVault, VendorKeyError, load_vendor_key};
use psa_store::{
    DynamoBudgetLeases, DynamoConnectors, DynamoServiceRegistry, DynamoSync, DynamoWorkspaces,
    EventBridgeEvents, SqsJobQueue,
};
use std::sync::Arc;

pub mod emf;
pub mod logging;

/// Shares the deployment's Gradient budget is cut into: at most this many processes send at
/// once (the worker's `MaximumConcurrency` plus the API's reserved concurrency stay below it).
pub const BUDGET_SHARES: u32 = 20;
pub use logging::init_tracing;

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    VendorKey(#[from] VendorKeyError),
    #[error("the Gradient client could not be built: {0}")]
    Gradient(String),
}

/// The adapters of one process, built once.
#[derive(Clone)]
pub struct Platform {
    pub settings: Settings,
    pub core: Core,
    pub dynamo: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub connectors: Arc<DynamoConnectors>,
    pub vault: Arc<SecretsManagerVault>,
    pub gradient: GradientClient,
    /// This process's lease of the deployment's Gradient budget (`GRADIENT_MAX_RPS`).
    pub budget: Arc<Budget>,
}

impl Platform {
    /// Reads the environment (contract variables and the SDK's standard ones) and builds everything.
    pub async fn from_env() -> Result<Self, StartupError> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_from_env().await;
        Self::build(settings, &sdk, GradientConfig::new(String::new())).await
    }

    /// Builds the platform from explicit settings (tests and tools use this with the local stack).
    /// `gradient` carries the client's timeouts and retry policy; its base URL and rate budget are
    /// taken from `settings`.
    pub async fn build(
        settings: Settings,
        sdk: &aws_config::SdkConfig,
        mut gradient: GradientConfig,
    ) -> Result<Self, StartupError> {
        let dynamo = aws_sdk_dynamodb::Client::new(sdk);
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let sqs = aws_sdk_sqs::Client::new(sdk);
        let vendor_key = load_vendor_key(&secrets, &settings.vendor_key_secret_id).await?;
        gradient.base_url = settings.gradient_base_url.clone();
        gradient.max_rps = settings.gradient_max_rps;
        // On a 401 the client re-reads the vendor key (uncached), so a rotation needs no redeploy.
        let (sm, secret_id) = (secrets.clone(), settings.vendor_key_secret_id.clone());
        let client = GradientClient::new(gradient, vendor_key)
            .map_err(|e| StartupError::Gradient(e.to_string()))?
            .with_key_refresh(psa_gradient::key_refresh(move || {
                let (sm, secret_id) = (sm.clone(), secret_id.clone());
                async move {
                    load_vendor_key(&sm, &secret_id)
                        .await
                        .map_err(|e| e.to_string())
                }
            }));
        // `GRADIENT_MAX_RPS` is the whole deployment's budget: this process leases a part of it.
        let owner = format!(
            "{}/{}",
            std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "local".into()),
            uuid::Uuid::new_v4()
        );
        let leases = DynamoBudgetLeases::new(dynamo.clone(), &settings.psa_table, "gradient");
        let budget = Budget::leased(
            settings.gradient_max_rps,
            Arc::new(leases),
            owner,
            BUDGET_SHARES,
            LeaseTiming::default(),
        );
        let client = client.with_budget(budget.clone());
        let queue_url = settings.require_queue_url()?.to_owned();
        let connectors = Arc::new(DynamoConnectors::new(dynamo.clone(), &settings.psa_table));
        let sync_store = Arc::new(DynamoSync::new(dynamo.clone(), &settings.psa_table));
        let vault = Arc::new(SecretsManagerVault::new(
            secrets,
            &settings.token_secret_prefix,
        ));
        let events: Arc<dyn Events> = match &settings.event_bus_name {
            Some(bus) => Arc::new(EventBridgeEvents::new(
                aws_sdk_eventbridge::Client::new(sdk),
                bus,
            )),
            None => Arc::new(NoEvents),
        };
        let core = Core {
            connectors: connectors.clone(),
            vault: vault.clone(),
            directory: Arc::new(DynamoWorkspaces::new(
                dynamo.clone(),
                &settings.workspaces_table,
            )),
            psa: Arc::new(GradientPsa::new(
                client.clone(),
                Arc::new(DynamoServiceRegistry::new(
                    dynamo.clone(),
                    &settings.psa_table,
                )),
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
            queue: Arc::new(SqsJobQueue::new(sqs.clone(), queue_url)),
            events,
            metrics: Arc::new(emf::EmfMetrics::stdout()),
        };
        Ok(Self {
            settings,
            core,
            dynamo,
            sqs,
            connectors,
            vault,
            gradient: client,
            budget,
        })
    }
}
