//! The HTTP edge of the connectors API, shared by both HTTP functions (connectors-api serves
//! every route but the sync ones, sync-on-demand only those): the caller from the JWT claims, the
//! route table, JSON bodies with limits, the per-workspace share of the API, views and CSV
//! exports, and RFC 9457 problem answers with stable codes — one mapping from every error.
//!
//! A function's `main.rs` builds an [`App`] from the ports it wired; tests call [`handle`] with
//! real API Gateway v2 payloads.

pub mod app;
pub mod body;
pub mod claims;
mod dispatch;
pub mod error;
pub mod export;
mod input;
pub mod limit;
pub mod problem;
pub mod routes;
pub mod view;

pub use app::App;
pub use dispatch::{handle, request_span};
pub use error::{ApiError, GRADIENT_RETRY_AFTER_SECS};
pub use input::{DEFAULT_PAGE, MAX_PAGE};
pub use problem::Problem;
pub use routes::{ROUTES, Route, request_path, route};
