//! The chunks of a run's `unchanged` readings as the listings read them: whether a run has any,
//! and the chunks from a reading key on.

use crate::attrs::s;
use crate::error::{serde_error, store_error};
use crate::items::ChunkItem;
use crate::keys::{chunks_end, chunks_prefix, in_run, in_run_after, workspace_pk};
use crate::table::DynamoSync;
use psa_domain::ports::StoreError;
use psa_domain::{ConnectorRef, RunId};

/// Unchanged readings per chunk item: ~25 bytes each once deflated, so a chunk is a few KB.
pub(super) const CHUNK: usize = 250;

impl DynamoSync {
    pub(super) async fn has_chunks(
        &self,
        c: &ConnectorRef,
        run: &RunId,
    ) -> Result<bool, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p AND begins_with(sk, :s)")
            .expression_attribute_values(":p", s(workspace_pk(&c.workspace)))
            .expression_attribute_values(":s", s(chunks_prefix(c, run)))
            .projection_expression("pk")
            .consistent_read(true)
            .limit(1)
            .send()
            .await
            .map_err(|e| store_error("look for packed readings", e))?;
        Ok(out.count > 0)
    }

    /// Up to `max` chunks of the run from key `after` on (exclusive; `None`: from the start),
    /// plus the chunk that holds `after` itself; `true` when more chunks follow.
    pub(super) async fn chunks_from(
        &self,
        c: &ConnectorRef,
        run: &RunId,
        after: Option<&str>,
        max: usize,
    ) -> Result<(Vec<ChunkItem>, bool), StoreError> {
        let (pk, prefix) = (workspace_pk(&c.workspace), chunks_prefix(c, run));
        let query = |cond: &str| {
            self.client
                .query()
                .table_name(&self.table)
                .key_condition_expression(cond)
                .expression_attribute_values(":p", s(pk.clone()))
                .consistent_read(true)
        };
        let mut chunks = Vec::new();
        let forward = match after {
            None => query("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":s", s(prefix.clone())),
            Some(key) => {
                // The chunk that starts at or before the cursor may hold readings after it.
                let holding = query("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":lo", s(prefix.clone()))
                    .expression_attribute_values(":hi", s(in_run(&prefix, key)))
                    .scan_index_forward(false)
                    .limit(1)
                    .send()
                    .await
                    .map_err(|e| store_error("read packed readings", e))?;
                chunks.extend(
                    serde_dynamo::from_items::<_, ChunkItem>(holding.items.unwrap_or_default())
                        .map_err(|e| serde_error("read packed readings", e))?,
                );
                query("pk = :p AND sk BETWEEN :lo AND :hi")
                    .expression_attribute_values(":lo", s(in_run_after(&prefix, key)))
                    .expression_attribute_values(":hi", s(chunks_end(c, run)))
            }
        };
        let out = forward
            .limit(i32::try_from(max).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| store_error("read packed readings", e))?;
        let more = out.last_evaluated_key.is_some();
        chunks.extend(
            serde_dynamo::from_items::<_, ChunkItem>(out.items.unwrap_or_default())
                .map_err(|e| serde_error("read packed readings", e))?,
        );
        Ok((chunks, more))
    }
}
