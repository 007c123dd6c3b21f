//! The vendor API's endpoints (`shared/docs/gradient-api.md`), one method of
//! [`GradientClient`](crate::GradientClient) each, grouped by what they touch. Each says its
//! path, its body and how it is retried; `transport` does the rest.

mod accounts;
mod alerts;
mod codec;
mod organization;
mod services;

pub use accounts::ACCOUNT_CHUNK;
