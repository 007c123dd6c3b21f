//! DynamoDB adapters for the core's ports.
//!
//! One table (`PSA_TABLE`), keys `pk`/`sk`, two sparse GSIs — `byStatus` (`gsi1pk`/`gsi1sk`) and
//! `byOutcome` (`gsi2pk`/`gsi2sk`, a run's readings by outcome) — TTL on `expiresAt`. Item layout:
//!
//! | item | pk | sk | gsi1pk / gsi1sk |
//! |---|---|---|---|
//! | connector | `WS#<ws>` | `CONNECTOR#<type>` | `CONNECTORS#<status>` / `WS#<ws>` |
//! | service registry entry | `VENDOR#gradient` | `SERVICE#<catalogue key>` | – |
//! | service-creation lock | `VENDOR#gradient` | `LOCK#services` | – |
//! | PSA rejections (vendor-key faults) | `VENDOR#<type>` | `KEYHEALTH` | – |
//! | leases of the deployment's request budget | `VENDOR#gradient` | `BUDGET` | – |
//! | run slot + worker lease | `WS#<ws>` | `SLOT#<type>#<inc>` | – |
//! | on-demand cool-down | `WS#<ws>` | `COOLDOWN#<type>` | – |
//! | sync run (90 days) | `WS#<ws>` | `RUN#<type>#<inc>#<runId>` | `RUNS#<ws>#<type>#<inc>` / `<queuedAt ms>#<runId>` |
//! | a run's reading, any outcome but `unchanged` (40 days) | `WS#<ws>` | `READING#<type>#<inc>#<runId>#<accountId>#<serviceKey>` | `byOutcome`: `gsi2pk` `READINGS#<ws>#<type>#<inc>#<runId>#<outcome>` / `gsi2sk` `<accountId>#<serviceKey>` |
//! | a run's `unchanged` readings, 250 to an item, deflated JSON (40 days) | `WS#<ws>` | `RCHUNK#<type>#<inc>#<runId>#<first accountId>#<first serviceKey>` | – |
//! | pair state: last accepted value and attempt (400 days past its last write) | `WS#<ws>` | `PAIR#<type>#<inc>#<accountId>#<serviceKey>` | – |
//! | last PSA alert per account and kind (the alert interval + 1 day) | `WS#<ws>` | `ALERT#<type>#<inc>#<accountId>#<kind>` | – |
//! | an alert whose PSA ticket is still pending (30 days) | `WS#<ws>` | `TICKET#<type>#<inc>#<messageId>` | – |
//! | a PSA organization bound to the one workspace whose connector it backs | `ORG#<type>#<organizationId>` | `BINDING` | – |
//! | attempts per workspace and window: token checks (10 min), settings changes (1 h), API requests (1 s) | `LIMIT#<ws>` | `ATTEMPTS#<verify\|settings\|api>#<window start ms>` | – |
//! | a run's email: `sending` (owner + lease) or `sent` (7 days) | `WS#<ws>` | `NOTICE#<type>#<inc>#<runId>` | – |
//! | audit event (401 days) | `WS#<ws>` | `AUDIT#<at ms>#<random>` | – |
//! | daily schedule firing: progress + lease (3 days) | `SCHEDULE#gradient` | `FIRING#<runId>` | – |
//! | newest schedule firing | `SCHEDULE#gradient` | `LATEST` | – |
//! | a scheduled run's job is on the queue (3 days) | `WS#<ws>` | `QUEUED#<type>#<inc>#<runId>` | – |
//!
//! `<inc>` is the connector's incarnation: a connector deleted and created again gets a new one,
//! so nothing of (or written late by) an older incarnation is ever seen by the new one. `#` never
//! occurs in ids, and sorts before every id character, so readings list by account then service.
//!
//! Slot, lease and cool-down times are epoch milliseconds (`slotExpiresAtMs`, `leaseExpiresAtMs`,
//! `lastRequestMs`); `expiresAt` (TTL) is epoch seconds. The sync job queue is SQS
//! ([`SqsJobQueue`]); the contract events go to EventBridge ([`EventBridgeEvents`]).
//!
//! The workspace read model is the platform's own table (`WORKSPACES_TABLE`, contract).

//! ## Modules
//!
//! - `keys`: every key and index key of the table, built in one place;
//! - `items`: the items written with serde, the store's own types (their layout pinned by tests);
//! - `table`: [`DynamoSync`] and the operations the ports on it are built from (`attrs`,
//!   `cursor`: single attributes, the clock, page cursors);
//! - one module per port: `run_slots`, `attempt_counter`, `sync_runs`, `run_readings`,
//!   `pair_states`, `audit_log`, `key_health`, `alert_memory`, `notice_log`, `schedule_book`
//!   (all on [`DynamoSync`]), `connectors` and `organization_bindings` (on [`DynamoConnectors`]),
//!   `budget_leases`, `registry`, `workspaces`; off the table, `queue` (SQS) and `events`
//!   (EventBridge).

mod alert_memory;
mod attempt_counter;
mod attrs;
mod audit_log;
mod budget_leases;
mod connectors;
mod cursor;
mod error;
mod events;
mod items;
mod key_health;
mod keys;
mod notice_log;
mod organization_bindings;
mod pair_states;
mod queue;
mod registry;
mod run_readings;
mod run_slots;
mod schedule_book;
mod sync_runs;
mod table;
mod workspaces;

pub use budget_leases::DynamoBudgetLeases;
pub use connectors::DynamoConnectors;
pub use error::store_error;
pub use events::EventBridgeEvents;
pub use items::connector_item;
pub use queue::SqsJobQueue;
pub use registry::DynamoServiceRegistry;
pub use table::DynamoSync;
pub use workspaces::{DynamoWorkspaces, WorkspaceItem};

pub use aws_sdk_dynamodb::Client;
