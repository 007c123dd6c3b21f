//! What the PSA alerts of a connector incarnation remember: the last alert per account and kind
//! (`ALERT#<type>#<inc>#<accountId>#<kind>`, kept the alert interval + 1 day) and the alerts
//! whose PSA ticket is still pending (`TICKET#<type>#<inc>#<messageId>`, 30 days).

use crate::attrs::{attr_n, n, now_ms, now_s, s};
use crate::error::store_error;
use crate::items::{TICKET_RETENTION_S, TicketItem, ticket_item};
use crate::keys::{alert_sk, ticket_sk, tickets_prefix, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use psa_domain::ConnectorRef;
use psa_domain::ports::{AlertMemory, AlertRef, PendingTicket, StoreError};
use std::time::Duration;

#[async_trait]
impl AlertMemory for DynamoSync {
    async fn last_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
    ) -> Result<Option<time::OffsetDateTime>, StoreError> {
        let item = self
            .get(
                workspace_pk(&connector.workspace),
                &alert_sk(connector, account_id, kind),
                "read the last alert",
            )
            .await?;
        Ok(item
            .as_ref()
            .and_then(|i| attr_n(i, "atMs"))
            .and_then(|ms| {
                time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
            }))
    }

    async fn record_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
        keep: Duration,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(workspace_pk(&connector.workspace)))
            .item("sk", s(alert_sk(connector, account_id, kind)))
            .item("atMs", n(now))
            .item("expiresAt", n(now / 1000 + keep.as_secs() + 86_400))
            .send()
            .await
            .map_err(|e| store_error("record an alert", e))?;
        Ok(())
    }

    async fn forget_alert(
        &self,
        connector: &ConnectorRef,
        account_id: &str,
        kind: &str,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(&connector.workspace)))
            .key("sk", s(alert_sk(connector, account_id, kind)))
            .send()
            .await
            .map_err(|e| store_error("forget an alert", e))?;
        Ok(())
    }

    async fn remember_ticket(
        &self,
        connector: &ConnectorRef,
        ticket: &PendingTicket,
    ) -> Result<(), StoreError> {
        let item = ticket_item(connector, ticket, now_s() + TICKET_RETENTION_S);
        self.put_one(item, "remember a pending ticket").await
    }

    async fn pending_tickets(
        &self,
        connector: &ConnectorRef,
    ) -> Result<Vec<PendingTicket>, StoreError> {
        let items: Vec<TicketItem> = self
            .query_all(
                workspace_pk(&connector.workspace),
                &tickets_prefix(connector),
                "query pending tickets",
            )
            .await?;
        Ok(items.into_iter().map(PendingTicket::from).collect())
    }

    async fn forget_ticket(
        &self,
        connector: &ConnectorRef,
        alert: &AlertRef,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(&connector.workspace)))
            .key("sk", s(ticket_sk(connector, &alert.0)))
            .send()
            .await
            .map_err(|e| store_error("forget a pending ticket", e))?;
        Ok(())
    }
}
