//! Tessera: a GraphQL unified-API gateway over SaaS CRMs.
//!
//! Folders are concerns and the arrows between them go one way: `http -> (access, graphql)`,
//! `graphql -> (engine, access, overrides, store)`, `engine -> (config, mapping, credentials,
//! store)`; `mapping` and `store` import nothing of ours above them. The vendor imitations
//! are another crate (`tessera-sandbox`), named only by the demo and sandbox commands.
//! `tests/it/architecture.rs` states every arrow and enforces it.

pub mod access;
pub mod app;
pub mod bounds;
pub mod cli;
pub mod config;
pub mod credentials;
pub mod engine;
pub mod error;
pub mod graphql;
pub mod health;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod mapping;
pub mod monitor;
pub mod overrides;
pub mod problem;
pub mod schema;
pub mod secret;
pub mod services;
pub mod shape;
pub mod signing;
pub mod store;
pub mod upstreams;
pub mod webhooks;

/// Every binary built on this crate (the gateway, its benches and tests) allocates with
/// mimalloc: request handling is allocation-heavy (JSON values, mapping intermediates), and
/// glibc's allocator spent a fifth of the webhook intake's CPU in `malloc`/`free` and its
/// consolidation.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
