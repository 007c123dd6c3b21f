//! The contract events on EventBridge (`EVENT_BUS_NAME`, source `coro.psa`).

use async_trait::async_trait;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::error::DisplayErrorContext;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use psa_domain::ports::{Events, StoreError};
use psa_domain::telemetry::{EVENT_SOURCE, Event};

/// Entries per PutEvents (the EventBridge limit).
const BATCH: usize = 10;

/// Events as `PutEvents` entries on one bus: `DetailType` and `Detail` from the event.
#[derive(Clone, Debug)]
pub struct EventBridgeEvents {
    client: Client,
    bus: String,
}

impl EventBridgeEvents {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }
}

#[async_trait]
impl Events for EventBridgeEvents {
    async fn publish(&self, events: &[Event]) -> Result<(), StoreError> {
        for chunk in events.chunks(BATCH) {
            let entries: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|e| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(EVENT_SOURCE)
                        .detail_type(e.detail_type())
                        .detail(e.detail().to_string())
                        .build()
                })
                .collect();
            let out = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| StoreError(format!("put events: {}", DisplayErrorContext(&e))))?;
            if out.failed_entry_count() > 0 {
                let codes: Vec<&str> = out
                    .entries()
                    .iter()
                    .filter_map(|e| e.error_code())
                    .collect();
                return Err(StoreError(format!(
                    "put events: {} of {} refused ({codes:?})",
                    out.failed_entry_count(),
                    chunk.len()
                )));
            }
        }
        Ok(())
    }
}
