//! Run records (`RUN#<type>#<inc>#<runId>`), listed newest `queuedAt` first through the
//! `byStatus` index.

use crate::attrs::s;
use crate::cursor::decode_cursor;
use crate::error::{is_condition_failed, serde_error, store_error};
use crate::items::{RUN_STATUS, RunItem};
use crate::keys::{BY_STATUS, run_sk, runs_index_pk, runs_prefix, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use psa_domain::ports::{Page, PageError, StoreError, SyncRuns};
use psa_domain::{ConnectorRef, RunId, RunStatus, SyncRun};

#[async_trait]
impl SyncRuns for DynamoSync {
    async fn create_run(&self, run: &SyncRun) -> Result<bool, StoreError> {
        let item = serde_dynamo::to_item(RunItem::new(run)).map_err(|e| serde_error("run", e))?;
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("create run", e)),
        }
    }

    async fn put_run(&self, run: &SyncRun) -> Result<bool, StoreError> {
        let item =
            serde_dynamo::to_item(RunItem::new(run)).map_err(|e| serde_error("run item", e))?;
        let res = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #status IN (:queued, :running)")
            .expression_attribute_names("#status", RUN_STATUS)
            .expression_attribute_values(":queued", s(RunStatus::Queued.as_str()))
            .expression_attribute_values(":running", s(RunStatus::Running.as_str()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("put run", e)),
        }
    }

    async fn get_run(
        &self,
        connector: &ConnectorRef,
        run: &RunId,
    ) -> Result<Option<SyncRun>, StoreError> {
        self.get(
            workspace_pk(&connector.workspace),
            &run_sk(connector, run),
            "get run",
        )
        .await?
        .map(|item| {
            serde_dynamo::from_item::<_, RunItem>(item)
                .map(RunItem::into_run)
                .map_err(|e| serde_error("run item", e))
        })
        .transpose()
    }

    async fn list_runs(
        &self,
        connector: &ConnectorRef,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<Page<SyncRun>, PageError> {
        const NAMES: [&str; 4] = ["pk", "sk", "gsi1pk", "gsi1sk"];
        let index_pk = runs_index_pk(connector);
        let start = cursor
            .map(|c| {
                let key = decode_cursor(
                    c,
                    &NAMES,
                    &workspace_pk(&connector.workspace),
                    &runs_prefix(connector),
                )?;
                if key.get("gsi1pk").and_then(|v| v.as_s().ok()) != Some(&index_pk) {
                    return Err(PageError::InvalidCursor);
                }
                Ok(key)
            })
            .transpose()?;
        let page: Page<RunItem> = self
            .page(
                Some(BY_STATUS),
                ("gsi1pk", index_pk),
                None,
                &NAMES,
                limit,
                start,
                false,
                "list runs",
            )
            .await?;
        Ok(Page {
            items: page.items.into_iter().map(RunItem::into_run).collect(),
            next: page.next,
        })
    }
}
