//! The MSP's accounts in Gradient (one per managed workspace).

use super::codec::{parse, segment, to_body};
use crate::client::GradientClient;
use crate::error::GradientError;
use crate::transport::Retry;
use crate::types::{Account, AccountUpdate, NewAccount};
use psa_domain::ApiToken;
use reqwest::Method;

/// Largest number of accounts sent in one `POST /organization/accounts`.
pub const ACCOUNT_CHUNK: usize = 100;

impl GradientClient {
    /// `GET /api/vendor-api/organization/accounts`.
    pub async fn list_accounts(&self, token: &ApiToken) -> Result<Vec<Account>, GradientError> {
        let path = "/api/vendor-api/organization/accounts";
        self.call(token, Method::GET, path, None, Retry::Transient, |b| {
            parse(path, b)
        })
        .await
    }

    /// `POST /api/vendor-api/organization/accounts` in chunks of [`ACCOUNT_CHUNK`]. A 409 comes
    /// back as `Conflict` (earlier chunks stay applied): re-read and create only the missing.
    pub async fn create_accounts(
        &self,
        token: &ApiToken,
        accounts: &[NewAccount],
    ) -> Result<Vec<Account>, GradientError> {
        let path = "/api/vendor-api/organization/accounts";
        let mut created = Vec::with_capacity(accounts.len());
        for chunk in accounts.chunks(ACCOUNT_CHUNK) {
            let body = to_body(chunk)?;
            let batch: Vec<Account> = self
                .call(
                    token,
                    Method::POST,
                    path,
                    Some(body),
                    Retry::Transient,
                    |b| parse(path, b),
                )
                .await?;
            created.extend(batch);
        }
        Ok(created)
    }

    /// `PATCH /api/vendor-api/organization/accounts/{accountId}`.
    pub async fn update_account(
        &self,
        token: &ApiToken,
        account_id: &str,
        update: &AccountUpdate,
    ) -> Result<Account, GradientError> {
        let path = format!(
            "/api/vendor-api/organization/accounts/{}",
            segment(account_id)
        );
        let body = to_body(update)?;
        self.call(
            token,
            Method::PATCH,
            &path,
            Some(body),
            Retry::Transient,
            |b| parse(&path, b),
        )
        .await
    }
}
