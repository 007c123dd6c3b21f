//! The integration tests, one binary with a module per area, so the suite compiles and links the
//! workspace once and every test shares one pool of test threads (`scripts/test.sh` sets how
//! many). They run against DynamoDB Local, moto and a Gradient simulator (`scripts/stack.sh`),
//! through the harness (`tools/harness`): each test has its own tables, queue, secret prefix,
//! simulator and metrics, so no test depends on what another in the process did.
//!
//! One area: `cargo test -p psa-tests --test it -- billing::` (under `scripts/stack.sh`).

mod billing;
mod browser;
mod budget;
mod connectors;
mod cost;
mod faults;
mod fuzz;
mod guard;
mod limits;
mod notify;
mod observability;
mod openapi;
mod schedule;
mod store_sync;
mod sync;
mod tenancy;
mod trace_leak;
mod views;
mod wiring;
