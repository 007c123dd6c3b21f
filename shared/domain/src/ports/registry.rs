//! The vendor-wide records of a PSA adapter: which id each catalogue service has at the PSA.
//! Some PSAs (Gradient) keep one set of services for every MSP, so these ids are
//! deployment-wide bookkeeping, kept in our store; creating them is serialised by one lock.

use super::StoreError;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

/// The PSA's service id of each catalogue key, and the lock that serialises creating them.
#[async_trait]
pub trait ServiceRegistry: Send + Sync {
    /// Catalogue key → the PSA's service id, for every service already created.
    async fn known(&self) -> Result<BTreeMap<String, String>, StoreError>;
    /// Remembers the PSA's id of a catalogue key (first writer wins; later writes are ignored).
    async fn record(&self, key: &str, service_id: &str) -> Result<(), StoreError>;
    /// Takes the vendor-wide "creating services" lock for `ttl`; `Ok(false)` if someone holds it.
    async fn try_lock(&self, owner: &str, ttl: Duration) -> Result<bool, StoreError>;
    /// Releases the lock if `owner` still holds it.
    async fn unlock(&self, owner: &str) -> Result<(), StoreError>;
}
