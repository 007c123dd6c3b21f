//! The items the store writes with serde, one module per kind: each builds its keys through
//! [`crate::keys`] and says how long it is kept. The layout of each is pinned by the tests beside
//! this module, so a change of the table is a decision.

mod audit;
mod budget;
mod connector;
mod health;
mod pair;
mod reading;
mod run;
mod ticket;

pub(crate) use audit::{AuditItem, audit_item};
pub(crate) use budget::{BudgetItem, budget_item};
pub use connector::connector_item;
pub(crate) use connector::connector_of;
pub(crate) use health::{HealthItem, accepted_by_value, rejected_of, rejection_entry};
pub(crate) use pair::{PAIR_RETENTION_S, PairItem, pair_item};
pub(crate) use reading::{
    ChunkItem, READING_RETENTION_S, ReadingItem, chunk_item, key_of, reading_item, unpack,
};
pub(crate) use run::RunItem;
pub(crate) use ticket::{TICKET_RETENTION_S, TicketItem, ticket_item};

#[cfg(test)]
mod tests;
