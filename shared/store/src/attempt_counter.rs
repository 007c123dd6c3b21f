//! Attempts per workspace, kind and window (`LIMIT#<ws>` / `ATTEMPTS#<what>#<window start ms>`):
//! token checks, settings changes, API requests.

use crate::attrs::{attr_n, ms, n, now_ms, s};
use crate::error::store_error;
use crate::keys::{attempts_pk, attempts_sk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::ReturnValue;
use psa_domain::WorkspaceId;
use psa_domain::ports::{AttemptCounter, StoreError};
use std::time::Duration;

#[async_trait]
impl AttemptCounter for DynamoSync {
    /// One item per workspace, kind and window (`LIMIT#<ws>` / `ATTEMPTS#<what>#<window start>`;
    /// not among the workspace's connector data), counted with an atomic `ADD`; it expires with
    /// its window.
    async fn attempt(
        &self,
        workspace: &WorkspaceId,
        what: &str,
        window: Duration,
    ) -> Result<(u64, Duration), StoreError> {
        let now = now_ms();
        let len = ms(window).max(1);
        let start = now - now % len;
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(attempts_pk(workspace)))
            .key("sk", s(attempts_sk(what, start)))
            .update_expression("ADD attempts :one SET expiresAt = :ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n((start + len) / 1000 + 3600))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| store_error("count an attempt", e))?;
        let count = out
            .attributes
            .as_ref()
            .and_then(|a| attr_n(a, "attempts"))
            .unwrap_or(1);
        Ok((count, Duration::from_millis(start + len - now)))
    }
}
