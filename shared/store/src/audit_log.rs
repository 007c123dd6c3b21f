//! The workspace's audit trail (`AUDIT#<at ms>#<random>`), listed newest first.

use crate::attrs::s;
use crate::cursor::decode_cursor;
use crate::error::{is_condition_failed, store_error};
use crate::items::{AUDIT_DETAIL, AuditItem, audit_item};
use crate::keys::{AUDIT_PREFIX, audit_sk, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use psa_domain::ports::{AuditLog, Page, PageError, StoreError};
use psa_domain::{AuditEvent, WorkspaceId};

#[async_trait]
impl AuditLog for DynamoSync {
    async fn record(
        &self,
        workspace: &WorkspaceId,
        event: &AuditEvent,
    ) -> Result<String, StoreError> {
        // A random suffix keeps two events of the same millisecond apart.
        let sk = audit_sk(event.at, &uuid::Uuid::new_v4().simple().to_string()[..8]);
        self.put_one(audit_item(workspace, &sk, event), "record audit event")
            .await?;
        Ok(sk)
    }

    /// One `UpdateItem` setting `detail.<k>` for each entry, only on an existing entry of the
    /// workspace's trail (a key of another list is refused, nothing is created).
    async fn annotate(
        &self,
        workspace: &WorkspaceId,
        key: &str,
        detail: &[(&str, String)],
    ) -> Result<(), StoreError> {
        if detail.is_empty() || !key.starts_with(AUDIT_PREFIX) {
            return Ok(());
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(workspace_pk(workspace)))
            .key("sk", s(key))
            .condition_expression("attribute_exists(detail)")
            .expression_attribute_names("#d", AUDIT_DETAIL);
        let mut sets = Vec::with_capacity(detail.len());
        for (i, (k, v)) in detail.iter().enumerate() {
            sets.push(format!("#d.#k{i} = :v{i}"));
            update = update
                .expression_attribute_names(format!("#k{i}"), *k)
                .expression_attribute_values(format!(":v{i}"), s(v.clone()));
        }
        match update
            .update_expression(format!("SET {}", sets.join(", ")))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()), // expired or never there
            Err(e) => Err(store_error("annotate an audit event", e)),
        }
    }

    async fn audit_page(
        &self,
        workspace: &WorkspaceId,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<AuditEvent>, PageError> {
        const NAMES: [&str; 2] = ["pk", "sk"];
        let pk = workspace_pk(workspace);
        let start = cursor
            .map(|c| decode_cursor(c, &NAMES, &pk, AUDIT_PREFIX))
            .transpose()?;
        let page: Page<AuditItem> = self
            .page(
                None,
                ("pk", pk),
                Some(("sk", AUDIT_PREFIX.to_owned())),
                &NAMES,
                limit,
                start,
                false,
                "list audit events",
            )
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(|i| i.into_event()).collect(),
            next: page.next,
        })
    }
}
