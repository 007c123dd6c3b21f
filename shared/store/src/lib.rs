//! DynamoDB adapters for the core's ports.
//!
//! One table (`PSA_TABLE`), keys `pk`/`sk`, one sparse GSI `byStatus` (`gsi1pk`/`gsi1sk`), TTL on
//! `expiresAt`. Item layout:
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | connector | `WS#<workspaceId>` | `CONNECTOR#gradient` | `CONNECTORS#<status>` / `WS#<workspaceId>` |
//! | service registry entry | `VENDOR#gradient` | `SERVICE#<catalogue key>` | – |
//! | service-creation lock | `VENDOR#gradient` | `LOCK#services` | – |
//! | run slot + worker lease | `WS#<workspaceId>` | `SLOT#gradient` | – |
//! | on-demand cool-down | `WS#<workspaceId>` | `COOLDOWN#gradient` | – |
//! | sync run (kept 90 days after it finished) | `WS#<workspaceId>` | `RUN#<runId>` | – |
//! | last value Gradient accepted | `WS#<workspaceId>` | `LAST#<accountId>#<serviceKey>` | – |
//!
//! Slot, lease and cool-down times are epoch milliseconds (`slotExpiresAtMs`, `leaseExpiresAtMs`,
//! `lastRequestMs`); `expiresAt` (TTL) is epoch seconds: slot end + 1 day, cool-down end + 1 day,
//! run finished (or queued) + 90 days. Last-sent values do not expire. The sync job queue is SQS
//! ([`SqsJobQueue`]).
//!
//! The workspace read model is the platform's own table (`WORKSPACES_TABLE`, contract).

mod connectors;
mod error;
mod queue;
mod registry;
mod sync;
mod workspaces;

pub use connectors::DynamoConnectors;
pub use error::store_error;
pub use queue::SqsJobQueue;
pub use registry::DynamoServiceRegistry;
pub use sync::{DynamoSync, decode_cursor, encode_cursor};
pub use workspaces::{DynamoWorkspaces, WorkspaceItem};

pub use aws_sdk_dynamodb::Client;
