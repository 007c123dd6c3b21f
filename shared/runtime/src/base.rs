//! What every function is wired from (settings, SDK config, DynamoDB, the core), and the PSA
//! side some add (the vault, the Gradient client as the PSA, its budget lease).

use crate::config::Settings;
use crate::{BUDGET_SHARES, Budget, StartupError, emf};
use psa_domain::ConnectorType;
use psa_domain::catalogue::Catalogue;
use psa_domain::ports::{Events, JobQueue, NoEvents, TokenVault};
use psa_domain::usecase::{Core, PsaCore, Psas};
use psa_gradient::{GradientClient, GradientConfig, GradientPsa, LeaseTiming};
use psa_secrets::{SecretsManagerVault, load_vendor_key};
use psa_store::{
    DynamoBudgetLeases, DynamoConnectors, DynamoServiceRegistry, DynamoSync, DynamoWorkspaces,
    EventBridgeEvents, SqsJobQueue,
};
use std::sync::Arc;

/// What every function has: settings, the SDK config, DynamoDB and the core over it.
pub(crate) struct Base {
    pub(crate) settings: Settings,
    pub(crate) sdk: aws_config::SdkConfig,
    pub(crate) dynamo: aws_sdk_dynamodb::Client,
    pub(crate) connectors: Arc<DynamoConnectors>,
    pub(crate) core: Core,
}

/// The PSA side of a function: the vault, the Gradient client as the PSA and its budget lease.
pub(crate) struct PsaSide {
    pub(crate) core: PsaCore,
    pub(crate) vault: Arc<dyn TokenVault>,
    pub(crate) client: GradientClient,
    pub(crate) budget: Arc<Budget>,
}

impl Base {
    /// Reads the environment (contract variables and the SDK's standard ones).
    pub(crate) async fn from_env() -> Result<Self, StartupError> {
        let settings = Settings::from_env()?;
        let sdk = aws_config::load_from_env().await;
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        Ok(Self::on(settings, &sdk, dynamo))
    }

    /// The core's DynamoDB adapters on `dynamo`, events on the bus when `EVENT_BUS_NAME` is set.
    pub(crate) fn on(
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
    pub(crate) fn queue(&self) -> Result<Arc<dyn JobQueue>, StartupError> {
        let queue_url = self.settings.require_queue_url()?.to_owned();
        let sqs = aws_sdk_sqs::Client::new(&self.sdk);
        Ok(Arc::new(SqsJobQueue::new(sqs, queue_url)))
    }

    /// [`Base::psa_with`] with the default timeouts and retries.
    pub(crate) async fn psa(&self, function: &'static str) -> Result<PsaSide, StartupError> {
        self.psa_with(function, GradientConfig::new(String::new()))
            .await
    }

    /// The partner-token vault (Secrets Manager, secrets named `TOKEN_SECRET_PREFIX`…) and the
    /// Gradient client as the PSA: reads the vendor key now (a start-up failure names the
    /// secret, never the key). `gradient` carries timeouts and retries; the base URL and the rate
    /// budget come from the settings.
    pub(crate) async fn psa_with(
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
