//! Secrets Manager adapter: one secret per connector holding the MSP's partner token, and the
//! vendor key (a platform secret whose SecretString is the key itself).
//!
//! Tokens are cached in the process keyed by (workspace, token version): a re-token bumps the
//! connector's version, so a warm process never uses a replaced token for a newer connector.

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use psa_domain::ports::{TokenVault, VaultError};
use psa_domain::{ApiToken, ConnectorRef, ConnectorType, VendorKey, WorkspaceId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
    what: &str,
    e: SdkError<E, R>,
) -> VaultError {
    VaultError::Unavailable(format!("{what}: {}", DisplayErrorContext(&e)))
}

/// The tag every partner-token secret carries (key, value).
pub const TOKEN_SECRET_TAG: (&str, &str) = ("coro-psa-secret", "partner-token");

/// How long a token read from Secrets Manager is reused by this process.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct SecretsManagerVault {
    client: Client,
    prefix: String,
    /// `TOKEN_KMS_KEY_ID`: the key every new token secret is encrypted with (`None`: the
    /// account's default key for Secrets Manager).
    kms_key_id: Option<String>,
    cache: Mutex<HashMap<String, (ApiToken, Instant)>>,
}

impl SecretsManagerVault {
    /// `prefix` is `TOKEN_SECRET_PREFIX`; see [`Self::secret_name`] for a connector's secret.
    pub fn new(client: Client, prefix: impl Into<String>) -> Self {
        Self {
            client,
            prefix: prefix.into(),
            kms_key_id: None,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Encrypts every token secret this vault creates with `key` (`TOKEN_KMS_KEY_ID`).
    pub fn with_kms_key(mut self, key: Option<String>) -> Self {
        self.kms_key_id = key;
        self
    }

    /// The secret of the workspace's connector of type `kind`: `<prefix><workspaceId>` for the
    /// default type (Gradient's secrets had that name before types were carried, and keep it),
    /// `<prefix><workspaceId>/<type>` for every other.
    pub fn secret_name(&self, workspace: &WorkspaceId, kind: ConnectorType) -> String {
        if kind.is_default() {
            format!("{}{}", self.prefix, workspace)
        } else {
            format!("{}{}/{}", self.prefix, workspace, kind.as_str())
        }
    }

    /// The token of the connector incarnation as of `token_version`, from the cache or Secrets
    /// Manager. The cache key holds the workspace, the incarnation and the version: a re-token or
    /// a connector created again never gets a cached older token.
    pub async fn load_version(
        &self,
        connector: &ConnectorRef,
        token_version: u64,
    ) -> Result<ApiToken, VaultError> {
        let workspace = &connector.workspace;
        let key = format!("{workspace}#{}", connector.token_ref(token_version));
        if let Some((token, at)) = self.cache.lock().expect("cache lock").get(&key)
            && at.elapsed() < TOKEN_CACHE_TTL
        {
            return Ok(token.clone());
        }
        let token = self.read(workspace, connector.kind).await?;
        self.cache
            .lock()
            .expect("cache lock")
            .insert(key, (token.clone(), Instant::now()));
        Ok(token)
    }

    async fn read(
        &self,
        workspace: &WorkspaceId,
        kind: ConnectorType,
    ) -> Result<ApiToken, VaultError> {
        let out = match self
            .client
            .get_secret_value()
            .secret_id(self.secret_name(workspace, kind))
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if is_not_found(&e) => return Err(VaultError::NotFound),
            Err(e) => return Err(unavailable("get token secret", e)),
        };
        let raw = out.secret_string().ok_or(VaultError::NotFound)?;
        ApiToken::parse(raw)
            .map_err(|e| VaultError::Unavailable(format!("stored token is unusable: {e}")))
    }

    /// Drops the cached tokens of the workspace's connector of type `kind` (cache keys are
    /// `<workspace>#<type>#<incarnation>#<version>`).
    fn forget(&self, workspace: &WorkspaceId, kind: ConnectorType) {
        let prefix = format!("{workspace}#{}#", kind.as_str());
        self.cache
            .lock()
            .expect("cache lock")
            .retain(|k, _| !k.starts_with(&prefix));
    }
}

fn is_not_found<R>(
    e: &SdkError<aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError, R>,
) -> bool {
    match e.as_service_error() {
        Some(s) if s.is_resource_not_found_exception() => true,
        // A secret scheduled for deletion answers InvalidRequest: for us it is gone.
        Some(s) if s.is_invalid_request_exception() => true,
        _ => false,
    }
}

#[async_trait]
impl TokenVault for SecretsManagerVault {
    #[tracing::instrument(skip(self, token), fields(workspace_id = %workspace, connector_id = kind.as_str()))]
    async fn store(
        &self,
        workspace: &WorkspaceId,
        kind: ConnectorType,
        token: &ApiToken,
    ) -> Result<(), VaultError> {
        let name = self.secret_name(workspace, kind);
        self.forget(workspace, kind);
        let created = self
            .client
            .create_secret()
            .name(&name)
            .description("PSA partner token of a Coro PSA connector")
            .secret_string(token.expose_secret())
            .set_kms_key_id(self.kms_key_id.clone())
            // What the IAM policy of every function conditions its token-secret rights on: a
            // secret without it (the vendor key, anything else under the prefix) is out of reach.
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key(TOKEN_SECRET_TAG.0)
                    .value(TOKEN_SECRET_TAG.1)
                    .build(),
            )
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("workspaceId")
                    .value(workspace.as_str())
                    .build(),
            )
            .tags(
                aws_sdk_secretsmanager::types::Tag::builder()
                    .key("connector")
                    .value(kind.as_str())
                    .build(),
            )
            .send()
            .await;
        match created {
            Ok(_) => return Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_exists_exception()) => {}
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_invalid_request_exception()) =>
            {
                // Scheduled for deletion (e.g. deleted outside this service): bring it back.
                self.client
                    .restore_secret()
                    .secret_id(&name)
                    .send()
                    .await
                    .map_err(|e| unavailable("restore token secret", e))?;
            }
            Err(e) => return Err(unavailable("create token secret", e)),
        }
        self.client
            .put_secret_value()
            .secret_id(&name)
            .secret_string(token.expose_secret())
            .send()
            .await
            .map_err(|e| unavailable("put token secret", e))?;
        Ok(())
    }

    async fn load(
        &self,
        connector: &ConnectorRef,
        token_version: u64,
    ) -> Result<ApiToken, VaultError> {
        self.load_version(connector, token_version).await
    }

    #[tracing::instrument(skip(self), fields(workspace_id = %workspace, connector_id = kind.as_str()))]
    async fn delete(&self, workspace: &WorkspaceId, kind: ConnectorType) -> Result<(), VaultError> {
        self.forget(workspace, kind);
        match self
            .client
            .delete_secret()
            .secret_id(self.secret_name(workspace, kind))
            .force_delete_without_recovery(true)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable("delete token secret", e)),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VendorKeyError {
    #[error("reading the vendor key secret `{secret_id}` failed: {cause}")]
    Read { secret_id: String, cause: String },
    #[error("the vendor key secret `{secret_id}` holds no usable key")]
    Unusable { secret_id: String },
}

/// Reads the vendor key once (at start-up); its SecretString is the key itself, plain text.
pub async fn load_vendor_key(
    client: &Client,
    secret_id: &str,
) -> Result<VendorKey, VendorKeyError> {
    let out = client
        .get_secret_value()
        .secret_id(secret_id)
        .send()
        .await
        .map_err(|e| VendorKeyError::Read {
            secret_id: secret_id.into(),
            cause: DisplayErrorContext(&e).to_string(),
        })?;
    out.secret_string()
        .and_then(|raw| VendorKey::parse(raw).ok())
        .ok_or_else(|| VendorKeyError::Unusable {
            secret_id: secret_id.into(),
        })
}
