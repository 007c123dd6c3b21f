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
//!
//! The workspace read model is the platform's own table (`WORKSPACES_TABLE`, contract).

mod connectors;
mod error;
mod registry;
mod workspaces;

pub use connectors::DynamoConnectors;
pub use error::store_error;
pub use registry::DynamoServiceRegistry;
pub use workspaces::{DynamoWorkspaces, WorkspaceItem};

pub use aws_sdk_dynamodb::Client;
