//! The sandbox's one integration-test binary: the vendors over real HTTP, their OAuth
//! endpoints, their webhook deliveries, and the sample records the product's provider
//! files own.
#![allow(clippy::unwrap_used)]

mod attio;
mod close;
mod copper;
mod oauth;
mod samples;
mod vendors;
mod webhooks;
