//! Where the core's events and measurements go (see [`crate::telemetry`] for what they are).

use super::StoreError;
use crate::telemetry::{Event, Measurement};
use async_trait::async_trait;

/// The event bus (EventBridge). Adapters send what they are given, once; no retries beyond the
/// SDK's own.
#[async_trait]
pub trait Events: Send + Sync {
    async fn publish(&self, events: &[Event]) -> Result<(), StoreError>;
}

/// No bus configured (`EVENT_BUS_NAME` unset): events go nowhere.
pub struct NoEvents;

#[async_trait]
impl Events for NoEvents {
    async fn publish(&self, _: &[Event]) -> Result<(), StoreError> {
        Ok(())
    }
}

/// Where measurements go (CloudWatch EMF on stdout in Lambda). Writing one must not block for
/// long and cannot fail the caller.
pub trait Metrics: Send + Sync {
    fn record(&self, m: &Measurement);
}

/// Measurements go nowhere.
pub struct NoMetrics;

impl Metrics for NoMetrics {
    fn record(&self, _: &Measurement) {}
}
