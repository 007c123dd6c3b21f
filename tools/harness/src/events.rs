//! The contract events of a test, read back from moto: a bus of the test's own, a rule matching
//! `source: coro.psa` whose target is an SQS queue of the test's own — as a consumer in AWS would
//! subscribe.

use crate::TestEnv;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// The bus and the queue its rule delivers to.
pub struct EventProbe {
    pub bus: String,
    pub queue_url: String,
}

impl TestEnv {
    /// Creates a bus, a queue and a rule (`source: coro.psa` → the queue), and points the core,
    /// the API and the binaries' environment (`EVENT_BUS_NAME`) at the bus.
    pub async fn enable_events(&mut self) -> EventProbe {
        let bus = format!("{}-bus", self.prefix);
        let events = aws_sdk_eventbridge::Client::new(&self.local.sdk);
        events
            .create_event_bus()
            .name(&bus)
            .send()
            .await
            .expect("create event bus");
        let queue_url = self
            .local
            .create_queue(&format!("{}-events", self.prefix))
            .await;
        let arn = self
            .local
            .sqs()
            .get_queue_attributes()
            .queue_url(&queue_url)
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await
            .expect("queue attributes")
            .attributes()
            .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
            .cloned()
            .expect("queue arn");
        events
            .put_rule()
            .name("psa-events")
            .event_bus_name(&bus)
            .event_pattern(r#"{"source": ["coro.psa"]}"#)
            .send()
            .await
            .expect("put rule");
        events
            .put_targets()
            .rule("psa-events")
            .event_bus_name(&bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("queue")
                    .arn(arn)
                    .build()
                    .expect("target"),
            )
            .send()
            .await
            .expect("put targets");
        self.use_event_bus(&bus);
        EventProbe { bus, queue_url }
    }

    /// Points the core, the API and the binaries' environment at the bus `bus` (which may not
    /// exist: emitting then fails, which must change nothing else).
    pub fn use_event_bus(&mut self, bus: &str) {
        let client = aws_sdk_eventbridge::Client::new(&self.local.sdk);
        self.platform.settings.event_bus_name = Some(bus.to_owned());
        self.platform.core.events = Arc::new(psa_store::EventBridgeEvents::new(client, bus));
        self.rewire_api();
    }
}

impl EventProbe {
    /// Every event delivered so far (the whole EventBridge envelope, parsed), removed from the
    /// queue; waits up to 5 s for at least `at_least`.
    pub async fn drain(&self, env: &TestEnv, at_least: usize) -> Vec<Value> {
        let sqs = env.local.sqs();
        let mut out = Vec::new();
        let mut idle = 0;
        for _ in 0..50 {
            let batch = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .send()
                .await
                .expect("receive events")
                .messages
                .unwrap_or_default();
            if batch.is_empty() {
                idle += 1;
                if out.len() >= at_least && idle >= 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            idle = 0;
            for m in batch {
                out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("event JSON"));
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .expect("delete event");
            }
        }
        out
    }
}
