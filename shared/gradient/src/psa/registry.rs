//! Gradient's services are vendor-wide (one set for every MSP), so which Gradient id each
//! catalogue key has is deployment-wide bookkeeping of this adapter, kept in our store.

use async_trait::async_trait;
use psa_domain::ports::StoreError;
use std::collections::BTreeMap;
use std::time::Duration;

/// Which Gradient service id each catalogue key has, and the lock that serialises creating them.
#[async_trait]
pub trait ServiceRegistry: Send + Sync {
    /// Catalogue key → Gradient service id, for every service already created.
    async fn known(&self) -> Result<BTreeMap<String, String>, StoreError>;
    /// Remembers the Gradient id of a catalogue key (first writer wins; later writes are ignored).
    async fn record(&self, key: &str, service_id: &str) -> Result<(), StoreError>;
    /// Takes the vendor-wide "creating services" lock for `ttl`; `Ok(false)` if someone holds it.
    async fn try_lock(&self, owner: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Releases the lock if `owner` still holds it.
    async fn unlock(&self, owner: &str) -> Result<(), StoreError>;
}
