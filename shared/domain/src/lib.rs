//! The pure core of the Coro PSA connectors. No AWS or HTTP types live here.

pub mod secret;

pub use secret::{ApiToken, TokenError, VendorKey};
