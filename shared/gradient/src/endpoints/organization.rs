//! The MSP's organization: who a partner token belongs to, and the integration's status.

use super::codec::parse;
use crate::client::GradientClient;
use crate::error::GradientError;
use crate::transport::Retry;
use crate::types::{IntegrationStatus, Organization};
use psa_domain::ApiToken;
use reqwest::Method;

impl GradientClient {
    /// `GET /api/vendor-api/organization`: the way to check a token (401 → `TokenRejected`).
    pub async fn organization(&self, token: &ApiToken) -> Result<Organization, GradientError> {
        let path = "/api/vendor-api/organization";
        self.call(token, Method::GET, path, None, Retry::Transient, |b| {
            parse(path, b)
        })
        .await
    }

    /// `PATCH /api/vendor-api/organization/status/{status}` (no body).
    pub async fn set_status(
        &self,
        token: &ApiToken,
        status: IntegrationStatus,
    ) -> Result<(), GradientError> {
        let path = format!("/api/vendor-api/organization/status/{}", status.as_str());
        self.call(token, Method::PATCH, &path, None, Retry::Transient, |_| {
            Ok(())
        })
        .await
    }
}
