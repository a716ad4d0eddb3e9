//! Tessera: a GraphQL unified-API gateway over SaaS CRMs.
//!
//! Folders are concerns and the arrows between them go one way:
//! `http -> graphql -> engine -> (mapping, config)`, with `credentials` and `store` used by
//! `graphql`; `sandbox` stands alone. `tests/it/architecture.rs` enforces it.

pub mod apikey;
pub mod app;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod error;
pub mod graphql;
pub mod http;
pub mod mapping;
pub mod monitor;
pub mod overrides;
pub mod problem;
pub mod sandbox;
pub mod schema;
pub mod secret;
pub mod store;
