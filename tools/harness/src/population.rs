//! Many connectors at once, for the scheduler's tests and its benchmark: connector items written
//! straight into the project's table with batched writes (`psa-store`'s own item layout), so
//! 10,000 take seconds instead of 10,000 connects.

use crate::TestEnv;
use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use futures::StreamExt;
use psa_domain::connector::{Connector, ConnectorSettings};
use psa_domain::ids::{UserId, WorkspaceId};

/// A connected connector of workspace `msp_<i>`, as if connected at `at`.
pub fn connector(i: usize, at: time::OffsetDateTime) -> Connector {
    Connector::new(
        psa_domain::ConnectorType::Gradient,
        WorkspaceId::parse(&format!("msp_{i:05}")).expect("workspace id"),
        UserId::parse("admin").expect("user id"),
        "…abcd".into(),
        ConnectorSettings::default(),
        at,
    )
}

/// Writes `connectors` (25 per BatchWriteItem, 8 batches at once).
pub async fn seed_connectors(env: &TestEnv, connectors: &[Connector]) {
    let ddb = env.local.dynamodb();
    let batches: Vec<Vec<WriteRequest>> = connectors
        .chunks(25)
        .map(|chunk| {
            chunk
                .iter()
                .map(|c| {
                    let item = psa_store::connector_item(c).expect("connector item");
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .expect("put");
                    WriteRequest::builder().put_request(put).build()
                })
                .collect()
        })
        .collect();
    futures::stream::iter(batches)
        .map(|batch| {
            let ddb = ddb.clone();
            let table = env.tables.psa.clone();
            async move {
                let mut pending = batch;
                for _ in 0..10 {
                    let out = ddb
                        .batch_write_item()
                        .request_items(&table, pending)
                        .send()
                        .await
                        .expect("batch write connectors");
                    pending = out
                        .unprocessed_items
                        .and_then(|mut u| u.remove(&table))
                        .unwrap_or_default();
                    if pending.is_empty() {
                        return;
                    }
                }
                panic!("connector writes left unprocessed");
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<()>>()
        .await;
}

/// Messages on the sync queue (moto counts exactly).
pub async fn queue_depth(env: &TestEnv) -> u64 {
    let out = env
        .local
        .sqs()
        .get_queue_attributes()
        .queue_url(&env.queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("queue attributes");
    out.attributes
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
                .cloned()
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
