//! Pair states (`PAIR#<type>#<inc>#<accountId>#<serviceKey>`): what the PSA last accepted for
//! each (account, service) pair of a connector incarnation.

use crate::attrs::{now_s, s};
use crate::items::{PAIR_RETENTION_S, PairItem, pair_item};
use crate::keys::{pair_sk, pairs_prefix, workspace_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use psa_domain::ports::{PairStates, StoreError};
use psa_domain::{ConnectorRef, PairState};
use std::collections::{BTreeMap, BTreeSet};

#[async_trait]
impl PairStates for DynamoSync {
    async fn pairs(
        &self,
        connector: &ConnectorRef,
    ) -> Result<BTreeMap<(String, String), PairState>, StoreError> {
        let items: Vec<PairItem> = self
            .query_all(
                workspace_pk(&connector.workspace),
                &pairs_prefix(connector),
                "query pair states",
            )
            .await?;
        Ok(items
            .into_iter()
            .map(|i| {
                let pair = i.into_pair();
                (pair.key(), pair)
            })
            .collect())
    }

    async fn put_pairs(
        &self,
        connector: &ConnectorRef,
        pairs: &[PairState],
    ) -> Result<(), StoreError> {
        let expires_at = now_s() + PAIR_RETENTION_S;
        let items = pairs.iter().map(|p| pair_item(connector, p, expires_at));
        self.put_keyed(items, |i| &i.sk, "record pair states").await
    }

    async fn delete_pairs(
        &self,
        connector: &ConnectorRef,
        keys: &[(String, String)],
    ) -> Result<(), StoreError> {
        let sks: BTreeSet<String> = keys.iter().map(|(a, k)| pair_sk(connector, a, k)).collect();
        let mut requests = Vec::with_capacity(sks.len());
        for sk in sks {
            let del = DeleteRequest::builder()
                .key("pk", s(workspace_pk(&connector.workspace)))
                .key("sk", s(sk))
                .build()
                .map_err(|e| StoreError(format!("pair delete request: {e}")))?;
            requests.push(WriteRequest::builder().delete_request(del).build());
        }
        self.batch_write(requests, "forget pair states").await
    }
}
