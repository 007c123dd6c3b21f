use crate::error::{is_condition_failed, store_error};
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use psa_domain::ports::{ServiceRegistry, StoreError};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::keys::{SERVICE_PREFIX, SERVICES_LOCK_SK as LOCK_SK, vendor_pk};

/// The partition of the registry (Gradient's records; its services are vendor-wide).
fn registry_pk() -> String {
    vendor_pk("gradient")
}

fn epoch_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Catalogue key → Gradient service id, vendor-wide, plus the lock that serialises creation: the
/// Gradient adapter's records ([`ServiceRegistry`]).
#[derive(Clone, Debug)]
pub struct DynamoServiceRegistry {
    client: Client,
    table: String,
}

impl DynamoServiceRegistry {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

#[async_trait]
impl ServiceRegistry for DynamoServiceRegistry {
    async fn known(&self) -> Result<BTreeMap<String, String>, StoreError> {
        let mut out = BTreeMap::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :p AND begins_with(sk, :s)")
                .expression_attribute_values(":p", AttributeValue::S(registry_pk()))
                .expression_attribute_values(":s", AttributeValue::S(SERVICE_PREFIX.into()))
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| store_error("query service registry", e))?;
            for item in page.items.unwrap_or_default() {
                let key = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .and_then(|s| s.strip_prefix(SERVICE_PREFIX));
                let id = item.get("serviceId").and_then(|v| v.as_s().ok());
                if let (Some(key), Some(id)) = (key, id) {
                    out.insert(key.to_owned(), id.clone());
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                return Ok(out);
            }
        }
    }

    async fn record(&self, key: &str, service_id: &str) -> Result<(), StoreError> {
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(registry_pk()))
            .item("sk", AttributeValue::S(format!("{SERVICE_PREFIX}{key}")))
            .item("serviceId", AttributeValue::S(service_id.into()))
            .item("recordedAt", AttributeValue::N(epoch_now().to_string()))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Ok(()),
            Err(e) => Err(store_error("record service", e)),
        }
    }

    async fn try_lock(&self, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let now = epoch_now();
        match self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(registry_pk()))
            .item("sk", AttributeValue::S(LOCK_SK.into()))
            .item("owner", AttributeValue::S(owner.into()))
            .item(
                "expiresAt",
                AttributeValue::N((now + ttl.as_secs().max(1)).to_string()),
            )
            .condition_expression("attribute_not_exists(pk) OR expiresAt < :now OR #o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":me", AttributeValue::S(owner.into()))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(store_error("take service lock", e)),
        }
    }

    async fn unlock(&self, owner: &str) -> Result<(), StoreError> {
        let res = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(registry_pk()))
            .key("sk", AttributeValue::S(LOCK_SK.into()))
            .condition_expression("#o = :me")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_values(":me", AttributeValue::S(owner.into()))
            .send()
            .await;
        match res {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(())
            }
            Err(e) => Err(store_error("release service lock", e)),
        }
    }
}
