//! The deployment-wide record of PSA rejections (`VENDOR#<psa>` / `KEYHEALTH`), to tell a bad
//! vendor key from MSPs' bad tokens.

use crate::attrs::{n, now_ms, s};
use crate::error::{done_unless_failed, is_condition_failed, store_error};
use crate::items::{HealthItem, accepted_by_value, rejected_of, rejection_entry};
use crate::keys::{KEY_HEALTH_SK, vendor_pk};
use crate::table::DynamoSync;
use async_trait::async_trait;
use psa_domain::ConnectorType;
use psa_domain::ports::{AcceptedBy, KeyHealth, Rejected, Rejection, StoreError};
use std::time::Duration;

#[async_trait]
impl KeyHealth for DynamoSync {
    async fn last_accepted(&self, psa: ConnectorType) -> Result<Option<AcceptedBy>, StoreError> {
        let Some(raw) = self
            .get(vendor_pk(psa.as_str()), KEY_HEALTH_SK, "read key health")
            .await?
        else {
            return Ok(None);
        };
        Ok(HealthItem::read(raw)?.last_accepted_by())
    }

    async fn accepted(&self, psa: ConnectorType, by: &AcceptedBy) -> Result<(), StoreError> {
        let by = accepted_by_value(by)?;
        let now = now_ms();
        let res = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(vendor_pk(psa.as_str())))
            .key("sk", s(KEY_HEALTH_SK))
            // Bumps `version` too, so a concurrent read-modify-write of `rejected` retries
            // instead of putting back an older `lastAcceptedMs`.
            .update_expression("SET lastAcceptedMs = :now, lastAcceptedBy = :by ADD version :one")
            .condition_expression("attribute_not_exists(lastAcceptedMs) OR lastAcceptedMs < :now")
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":by", by)
            .send()
            .await;
        done_unless_failed(res, "record an accepted call")
    }

    /// The wave's entries are keyed `<msp>/<workspace>` (a workspace id holds no `/`); an entry
    /// written before MSPs were recorded is its own MSP.
    async fn rejected(
        &self,
        psa: ConnectorType,
        kind: Rejection,
        rejected: &Rejected,
        window: Duration,
    ) -> Result<Vec<Rejected>, StoreError> {
        let pk = vendor_pk(psa.as_str());
        for _ in 0..8 {
            let raw = self
                .get(pk.clone(), KEY_HEALTH_SK, "read key health")
                .await?;
            let mut item = match raw {
                Some(raw) => HealthItem::read(raw)?,
                None => HealthItem::default(),
            };
            let now = now_ms();
            let since = item
                .last_accepted_ms
                .max(now.saturating_sub(window.as_millis() as u64));
            let map = match kind {
                Rejection::Unauthorized => &mut item.unauthorized,
                Rejection::Forbidden => &mut item.forbidden,
            };
            map.retain(|_, at| *at > since);
            map.insert(rejection_entry(rejected), now);
            let wave: Vec<Rejected> = map.keys().filter_map(|e| rejected_of(e)).collect();
            let expected = item.version;
            item.version += 1;
            let res = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item.item(psa.as_str())?))
                .condition_expression("attribute_not_exists(pk) OR version = :v")
                .expression_attribute_values(":v", n(expected))
                .send()
                .await;
            match res {
                Ok(_) => return Ok(wave),
                Err(e) if is_condition_failed(&e) => continue,
                Err(e) => return Err(store_error("record a rejection", e)),
            }
        }
        Err(StoreError("the key health record kept changing".into()))
    }
}
