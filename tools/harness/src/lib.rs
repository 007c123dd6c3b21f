//! One harness for the integration tests (`tests/`) and the tools (`tools/devtools`: demo, bench,
//! serve, startup): real DynamoDB Local and moto (started by `scripts/stack.sh`), a Gradient
//! simulator on a real socket per test, the real handlers driven with real API Gateway v2
//! payloads. Each test gets its own tables, secret prefix and simulator.

mod claims;
mod drain;
mod env;
pub mod events;
pub mod fixture;
pub mod front;
pub mod logs;
pub mod mail;
pub mod meter;
mod payloads;
pub mod population;
pub mod quiet;
pub mod runtime_api;

pub use mail::{CONSOLE_URL, NOTIFY_FROM};

pub use gradient_sim;

/// The API Gateway v2 (HTTP API) payload every request event is built from.
pub const HTTP_EVENT: &str = include_str!("../events/http-api-v2.json");

/// The EventBridge payload of the daily rule, as Lambda receives it (the file in `events/`).
pub const SCHEDULED_EVENT: &str = include_str!("../events/eventbridge-scheduled.json");

pub use aws_lambda_events::event::sqs as aws_lambda_events_sqs;
pub use claims::*;
pub use env::*;
pub use payloads::*;
