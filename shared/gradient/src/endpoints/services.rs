//! The vendor record and its services (vendor-wide), and the unit counts posted to them.

use super::codec::{Envelope, parse, segment, to_body};
use crate::client::GradientClient;
use crate::error::GradientError;
use crate::transport::Retry;
use crate::types::{NewService, Sku, Vendor};
use psa_domain::ApiToken;
use reqwest::Method;

impl GradientClient {
    /// `GET /api/vendor-api` → the vendor record with its services.
    pub async fn vendor(&self, token: &ApiToken) -> Result<Vendor, GradientError> {
        let path = "/api/vendor-api";
        self.call(token, Method::GET, path, None, Retry::Transient, |b| {
            parse::<Envelope<Vendor>>(path, b).map(|e| e.data)
        })
        .await
    }

    /// `POST /api/vendor-api/service` → the vendor record (find the new id in `skus`).
    /// Not idempotent: only a 429 is retried.
    pub async fn create_service(
        &self,
        token: &ApiToken,
        service: &NewService,
    ) -> Result<Vendor, GradientError> {
        let path = "/api/vendor-api/service";
        let body = to_body(service)?;
        self.call(token, Method::POST, path, Some(body), Retry::Only429, |b| {
            parse::<Envelope<Vendor>>(path, b).map(|e| e.data)
        })
        .await
    }

    /// `GET /api/vendor-api/service/{serviceId}`.
    pub async fn service(&self, token: &ApiToken, service_id: &str) -> Result<Sku, GradientError> {
        let path = format!("/api/vendor-api/service/{}", segment(service_id));
        self.call(token, Method::GET, &path, None, Retry::Transient, |b| {
            parse::<Envelope<Sku>>(&path, b).map(|e| e.data)
        })
        .await
    }

    /// `POST /api/vendor-api/service/{serviceId}/count[?no_build=true]` — sets the unit count.
    /// `NotFound` means the pair is not mapped in Synthesize yet (normal).
    pub async fn post_count(
        &self,
        token: &ApiToken,
        service_id: &str,
        account_id: &str,
        unit_count: u64,
        no_build: bool,
    ) -> Result<(), GradientError> {
        let mut path = format!("/api/vendor-api/service/{}/count", segment(service_id));
        if no_build {
            path.push_str("?no_build=true");
        }
        let body = to_body(&serde_json::json!({
            "accountId": account_id,
            "unitCount": unit_count,
        }))?;
        self.call(
            token,
            Method::POST,
            &path,
            Some(body),
            Retry::Transient,
            |_| Ok(()),
        )
        .await
    }
}
