//! The items the store writes with serde, one module per kind: each builds its keys through
//! [`crate::keys`] and says how long it is kept.
//!
//! An item holds the store's own record types (`RunRecord`, `ReadingRecord`, `PairRecord`,
//! `AuditRecord`, `ConnectorRecord`, …), converted from and to the domain's types, never a domain
//! or API type itself: each attribute's name is written here, so renaming a field of `SyncRun`,
//! `RunReading` or `AuditEvent` leaves the table as it is. Values keep the domain's vocabulary —
//! ids, and enums such as the run status or a reading's outcome, are written as the strings the
//! contract gives them. The tests beside this module pin every item's attributes (names, types
//! and values of a sample) and what older records read as, so a change of the table is a
//! decision.

mod audit;
mod budget;
mod connector;
mod firing;
mod health;
mod pair;
mod reading;
mod run;
mod ticket;

pub(crate) use audit::{AUDIT_DETAIL, AuditItem, audit_item};
pub(crate) use budget::{BudgetItem, budget_item};
pub use connector::connector_item;
pub(crate) use connector::connector_of;
pub(crate) use firing::{PROGRESS, progress_from_json, progress_json};
pub(crate) use health::{HealthItem, accepted_by_value, rejected_of, rejection_entry};
pub(crate) use pair::{PAIR_RETENTION_S, PairItem, pair_item};
pub(crate) use reading::{
    ChunkItem, READING_RETENTION_S, ReadingItem, chunk_item, key_of, reading_item, unpack,
};
pub(crate) use run::{RUN_STATUS, RunItem, run_status_of};
pub(crate) use ticket::{TICKET_RETENTION_S, TicketItem, ticket_item};

#[cfg(test)]
mod tests;
